// cz/oci/registry/error.hpp — the errors of cz/oci's registry side (cz::oci::registry::errc,
// category "cz.oci.registry"): HTTP responses, authentication challenges, credentials.
//
// As everywhere in cz, the error_code says what kind of failure; the parser's error_detail()
// says where (the byte offset in the response) and in the input's terms.
#pragma once

#include <cz/core/error.hpp>

#include <system_error>

namespace cz::oci::registry {

enum class errc {
    // Not an error: the parser consumed what it could and needs more bytes.
    need_more = 1,
    // A status line, header, chunk size or chunk end that HTTP/1.1 (RFC 9112) does not allow:
    // a bad version or status code, a control character, a header name that is no token,
    // whitespace before a colon, a folded header line, Content-Length values that disagree.
    malformed_response,
    // The status line and headers (or the trailers) are longer, or more, than the limits allow.
    head_too_large,
    // The connection ended in the middle of a response.
    truncated_response,
    // An interim response the client never asked for (101 Switching Protocols).
    unexpected_response,
    // A WWW-Authenticate value that is not a list of challenges as RFC 9110 writes them.
    malformed_challenge,
    // A URL (a token realm, a redirect's Location) that is not http(s)://host[:port]/path.
    invalid_url,
    // The registry wants credentials that were not given, or refused those that were.
    unauthorized,
    // A redirect the client will not follow: from HTTPS to plain HTTP, or too many of them.
    refused_redirect,
    // The registry answered with a status that the operation cannot go on from.
    unexpected_status,
    // docker's config file is not what docker writes: not JSON, a field of the wrong type, an
    // "auth" that is not base64 of "user:password", a credential helper name that is no name.
    malformed_credentials,
    // A docker-credential-* helper is not in PATH, failed, outlived its timeout, or answered
    // something that is not the protocol's JSON.
    credential_helper_failed,
    // An HTTP proxy answered CONNECT with a status other than 2xx: 407 (it wants credentials the
    // proxy URL did not give, or refused them), 403 (it does not allow the destination), 502
    // (it could not reach the registry); or answered a plain-HTTP request it was to forward with
    // 407.
    proxy_refused,
};

// The category of registry::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& registry_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), registry_category()};
}

} // namespace cz::oci::registry

template <>
struct std::is_error_code_enum<cz::oci::registry::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/error.ipp>
#endif
