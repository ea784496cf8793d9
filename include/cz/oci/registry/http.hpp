// cz/oci/registry/http.hpp — HTTP/1.1 responses, parsed without I/O.
//
// Protocol primer (RFC 9112), as a registry answers:
//   HTTP/1.1 200 OK\r\n                                     status line: version, code, reason
//   Content-Type: application/vnd.oci.image.manifest.v1+json\r\n
//   Docker-Content-Digest: sha256:...\r\n                   headers: name ":" OWS value OWS
//   Content-Length: 1234\r\n
//   \r\n                                                    an empty line ends the head
//   <1234 bytes of body>
// The body is delimited by, in this order: nothing at all (a response to HEAD; 1xx, 204, 304),
// Transfer-Encoding whose last coding is chunked (hex size line, data, CRLF, ..., a 0 size line,
// trailers, an empty line), Content-Length, or the end of the connection. Interim 1xx responses
// (100 Continue) come before the real one and are skipped.
//
// The server is not trusted: the head (status line + headers) and the trailers are capped, and
// everything RFC 9112 tells a recipient to reject is rejected (folded lines, a space before the
// colon, control characters, Content-Length values that disagree). Bodies are not capped here:
// the caller knows how much it wants (4 MiB for a manifest, the descriptor's size for a blob) and
// checks content_length() and the bytes as they come.
//
// Usage (the caller owns the buffer and the socket):
//
//     http_response_parser p;                    // p.reset(true) before reading a HEAD's answer
//     for (;;) {
//         auto used = p.feed(buffered, ec);      // consumes up to and including one event
//         buffered.remove_prefix(used);          // keep what it did not consume
//         if (ec == errc::need_more) { read more; on end of stream: p.finish(ec); continue; }
//         if (ec) fail(p.error_detail());
//         if (p.event() == http_event::head) ... p.head() ...
//         if (p.event() == http_event::body) ... p.body() ...   // a view into `buffered`
//         if (p.event() == http_event::done) break;              // p.keep_alive(): reuse it
//     }
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/error.hpp>
#include <cz/oci/registry/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::oci::registry {

struct http_header {
    std::string name;  // as received; compare case-insensitively
    std::string value; // without the optional whitespace around it
};

struct http_response_head {
    int version_minor = 1; // HTTP/1.<minor>
    int status = 0;        // 200, 404, ...
    std::string reason;
    std::vector<http_header> headers;

    // The value of the first header named `name` (case-insensitive), if any.
    CZ_DECL std::optional<std::string_view> header(std::string_view name) const;
};

struct http_limits {
    // The status line and headers together (and, separately, a chunked body's trailers).
    std::size_t max_head = 64 * 1024;
    std::size_t max_headers = 128;
};

enum class http_event {
    none,
    head, // head() holds the final response's status and headers
    body, // body() holds the next bytes of the body
    done, // the response is complete
};

// ASCII case-insensitive comparison, as header names and tokens compare.
CZ_DECL bool iequals(std::string_view a, std::string_view b) noexcept;

class http_response_parser {
public:
    explicit http_response_parser(http_limits limits = {}) : limits_(limits) {}

    // Readies the parser for the next response on the connection. `to_head_request`: the
    // request was HEAD, so the response has no body whatever its headers say.
    CZ_DECL void reset(bool to_head_request = false);

    // Consumes bytes from the start of `in`, up to and including the next event, and returns how
    // many. ec is errc::need_more when no event could be completed: the bytes not consumed are a
    // line still incomplete, to be handed in again with more after them. Any other error is
    // fatal (error_detail() says where) and every later call fails the same way.
    CZ_DECL std::size_t feed(bytes_view in, std::error_code& ec);

    // The connection reached end of stream. Completes a body that runs to the close (event done);
    // errc::truncated_response anywhere else in a response.
    CZ_DECL void finish(std::error_code& ec);

    http_event event() const noexcept { return event_; }
    const http_response_head& head() const noexcept { return head_; }
    // After event::body: the bytes, a view into the last input.
    bytes_view body() const noexcept { return body_; }
    // After event::head: the body's announced length, when Content-Length delimits it.
    std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
    // Inside a Content-Length body: how many of its bytes are still to come, all body, so that
    // a reader may receive them straight into where they go and feed them from there (the body
    // event then views that very memory). 0 anywhere else.
    std::uint64_t body_remaining() const noexcept {
        return state_ == state::length_body ? remaining_ : 0;
    }
    // After event::done: whether the connection may carry another request.
    bool keep_alive() const noexcept { return keep_alive_; }
    // Response bytes consumed since reset().
    std::uint64_t offset() const noexcept { return offset_; }
    const error_info& error_detail() const noexcept { return error_detail_; }

private:
    enum class state {
        status_line,
        header_line,
        length_body,
        chunk_size,
        chunk_data,
        chunk_end,
        trailer_line,
        close_body,
        done,
        failed,
    };

    CZ_DECL std::size_t fail(std::error_code& ec, errc what, std::string message, std::uint64_t at);
    CZ_DECL bool take_line(bytes_view in, std::size_t budget, std::string_view& line,
                           std::size_t& used, std::error_code& ec);
    CZ_DECL bool parse_status_line(std::string_view line, std::error_code& ec);
    CZ_DECL bool parse_header_line(std::string_view line, std::error_code& ec);
    CZ_DECL bool end_of_head(std::error_code& ec);
    CZ_DECL std::size_t emit_body(bytes_view in, std::uint64_t limit);

    http_limits limits_;
    state state_ = state::status_line;
    http_event event_ = http_event::none;
    http_response_head head_;
    bytes_view body_;
    bool to_head_request_ = false;
    bool keep_alive_ = false;
    std::optional<std::uint64_t> content_length_;
    std::uint64_t remaining_ = 0; // of a Content-Length body or of the current chunk
    std::size_t head_bytes_ = 0;  // of the current head or trailer section
    std::size_t trailers_ = 0;
    std::uint64_t offset_ = 0;
    error_info error_detail_;
    std::error_code error_;
};

// The request line and headers of a request, ready to write: `METHOD TARGET HTTP/1.1`, Host,
// then `headers` in order, then the empty line. Names and values with CR, LF or NUL (which would
// smuggle a header or a request) are refused with errc::invalid_argument of cz/core.
CZ_DECL std::string format_http_request(std::string_view method, std::string_view target,
                                        std::string_view host,
                                        const std::vector<http_header>& headers,
                                        std::error_code& ec);

// An HTTP-date (RFC 9110 section 5.6.7), in any of the three forms a recipient must accept:
//   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT     (what servers send)
//   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT    (two-digit years: 70-99 are 19xx, else 20xx)
//   asctime      Sun Nov  6 08:49:37 1994
// The day name is checked only for being one; the date must exist (no 31 Apr), years 1900-9999.
CZ_DECL std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text);

// A Retry-After value (RFC 9110 section 10.2.3), as the wait it asks for from `now`:
// delay-seconds (digits only; more than max_retry_after_value reads as that) or an HTTP-date
// (zero once it has passed). nullopt for anything else: the caller falls back to its own backoff.
// Callers cap the wait themselves: a server may ask for anything.
inline constexpr std::chrono::seconds max_retry_after_value{1'000'000'000};
CZ_DECL std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                              std::chrono::sys_seconds now);

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/http.ipp>
#endif
