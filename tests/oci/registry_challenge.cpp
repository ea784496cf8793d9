// WWW-Authenticate values as registries send them, and as RFC 9110's grammar allows them.
#include <cz/oci/registry/challenge.hpp>

#include "support/support.hpp"

namespace reg = cz::oci::registry;

namespace {

std::vector<reg::auth_challenge> parse_ok(std::string_view value) {
    std::error_code ec;
    cz::error_info detail;
    auto out = reg::parse_challenges(value, ec, &detail);
    INFO(value << ": " << cz::to_string(detail));
    CHECK(!ec);
    return out;
}

cz::error_info parse_bad(std::string_view value) {
    std::error_code ec;
    cz::error_info detail;
    auto out = reg::parse_challenges(value, ec, &detail);
    INFO(value);
    CHECK(ec == reg::errc::malformed_challenge);
    CHECK(out.empty());
    CHECK(detail.offset.value_or(value.size() + 1) <= value.size());
    return detail;
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("challenges: Bearer as registries send it, Basic, several in one value") {
        // Docker Hub's, byte for byte.
        auto hub = parse_ok(
            R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
        REQUIRE(hub.size() == 1);
        CHECK(hub[0].scheme == "Bearer");
        CHECK(hub[0].param("realm") == "https://auth.docker.io/token");
        CHECK(hub[0].param("service") == "registry.docker.io");
        CHECK(hub[0].param("scope") == "repository:library/busybox:pull");
        CHECK(!hub[0].param("error"));

        // distribution's htpasswd auth, and two challenges with spaces and empty elements.
        auto basic = parse_ok(R"(Basic realm="Registry Realm")");
        REQUIRE(basic.size() == 1);
        CHECK(reg::iequals(basic[0].scheme, "basic"));
        CHECK(basic[0].param("realm") == "Registry Realm");

        auto two =
            parse_ok(R"(, Basic realm="a, b" , , BEARER Realm=auth.example, Service = reg ,)");
        REQUIRE(two.size() == 2);
        CHECK(two[0].param("realm") == "a, b");
        CHECK(two[1].scheme == "BEARER");
        CHECK(two[1].param("realm") == "auth.example"); // a token value, unquoted
        CHECK(two[1].param("service") == "reg");        // names are lowercased, BWS around '='
        REQUIRE(two[1].params.size() == 2);

        // A scheme alone, a scheme with a token68, escapes in a quoted string.
        auto mixed = parse_ok(
            R"(Negotiate, NTLM abc+/def==, Bearer error="insufficient_scope",error_description="say \"pull\"\\")");
        REQUIRE(mixed.size() == 3);
        CHECK(mixed[0].scheme == "Negotiate");
        CHECK(mixed[0].params.empty());
        CHECK(mixed[1].token68 == "abc+/def==");
        CHECK(mixed[2].param("error") == "insufficient_scope");
        CHECK(mixed[2].param("error_description") == R"(say "pull"\)");

        CHECK(parse_ok("").empty());
        CHECK(parse_ok(R"(Bearer realm="")")[0].param("realm") == "");
    }

    TEST_CASE("challenges: malformed values are refused, saying where") {
        auto d = parse_bad(R"(Bearer realm="https://a/token)");
        CHECK(d.message.find("quoted-string") != std::string::npos);
        d = parse_bad(R"(Bearer realm="a",realm="b")");
        CHECK(d.message.find("'realm' appears twice") != std::string::npos);
        parse_bad(R"(Bearer Realm="a", realm="b")"); // names compare case-insensitively
        parse_bad(R"(Bearer realm="a" service="b")");
        parse_bad(R"(Bearer realm="a", =b)");
        parse_bad(R"(Bearer realm=a b)");
        parse_bad(R"("Bearer")");
        parse_bad("Bearer\trealm=a");
        parse_bad("Bearer realm=\"a\x01\"");
        parse_bad(R"(Bearer realm="a\)");
        parse_bad("NTLM abc def");
        std::string many;
        for (int i = 0; i < 17; ++i)
            many += "Basic, ";
        d = parse_bad(many);
        CHECK(d.message == "more than 16 challenges");
        std::string params = "Bearer ";
        for (int i = 0; i < 33; ++i)
            params += "p" + std::to_string(i) + "=v,";
        parse_bad(params);
    }
}
