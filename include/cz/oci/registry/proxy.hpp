// cz/oci/registry/proxy.hpp — which HTTP proxy, if any, a registry's URL is reached through,
// decided without I/O, as Go's net/http (golang.org/x/net/http/httpproxy, what docker and
// containerd use) decides it from HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
//
// Protocol primer (RFC 9110 section 9.3.6, CONNECT): the client opens TCP to the proxy and asks
//     CONNECT registry.example:443 HTTP/1.1
//     Host: registry.example:443
//     Proxy-Authorization: Basic base64(user:password)      (when the proxy URL has them)
// The proxy answers like any HTTP response; 2xx means that from the end of its head on, the
// connection is a byte tunnel to registry.example:443, and the client speaks TLS to the registry
// through it (SNI and the certificate check name the registry, never the proxy). Anything else
// (407 Proxy Authentication Required, 403, 502 Bad Gateway) means no tunnel.
// A plain-HTTP registry (insecure or loopback; loopback is never proxied, see select()) is not
// tunnelled: the client sends each request to the proxy in absolute-form (RFC 9112 section
// 3.2.2), which forwards it, as Go's net/http and containerd do (and squid allows, where its
// default refuses CONNECT to ports other than 443):
//     GET http://registry.example:5000/v2/app/manifests/1 HTTP/1.1
//     Host: registry.example:5000
//     Proxy-Authorization: Basic base64(user:password)      (on every request)
// The proxy sees that traffic, the registry's Authorization included, as on any plain-HTTP
// path; credentials are still kept per origin, so a redirect to another host gets none.
//
// The library never reads the environment by itself: a program calls proxy_from_environment()
// and puts the result in registry_options::proxy (the `cz` CLI does).
//
//     registry_options options;
//     options.proxy = proxy_from_environment();
//     proxy_selector proxies(options.proxy);               // throws for a proxy URL it can't use
//     if (auto* p = proxies.select(u)) ... connect to p->host:p->port; CONNECT u.authority()
//                                          (https), or requests in absolute-form (http) ...
#pragma once

#include <cz/core/error.hpp>
#include <cz/oci/registry/error.hpp>
#include <cz/oci/registry/url.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::oci::registry {

// The proxy configuration as the environment spells it.
struct proxy_settings {
    // The proxy for https:// URLs: "http://[user:password@]host[:port]" or "host[:port]"
    // (http:// assumed; the port defaults to 80, as in Go). "": none.
    std::string https_proxy;
    // The proxy for plain http:// URLs (insecure and loopback registries), likewise.
    std::string http_proxy;
    // Hosts reached directly, comma-separated: "*" (every host), a domain name ("example.com"
    // matches it and every name under it, ".example.com" only the names under it, "*.example.com"
    // likewise), an IP address, a CIDR range ("10.0.0.0/8", "fd00::/8"); names and addresses may
    // carry ":port" ("[::1]:5000" for IPv6), and then match only that port.
    std::string no_proxy;
};

// https_proxy, http_proxy and no_proxy from the environment, each read in lowercase first and
// then in uppercase (HTTPS_PROXY...), the lowercase one winning when both are set and non-empty,
// as curl reads them. (Go reads the uppercase one first; the two agree whenever only one is set.)
CZ_DECL proxy_settings proxy_from_environment();

// A proxy to connect to.
struct proxy_server {
    std::string host; // as a resolver takes it: no IPv6 brackets
    std::string port;
    // The Proxy-Authorization value ("Basic base64(user:password)"), or "" without credentials.
    std::string authorization;
    // "http://host:port", never the credentials: what messages name the proxy by.
    std::string name;
};

// Parses a proxy URL as proxy_settings takes it. errc::invalid_url, with `detail` saying what
// and where, for text that is no such URL, and for https:// and socks5:// proxies (cz speaks to
// proxies in plain HTTP only).
CZ_DECL proxy_server parse_proxy_url(std::string_view text, std::error_code& ec,
                                     error_info* detail = nullptr);

// A NO_PROXY list, read as Go reads it: entries it cannot make sense of (":80", "/8") are
// ignored rather than refused, so one odd entry in a shell's environment does not break pulls.
class no_proxy_list {
public:
    no_proxy_list() = default;
    CZ_DECL explicit no_proxy_list(std::string_view text);

    // Whether `host` (a name, or an IP address with or without IPv6 brackets; compared
    // case-insensitively) at `port` is reached directly.
    CZ_DECL bool bypasses(std::string_view host, std::string_view port) const;

private:
    struct ip_address {
        bool v6 = false;
        std::array<std::uint8_t, 16> bytes{};
    };
    struct entry {
        enum class kind { domain, ip, cidr } what = kind::domain;
        std::string domain;  // with a leading '.': ".example.com"
        bool exact = false;  // the domain itself matches too ("example.com", not ".example.com")
        ip_address ip;       // ip and cidr
        int prefix_bits = 0; // cidr
        std::string port;    // "": any port
    };
    CZ_DECL static std::optional<ip_address> parse_ip(std::string_view text);
    CZ_DECL void add(std::string_view item);

    bool all_ = false;
    std::vector<entry> entries_;
};

// proxy_settings made ready to answer, for each URL, which proxy to go through.
class proxy_selector {
public:
    proxy_selector() = default;
    // Throws cz::system_error (errc::invalid_url) naming the setting and what is wrong with it.
    CZ_DECL explicit proxy_selector(const proxy_settings& settings);

    // The proxy for `u`, or nullptr to connect directly: none is set for u's scheme, NO_PROXY
    // names u's host, or u's host is "localhost" or a loopback address. (Go never proxies those
    // either, whatever NO_PROXY says: httpproxy's useProxy returns false for them first.)
    CZ_DECL const proxy_server* select(const url& u) const;

private:
    std::optional<proxy_server> https_;
    std::optional<proxy_server> http_;
    no_proxy_list no_proxy_;
};

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/proxy.ipp>
#endif
