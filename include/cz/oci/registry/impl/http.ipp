// Out-of-line definitions for cz/oci/registry/http.hpp.
#pragma once

#include <cz/oci/registry/detail/syntax.hpp>
#include <cz/oci/registry/http.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace cz::oci::registry {
CZ_DECL bool iequals(std::string_view a, std::string_view b) noexcept {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

CZ_DECL std::optional<std::string_view> http_response_head::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}

CZ_DECL void http_response_parser::reset(bool to_head_request) {
    state_ = state::status_line;
    event_ = http_event::none;
    head_ = {};
    body_ = {};
    to_head_request_ = to_head_request;
    keep_alive_ = false;
    content_length_.reset();
    remaining_ = 0;
    head_bytes_ = 0;
    trailers_ = 0;
    offset_ = 0;
    error_detail_.clear();
    error_.clear();
}

CZ_DECL std::size_t http_response_parser::fail(std::error_code& ec, errc what, std::string message,
                                               std::uint64_t at) {
    state_ = state::failed;
    error_ = ec = what;
    error_detail_ = {std::move(message), at};
    return 0;
}

// The next line of `in` (without its CRLF, or a bare LF, which RFC 9112 lets a recipient take),
// if it is complete within `budget` bytes.
CZ_DECL bool http_response_parser::take_line(bytes_view in, std::size_t budget,
                                             std::string_view& line, std::size_t& used,
                                             std::error_code& ec) {
    auto text = as_chars(in);
    auto end = text.substr(0, budget).find('\n');
    if (end == std::string_view::npos) {
        if (text.size() >= budget) {
            fail(ec, errc::head_too_large,
                 fmt::format("a line runs past the limit of {} bytes",
                             state_ == state::chunk_size || state_ == state::chunk_end
                                 ? budget
                                 : limits_.max_head),
                 offset_);
        } else {
            ec = errc::need_more;
        }
        return false;
    }
    used = end + 1;
    line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
}

CZ_DECL bool http_response_parser::parse_status_line(std::string_view line, std::error_code& ec) {
    // HTTP-version SP status-code SP [ reason-phrase ]; a missing last SP is tolerated.
    auto bad = [&](std::string_view why) {
        fail(ec, errc::malformed_response, fmt::format("status line: {}", why), offset_);
        return false;
    };
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[7] < '0' || line[7] > '9' ||
        line[8] != ' ')
        return bad("not HTTP/1.x");
    auto code = line.substr(9, 3);
    if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        code[0] < '1' || code[0] > '5')
        return bad("the status code is not 100 to 599");
    if (line.size() > 12 && line[12] != ' ') return bad("the status code is not 3 digits");
    auto reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    if (!detail::is_field_text(reason)) return bad("a control character in the reason");
    head_.version_minor = line[7] - '0';
    head_.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    head_.reason = std::string(reason);
    return true;
}

CZ_DECL bool http_response_parser::parse_header_line(std::string_view line, std::error_code& ec) {
    auto bad = [&](std::string_view why) {
        fail(ec, errc::malformed_response, fmt::format("header line: {}", why), offset_);
        return false;
    };
    if (line.front() == ' ' || line.front() == '\t')
        return bad("a folded line (obs-fold) is not accepted");
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return bad("no colon");
    auto name = line.substr(0, colon);
    if (!detail::is_token(name))
        return bad(name.empty() || name.back() == ' ' || name.back() == '\t'
                       ? "no name, or whitespace before the colon"
                       : "the name is not a token");
    auto value = detail::trim_ows(line.substr(colon + 1));
    if (!detail::is_field_text(value)) return bad("a control character in the value");
    if (head_.headers.size() >= limits_.max_headers) {
        fail(ec, errc::head_too_large,
             fmt::format("more than {} header lines", limits_.max_headers), offset_);
        return false;
    }
    head_.headers.push_back({std::string(name), std::string(value)});
    return true;
}

