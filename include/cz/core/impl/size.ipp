// Out-of-line bodies of cz/core/size.hpp.
#pragma once

#include <cz/core/size.hpp>

#include <bit>
#include <limits>

namespace cz {

CZ_DECL std::uint64_t parse_size(std::string_view text, std::error_code& ec, std::uint64_t unitless) {
    ec.clear();
    if (unitless == 0 || (unitless & (unitless - 1)) != 0) {
        ec = errc::invalid_argument; // a caller's mistake: unitless must be a power of two
        return 0;
    }
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool overflow = false;
    for (; i < text.size() && digit(text[i]); ++i) {
        unsigned d = unsigned(text[i] - '0');
        if (whole > (max - d) / 10) overflow = true;
        whole = whole * 10 + d;
    }
    if (i == 0) {
        ec = errc::invalid_argument;
        return 0;
    }
    // The fraction as numerator / denominator, exact up to 18 digits; later digits are dropped
    // (they cannot change a result rounded down to bytes for units up to T).
    std::uint64_t frac = 0, denom = 1;
    if (i < text.size() && text[i] == '.') {
        std::size_t first = ++i;
        for (; i < text.size() && digit(text[i]); ++i) {
            if (denom < 1'000'000'000'000'000'000ull) {
                frac = frac * 10 + unsigned(text[i] - '0');
                denom *= 10;
            }
        }
        if (i == first) {
            ec = errc::invalid_argument;
            return 0;
        }
    }
    auto unit = text.substr(i);
    const bool has_unit = !unit.empty();
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    unsigned shift = 0;
    if (!unit.empty() && lower(unit[0]) != 'b') {
        switch (lower(unit[0])) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        default: ec = errc::invalid_argument; return 0;
        }
        unit.remove_prefix(1);
        if (unit.size() == 2 && lower(unit[0]) == 'i' && lower(unit[1]) == 'b') unit = {};
    }
    if (unit.size() == 1 && lower(unit[0]) == 'b') unit = {};
    if (!unit.empty()) {
        ec = errc::invalid_argument;
        return 0;
    }
    if (!has_unit) {
        // `unitless` is a power of two (checked above): a unit of its own.
        shift = unsigned(std::countr_zero(unitless));
    }
    if (overflow || (shift && whole > (max >> shift))) {
        ec = errc::too_large;
        return 0;
    }
    std::uint64_t bytes = whole << shift;
    // floor(frac / denom * 2^shift), one bit at a time (binary long division): r < denom <= 10^18
    // keeps 2r below 2^64.
    std::uint64_t part = 0, r = frac;
    for (unsigned b = 0; b < shift; ++b) {
        r *= 2;
        part = part * 2 + (r >= denom ? 1 : 0);
        if (r >= denom) r -= denom;
    }
    if (bytes > max - part) {
        ec = errc::too_large;
        return 0;
    }
    return bytes + part;
}

CZ_DECL std::uint64_t parse_size(std::string_view text, std::uint64_t unitless) {
    std::error_code ec;
    auto n = parse_size(text, ec, unitless);
    throw_if(ec, "size '" + std::string(text) + "' (e.g. 512, 64K, 1.5G, 2GiB)");
    return n;
}

} // namespace cz
