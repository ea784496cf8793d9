// cz/oci/detail/report.hpp — how cz/oci's parsers report an error: the code, and a detail line
// that quotes the input safely.
#pragma once

#include <cz/oci/error.hpp>

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace cz::oci::detail {

// Sets `ec` to `e` and, when the caller asked for it, *detail to `message`. Returns false, so
// parsers can `return set_error(...)`.
inline bool set_error(std::error_code& ec, std::string* detail, errc e, std::string message) {
    ec = e;
    if (detail) *detail = std::move(message);
    return false;
}

// Quotes a value from the input for an error message: at most 80 characters, control bytes,
// quotes and backslashes escaped, so a hostile document cannot flood or garble a terminal.
inline std::string quote_input(std::string_view s) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < 80; ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    if (s.size() > 80) out += "...";
    return out + "\"";
}

} // namespace cz::oci::detail