// The head is complete: settles how the body is delimited and whether the connection lives on.
// Returns false for an interim response (skipped: the real one follows) or an error.
CZ_DECL bool http_response_parser::end_of_head(std::error_code& ec) {
    if (head_.status == 101) {
        fail(ec, errc::unexpected_response,
             "101 Switching Protocols to a request that asked for none", offset_);
        return false;
    }
    if (head_.status < 200) { // 100 Continue, 103 Early Hints: the final response follows
        head_ = {};
        head_bytes_ = 0;
        state_ = state::status_line;
        return false;
    }
    bool close = false, persistent = false;
    bool chunked = false, has_transfer_encoding = false;
    std::optional<std::uint64_t> length;
    for (const auto& h : head_.headers) {
        if (iequals(h.name, "connection")) {
            detail::for_each_list_element(h.value, [&](std::string_view option) {
                if (iequals(option, "close")) close = true;
                if (iequals(option, "keep-alive")) persistent = true;
            });
        } else if (iequals(h.name, "transfer-encoding")) {
            detail::for_each_list_element(h.value, [&](std::string_view coding) {
                has_transfer_encoding = true;
                chunked = iequals(coding, "chunked"); // only the last coding counts
            });
        } else if (iequals(h.name, "content-length")) {
            bool ok = true;
            detail::for_each_list_element(h.value, [&](std::string_view digits) {
                std::uint64_t v = 0;
                for (char c : digits) {
                    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) {
                        ok = false;
                        return;
                    }
                    v = v * 10 + std::uint64_t(c - '0');
                }
                if (length && *length != v) ok = false;
                length = v;
            });
            if (!ok || !length) {
                fail(ec, errc::malformed_response,
                     fmt::format("Content-Length: '{}' is not one length", h.value), offset_);
                return false;
            }
        }
    }
    keep_alive_ = head_.version_minor >= 1 ? !close : persistent && !close;
    content_length_ = has_transfer_encoding ? std::nullopt : length;
    if (to_head_request_ || head_.status == 204 || head_.status == 304) {
        state_ = state::done;
    } else if (has_transfer_encoding) {
        // Transfer-Encoding overrides Content-Length; a message that has both was made to
        // confuse someone, so the connection is not reused after it (RFC 9112 section 6.3).
        if (length) keep_alive_ = false;
        if (chunked) {
            state_ = state::chunk_size;
        } else {
            state_ = state::close_body;
            keep_alive_ = false;
        }
    } else if (length) {
        remaining_ = *length;
        state_ = state::length_body;
    } else {
        state_ = state::close_body;
        keep_alive_ = false;
    }
    return true;
}

CZ_DECL std::size_t http_response_parser::emit_body(bytes_view in, std::uint64_t limit) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), limit));
    body_ = in.first(n);
    event_ = http_event::body;
    offset_ += n;
    return n;
}

