// registry_client's decisions that need no server: where a redirect may go.
#include <cz/oci/registry/client.hpp>

#include "support/support.hpp"

namespace reg = cz::oci::registry;

namespace {

reg::url url(std::string_view text) {
    std::error_code ec;
    auto u = reg::parse_url(text, ec);
    REQUIRE(!ec);
    return u;
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("client: redirects, followed within HTTPS or to it, refused to plain HTTP") {
        auto from = url("https://registry.example/v2/x/blobs/sha256:ab");
        std::error_code ec;
        std::string why;
        auto next =
            reg::detail::follow_redirect(from, "https://cdn.example:8443/b?sig=1", 1, ec, why);
        CHECK(!ec);
        CHECK(next.str() == "https://cdn.example:8443/b?sig=1");
        next = reg::detail::follow_redirect(from, "/v2/x/blobs/other", 1, ec, why);
        CHECK(!ec);
        CHECK(next.str() == "https://registry.example/v2/x/blobs/other");

        // HTTPS to plain HTTP: refused, to another host and to the same one alike.
        for (auto location : {"http://cdn.example/b", "http://registry.example/v2/x/blobs/a",
                              "HTTP://127.0.0.1:5000/b"}) {
            INFO(location);
            reg::detail::follow_redirect(from, location, 1, ec, why);
            CHECK(ec == reg::errc::refused_redirect);
            CHECK(why.find("from HTTPS to plain HTTP") != std::string::npos);
        }
        // Plain HTTP (an insecure or loopback registry) may go anywhere, HTTPS included.
        auto plain = url("http://127.0.0.1:5000/v2/x/blobs/sha256:ab");
        next = reg::detail::follow_redirect(plain, "http://127.0.0.1:6000/b", 1, ec, why);
        CHECK(!ec);
        CHECK(next.origin() == "http://127.0.0.1:6000");
        next = reg::detail::follow_redirect(plain, "https://cdn.example/b", 1, ec, why);
        CHECK(!ec);
        CHECK(next.https);

        // Too many, and a Location that is no URL.
        reg::detail::follow_redirect(from, "https://cdn.example/b", reg::detail::max_redirects + 1,
                                     ec, why);
        CHECK(ec == reg::errc::refused_redirect);
        CHECK(why.find("more than 5 redirects") != std::string::npos);
        reg::detail::follow_redirect(from, "ftp://cdn.example/b", 1, ec, why);
        CHECK(ec == reg::errc::invalid_url);
        CHECK(why.find("ftp://cdn.example/b") != std::string::npos);
        reg::detail::follow_redirect(from, "https://user:pw@cdn.example/b", 1, ec, why);
        CHECK(ec == reg::errc::invalid_url);
    }
}
