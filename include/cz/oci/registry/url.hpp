// cz/oci/registry/url.hpp — the URLs a registry hands out (a token service's realm, a redirect's
// Location, an upload's Location), parsed without I/O.
//
// Only what a registry client follows: `http://` or `https://`, a host (a name, an IPv4 address,
// or an IPv6 address in brackets), an optional port, and an origin-form target (path and query;
// a fragment is dropped). No user:password@ (credentials never travel in URLs here).
#pragma once

#include <cz/core/error.hpp>
#include <cz/oci/registry/error.hpp>

#include <string>
#include <string_view>

namespace cz::oci::registry {

struct url {
    bool https = true;
    std::string host;   // "registry.example", "127.0.0.1", "[::1]"
    std::string port;   // "443", "80" or the explicit one
    std::string target; // "/v2/x/blobs/uploads/1?_state=abc"; "/" when empty

    // host[:port], as a Host header writes it (the port only when not the scheme's default).
    CZ_DECL std::string authority() const;
    // The host without IPv6 brackets, as a resolver or a certificate check takes it.
    CZ_DECL std::string bare_host() const;
    // scheme://authority, what connections are pooled and credentials are kept by.
    std::string origin() const { return (https ? "https://" : "http://") + authority(); }
    std::string str() const { return origin() + target; }
};

// Parses an absolute http(s) URL. errc::invalid_url, with `detail` saying what, otherwise.
CZ_DECL url parse_url(std::string_view text, std::error_code& ec, error_info* detail = nullptr);

// A Location header against the URL of the request it answered: an absolute URL, or a path
// (absolute, "/..."; relative paths do not occur in registries and are refused).
CZ_DECL url resolve_location(const url& base, std::string_view location, std::error_code& ec,
                             error_info* detail = nullptr);

// Percent-encodes `s` for a query component (everything but unreserved characters).
CZ_DECL std::string query_escape(std::string_view s);

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/url.ipp>
#endif