CZ_DECL std::size_t http_response_parser::feed(bytes_view in, std::error_code& ec) {
    if (state_ == state::failed) {
        ec = error_;
        return 0;
    }
    ec.clear();
    event_ = http_event::none;
    body_ = {};
    std::size_t consumed = 0;
    constexpr std::size_t max_chunk_line = 4096; // a size, extensions, CRLF
    for (;;) {
        auto rest = in.subspan(consumed);
        std::string_view line;
        std::size_t used = 0;
        switch (state_) {
        case state::status_line:
        case state::header_line:
        case state::trailer_line: {
            if (!take_line(rest, limits_.max_head - head_bytes_, line, used, ec)) return consumed;
            if (state_ == state::status_line) {
                if (!parse_status_line(line, ec)) return consumed;
                state_ = state::header_line;
            } else if (state_ == state::header_line && !line.empty()) {
                if (!parse_header_line(line, ec)) return consumed;
            } else if (state_ == state::header_line) {
                head_bytes_ += used;
                offset_ += used;
                consumed += used;
                if (!end_of_head(ec)) {
                    if (ec) return consumed;
                    continue; // an interim response, skipped
                }
                event_ = http_event::head;
                return consumed;
            } else if (line.empty()) {
                state_ = state::done;
                event_ = http_event::done;
                offset_ += used;
                return consumed + used;
            } else if (line.find(':') == std::string_view::npos || !detail::is_field_text(line) ||
                       ++trailers_ > limits_.max_headers) {
                return fail(ec, errc::malformed_response, "trailer line", offset_);
            }
            head_bytes_ += used;
            offset_ += used;
            consumed += used;
            break;
        }
        case state::length_body:
            if (remaining_ == 0) {
                state_ = state::done;
                event_ = http_event::done;
                return consumed;
            }
            if (rest.empty()) {
                ec = errc::need_more;
                return consumed;
            }
            consumed += emit_body(rest, remaining_);
            remaining_ -= body_.size();
            return consumed;
        case state::chunk_size: {
            if (!take_line(rest, max_chunk_line, line, used, ec)) return consumed;
            // chunk-size = 1*HEXDIG, then optional extensions after ';' (ignored).
            auto digits = detail::trim_ows(line.substr(0, line.find(';')));
            std::uint64_t size = 0;
            bool ok = !digits.empty() && digits.size() <= 15; // below 2^60
            for (char c : digits) {
                int v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (v < 0) ok = false;
                size = size * 16 + std::uint64_t(v < 0 ? 0 : v);
            }
            if (!ok || !detail::is_field_text(line))
                return fail(ec, errc::malformed_response,
                            fmt::format("chunk size line '{}'", line.substr(0, 40)), offset_);
            offset_ += used;
            consumed += used;
            if (size == 0) {
                state_ = state::trailer_line;
                head_bytes_ = 0;
            } else {
                remaining_ = size;
                state_ = state::chunk_data;
            }
            break;
        }
        case state::chunk_data:
            if (rest.empty()) {
                ec = errc::need_more;
                return consumed;
            }
            consumed += emit_body(rest, remaining_);
            remaining_ -= body_.size();
            if (remaining_ == 0) state_ = state::chunk_end;
            return consumed;
        case state::chunk_end:
            if (!take_line(rest, 2, line, used, ec)) {
                if (ec == errc::head_too_large) // longer than CRLF: the chunk ran on
                    return fail(ec, errc::malformed_response,
                                "chunk data runs past its size (no CRLF after it)", offset_);
                return consumed;
            }
            if (!line.empty())
                return fail(ec, errc::malformed_response,
                            "chunk data runs past its size (no CRLF after it)", offset_);
            offset_ += used;
            consumed += used;
            state_ = state::chunk_size;
            break;
        case state::close_body:
            if (rest.empty()) {
                ec = errc::need_more;
                return consumed;
            }
            return consumed + emit_body(rest, rest.size());
        case state::done:
            event_ = http_event::done;
            return consumed;
        case state::failed:
            ec = error_;
            return consumed;
        }
    }
}

CZ_DECL void http_response_parser::finish(std::error_code& ec) {
    event_ = http_event::none;
    body_ = {};
    if (state_ == state::failed) {
        ec = error_;
        return;
    }
    ec.clear();
    if (state_ == state::close_body || state_ == state::done) {
        state_ = state::done;
        event_ = http_event::done;
        return;
    }
    fail(ec, errc::truncated_response,
         offset_ == 0 ? "the connection closed before a response"
                      : "the connection closed in the middle of the response",
         offset_);
}

CZ_DECL std::string format_http_request(std::string_view method, std::string_view target,
                                        std::string_view host,
                                        const std::vector<http_header>& headers,
                                        std::error_code& ec) {
    auto safe = [](std::string_view s) {
        return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
    };
    bool ok = detail::is_token(method) && !target.empty() && detail::is_field_text(target) &&
              target.find(' ') == std::string_view::npos && !host.empty() &&
              detail::is_field_text(host) && host.find(' ') == std::string_view::npos;
    for (const auto& h : headers)
        ok = ok && detail::is_token(h.name) && safe(h.value);
    if (!ok) {
        ec = cz::errc::invalid_argument;
        return {};
    }
    ec.clear();
    std::string out = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", method, target, host);
    for (const auto& h : headers)
        out += fmt::format("{}: {}\r\n", h.name, h.value);
    out += "\r\n";
    return out;
}

