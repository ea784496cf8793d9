// cz/oci/registry/proxy.hpp without I/O: proxy URLs, NO_PROXY lists, which proxy a URL goes
// through, and the environment variables read.
#include <cz/oci/registry/proxy.hpp>

#include "support/support.hpp"

#include <cstdlib>

namespace reg = cz::oci::registry;

namespace {

reg::url url(std::string_view text) {
    std::error_code ec;
    auto u = reg::parse_url(text, ec);
    REQUIRE(!ec);
    return u;
}

std::string proxy_name(const reg::proxy_selector& s, std::string_view u) {
    auto* p = s.select(url(u));
    return p ? p->name : "direct";
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("proxy URL: scheme, credentials, host and port") {
        std::error_code ec;
        auto p = reg::parse_proxy_url("http://proxy.example:3128", ec);
        REQUIRE(!ec);
        CHECK(p.host == "proxy.example");
        CHECK(p.port == "3128");
        CHECK(p.authorization.empty());
        CHECK(p.name == "http://proxy.example:3128");

        // No scheme: http:// assumed; no port: 80, as Go.
        p = reg::parse_proxy_url("proxy.example", ec);
        REQUIRE(!ec);
        CHECK(p.port == "80");
        p = reg::parse_proxy_url("HTTP://10.0.0.1:8080/", ec);
        REQUIRE(!ec);
        CHECK(p.host == "10.0.0.1");
        CHECK(p.port == "8080");

        // user:password, percent-decoded, as Basic; never in the name.
        p = reg::parse_proxy_url("http://alice:s%40cret@[::1]:3128", ec);
        REQUIRE(!ec);
        CHECK(p.host == "::1");
        CHECK(p.name == "http://[::1]:3128");
        CHECK(p.authorization == "Basic YWxpY2U6c0BjcmV0"); // base64("alice:s@cret")
        p = reg::parse_proxy_url("bob@proxy:3128", ec);
        REQUIRE(!ec);
        CHECK(p.authorization == "Basic Ym9iOg=="); // base64("bob:")

        cz::error_info why;
        for (auto bad :
             {"", "https://proxy:443", "socks5://proxy:1080", "http://", "http://:80",
              "proxy:99999", "proxy:", "http://a b:80", "http://u:%zz@proxy", "http://[::1:80"}) {
            CAPTURE(bad);
            reg::parse_proxy_url(bad, ec, &why);
            CHECK(ec == reg::errc::invalid_url);
            CHECK(!why.message.empty());
        }
        reg::parse_proxy_url("https://proxy:443", ec, &why);
        CHECK(why.message.find("https://") != std::string::npos);
        // Positions count in the text given, past the credentials.
        reg::parse_proxy_url("http://u:p@proxy:0", ec, &why);
        CHECK(ec == reg::errc::invalid_url);
        CHECK(why.offset == 11u);
    }

    TEST_CASE("NO_PROXY: names as suffixes on label boundaries, addresses, CIDR, ports") {
        reg::no_proxy_list list(" Example.com, .dot.org ,*.star.net,10.1.2.3,192.168.0.0/16,"
                                "fd00::/8,[2001:db8::1]:5000,ported.io:8443,2001:db8::2,,");
        CHECK(list.bypasses("example.com", "443"));
        CHECK(list.bypasses("a.example.com", "443"));
        CHECK(list.bypasses("A.B.EXAMPLE.COM", "5000"));
        CHECK_FALSE(list.bypasses("notexample.com", "443")); // a label boundary, not a substring
        CHECK_FALSE(list.bypasses("example.com.evil", "443"));
        CHECK(list.bypasses("a.dot.org", "443"));
        CHECK_FALSE(list.bypasses("dot.org", "443")); // ".dot.org": names under it only
        CHECK(list.bypasses("a.star.net", "443"));
        CHECK_FALSE(list.bypasses("star.net", "443"));
        CHECK(list.bypasses("10.1.2.3", "80"));
        CHECK_FALSE(list.bypasses("10.1.2.4", "80"));
        CHECK(list.bypasses("192.168.77.1", "443"));
        CHECK_FALSE(list.bypasses("192.169.0.1", "443"));
        CHECK(list.bypasses("fd12::1", "443"));
        CHECK(list.bypasses("[fd12::1]", "443"));
        CHECK_FALSE(list.bypasses("fe80::1", "443"));
        CHECK(list.bypasses("[2001:db8::1]", "5000"));
        CHECK_FALSE(list.bypasses("2001:db8::1", "5001"));
        CHECK(list.bypasses("2001:db8::2", "1"));
        CHECK(list.bypasses("ported.io", "8443"));
        CHECK(list.bypasses("x.ported.io", "8443"));
        CHECK_FALSE(list.bypasses("ported.io", "443"));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        CHECK(list.bypasses("::ffff:10.1.2.3", "80"));
        // Names match names only: "3" is no suffix match for an address.
        CHECK_FALSE(reg::no_proxy_list("3").bypasses("10.1.2.3", "80"));

        CHECK(reg::no_proxy_list("*").bypasses("anything.example", "1"));
        CHECK(reg::no_proxy_list("a.b, *").bypasses("10.0.0.1", "1"));
        CHECK_FALSE(reg::no_proxy_list("").bypasses("example.com", "443"));
        // Entries that make no sense are ignored, the others still count.
        reg::no_proxy_list odd(":80,/8,10.0.0.0/99,[::1,a:b:c,host:port,.,good.example");
        CHECK_FALSE(odd.bypasses("host", "80"));
        CHECK_FALSE(odd.bypasses("10.0.0.1", "80"));
        CHECK(odd.bypasses("good.example", "443"));
        // "*" only alone: "*.com" is a domain.
        CHECK(reg::no_proxy_list("*.com").bypasses("x.com", "1"));
        CHECK_FALSE(reg::no_proxy_list("*.com").bypasses("x.org", "1"));
    }

    TEST_CASE("proxy_selector: the proxy for the scheme, NO_PROXY, loopback never proxied") {
        reg::proxy_selector none;
        CHECK(none.select(url("https://registry.example/v2/")) == nullptr);

        reg::proxy_selector s({"http://sp:3128", "hp:8080", "skip.example,10.0.0.0/8"});
        CHECK(proxy_name(s, "https://registry.example/v2/") == "http://sp:3128");
        CHECK(proxy_name(s, "http://registry.example:5000/v2/") == "http://hp:8080");
        CHECK(proxy_name(s, "https://a.skip.example/v2/") == "direct");
        CHECK(proxy_name(s, "https://10.3.3.3/v2/") == "direct");
        CHECK(proxy_name(s, "https://11.3.3.3/v2/") == "http://sp:3128");
        // As Go's httpproxy: localhost and loopback addresses are never proxied.
        CHECK(proxy_name(s, "https://localhost:5000/v2/") == "direct");
        CHECK(proxy_name(s, "https://LOCALHOST/v2/") == "direct");
        CHECK(proxy_name(s, "http://127.0.0.1:5000/v2/") == "direct");
        CHECK(proxy_name(s, "http://127.9.9.9:5000/v2/") == "direct");
        CHECK(proxy_name(s, "https://[::1]:5000/v2/") == "direct");
        CHECK(proxy_name(s, "https://localhost.example/v2/") == "http://sp:3128");

        // Only an https proxy: plain HTTP goes direct.
        reg::proxy_selector https_only({"sp:3128", "", ""});
        CHECK(proxy_name(https_only, "http://registry.example/v2/") == "direct");
        CHECK(proxy_name(https_only, "https://registry.example/v2/") == "http://sp:3128");

        // A bad setting is an error naming the setting, not its value (it may hold a password).
        try {
            reg::proxy_selector bad({"socks5://u:secret@p:1080", "", ""});
            FAIL("no error");
        } catch (const std::system_error& e) {
            std::string what = e.what();
            CHECK(what.find("HTTPS_PROXY") != std::string::npos);
            CHECK(what.find("secret") == std::string::npos);
        }
    }

    TEST_CASE("proxy_from_environment: lowercase first, then uppercase") {
        auto keep = [](const char* name) {
            const char* v = std::getenv(name);
            return std::pair<std::string, bool>(v ? v : "", v != nullptr);
        };
        const char* names[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                               "HTTP_PROXY",  "no_proxy",    "NO_PROXY"};
        std::vector<std::pair<std::string, bool>> saved;
        for (auto n : names)
            saved.push_back(keep(n));
        for (auto n : names)
            ::unsetenv(n);
        CHECK(reg::proxy_from_environment().https_proxy.empty());
        ::setenv("HTTPS_PROXY", "upper:1", 1);
        ::setenv("HTTP_PROXY", "hupper:2", 1);
        ::setenv("NO_PROXY", "a.example", 1);
        auto s = reg::proxy_from_environment();
        CHECK(s.https_proxy == "upper:1");
        CHECK(s.http_proxy == "hupper:2");
        CHECK(s.no_proxy == "a.example");
        ::setenv("https_proxy", "lower:1", 1);
        ::setenv("no_proxy", "", 1); // empty: as unset
        s = reg::proxy_from_environment();
        CHECK(s.https_proxy == "lower:1");
        CHECK(s.no_proxy == "a.example");
        for (std::size_t i = 0; i < saved.size(); ++i) {
            if (saved[i].second)
                ::setenv(names[i], saved[i].first.c_str(), 1);
            else
                ::unsetenv(names[i]);
        }
    }
}
