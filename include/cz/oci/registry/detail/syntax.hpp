// cz/oci/registry/detail/syntax.hpp — the small pieces of HTTP syntax (RFC 9110 section 5.6)
// that the response parser, the challenge parser and the proxy settings share.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

namespace cz::oci::registry {
namespace detail {

// RFC 9110's tchar: the characters of a token (header names, methods, coding names).
inline bool is_tchar(char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

inline bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Field values and reasons: visible characters, spaces, tabs and obs-text; no other control.
inline bool is_field_text(std::string_view s) noexcept {
    return std::none_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\t') || c == 0x7f;
    });
}

inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

inline std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Calls f(element) for each element of a comma-separated list, elements trimmed, empty ones
// skipped (RFC 9110 section 5.6.1: recipients accept empty list elements).
template <class F>
void for_each_list_element(std::string_view list, F&& f) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto element = trim_ows(list.substr(0, comma));
        if (!element.empty()) f(element);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

} // namespace detail

} // namespace cz::oci::registry