namespace detail {

// "Jan".."Dec" -> 1..12; 0 for anything else.
inline unsigned http_month(std::string_view m) {
    constexpr std::string_view names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (unsigned i = 0; i < 12; ++i)
        if (m == names[i]) return i + 1;
    return 0;
}

// Exactly `width` digits (a leading space allowed for asctime's day) at the front of `s`.
inline std::optional<unsigned> http_digits(std::string_view s, std::size_t width,
                                           bool leading_space = false) {
    if (s.size() < width) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = 0; i < width; ++i) {
        char c = s[i];
        if (leading_space && i == 0 && c == ' ') continue;
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    return v;
}

// "HH:MM:SS" at the front of `s`.
inline std::optional<std::chrono::seconds> http_time_of_day(std::string_view s) {
    if (s.size() < 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
    auto h = http_digits(s, 2), m = http_digits(s.substr(3), 2), sec = http_digits(s.substr(6), 2);
    if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt; // 60: leap
    return std::chrono::hours(*h) + std::chrono::minutes(*m) + std::chrono::seconds(*sec);
}

inline std::optional<std::chrono::sys_seconds>
http_date_from(unsigned year, unsigned month, unsigned day, std::chrono::seconds time) {
    using namespace std::chrono;
    if (year < 1900 || year > 9999 || month == 0) return std::nullopt;
    year_month_day ymd{std::chrono::year(int(year)), std::chrono::month(month),
                       std::chrono::day(day)};
    if (!ymd.ok()) return std::nullopt;
    return sys_seconds(sys_days(ymd)) + time;
}

} // namespace detail

CZ_DECL std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view s) {
    constexpr std::string_view short_days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    constexpr std::string_view long_days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday"};
    auto starts_with_any = [&](std::string_view text, const auto& names) -> std::size_t {
        for (auto n : names)
            if (text.starts_with(n)) return n.size();
        return 0;
    };
    if (s.size() == 29 && s.substr(3, 2) == ", " && starts_with_any(s, short_days) == 3) {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if (s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s.substr(25) != " GMT")
            return std::nullopt;
        auto day = detail::http_digits(s.substr(5), 2);
        auto year = detail::http_digits(s.substr(12), 4);
        auto time = detail::http_time_of_day(s.substr(17));
        if (!day || !year || !time) return std::nullopt;
        return detail::http_date_from(*year, detail::http_month(s.substr(8, 3)), *day, *time);
    }
    if (auto n = starts_with_any(s, long_days); n != 0 && s.size() == n + 24 && s[n] == ',') {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        auto rest = s.substr(n + 1);
        if (rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' ||
            rest.substr(19) != " GMT")
            return std::nullopt;
        auto day = detail::http_digits(rest.substr(1), 2);
        auto year = detail::http_digits(rest.substr(8), 2);
        auto time = detail::http_time_of_day(rest.substr(11));
        if (!day || !year || !time) return std::nullopt;
        return detail::http_date_from(*year + (*year >= 70 ? 1900 : 2000),
                                      detail::http_month(rest.substr(4, 3)), *day, *time);
    }
    if (s.size() == 24 && starts_with_any(s, short_days) == 3) {
        // asctime: "Sun Nov  6 08:49:37 1994"
        if (s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return std::nullopt;
        auto day = detail::http_digits(s.substr(8), 2, true);
        auto time = detail::http_time_of_day(s.substr(11));
        auto year = detail::http_digits(s.substr(20), 4);
        if (!day || !year || !time) return std::nullopt;
        return detail::http_date_from(*year, detail::http_month(s.substr(4, 3)), *day, *time);
    }
    return std::nullopt;
}

CZ_DECL std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                              std::chrono::sys_seconds now) {
    using namespace std::chrono;
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos) {
        auto digits = value.substr(value.find_first_not_of('0') == std::string_view::npos
                                       ? value.size() - 1
                                       : value.find_first_not_of('0'));
        if (digits.size() > 10) return max_retry_after_value;
        seconds::rep n = 0;
        for (char c : digits)
            n = n * 10 + (c - '0');
        return std::min(seconds(n), max_retry_after_value);
    }
    auto date = parse_http_date(value);
    if (!date) return std::nullopt;
    if (*date <= now) return seconds(0);
    return std::min(duration_cast<seconds>(*date - now), max_retry_after_value);
}

} // namespace cz::oci::registry
