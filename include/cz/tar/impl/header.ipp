// Out-of-line definitions for cz/tar/header.hpp.
#pragma once

#include <cz/tar/header.hpp>

#include <cstring>
#include <limits>

namespace cz::tar {

CZ_DECL header_block::layout header_block::kind() const noexcept {
    if (std::memcmp(magic, "ustar ", 6) == 0 && std::memcmp(version, " \0", 2) == 0)
        return layout::gnu;
    if (std::memcmp(magic, "ustar", 6) == 0) return layout::ustar; // "ustar\0", any version
    return layout::v7;
}

CZ_DECL std::uint32_t header_block::compute_checksum() const noexcept {
    // SAFETY: header_block is exactly block_size bytes (static_assert above).
    const auto* p = reinterpret_cast<const unsigned char*>(this);
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < block_size; ++i)
        sum += (i >= 148 && i < 156) ? unsigned(' ') : p[i];
    return sum;
}

CZ_DECL bool header_block::checksum_ok() const noexcept {
    auto stored = parse_number({chksum, sizeof chksum});
    if (!stored) return false;
    if (std::uint32_t(*stored) == compute_checksum() && *stored >= 0) return true;
    // SAFETY: header_block is exactly block_size bytes (static_assert above).
    const auto* p = reinterpret_cast<const signed char*>(this);
    std::int32_t signed_sum = 0;
    for (std::size_t i = 0; i < block_size; ++i)
        signed_sum += (i >= 148 && i < 156) ? int(' ') : p[i];
    return *stored == signed_sum;
}

CZ_DECL void header_block::set_checksum() noexcept {
    std::memset(chksum, ' ', sizeof chksum);
    format_octal(chksum, 7, compute_checksum());
    chksum[7] = ' ';
}

CZ_DECL bool header_block::is_zero() const noexcept {
    // SAFETY: header_block is exactly block_size bytes (static_assert above).
    const auto* p = reinterpret_cast<const unsigned char*>(this);
    unsigned char acc = 0;
    for (std::size_t i = 0; i < block_size; ++i) acc |= p[i];
    return acc == 0;
}

CZ_DECL std::optional<std::int64_t> parse_number(std::string_view f) noexcept {
    if (f.empty()) return std::nullopt;
    auto first = static_cast<unsigned char>(f[0]);
    if (first == 0x80 || first == 0xff) {
        // Base-256: the rest of the first byte's bits are part of the number (0 for 0x80, all
        // ones for 0xff), so the value is big-endian two's complement over the whole field.
        bool negative = first == 0xff;
        std::uint64_t v = negative ? ~std::uint64_t(0) : 0;
        std::size_t i = 1;
        // Bytes that cannot fit in 64 bits must be pure sign extension.
        for (; i + 8 < f.size(); ++i)
            if (static_cast<unsigned char>(f[i]) != (negative ? 0xff : 0x00)) return std::nullopt;
        for (; i < f.size(); ++i) v = (v << 8) | static_cast<unsigned char>(f[i]);
        auto s = static_cast<std::int64_t>(v);
        if ((s < 0) != negative) return std::nullopt;
        return s;
    }
    std::size_t i = 0;
    while (i < f.size() && (f[i] == ' ' || (f[i] >= '\t' && f[i] <= '\r'))) ++i;
    if (i == f.size()) return std::nullopt; // blanks where a number was expected
    std::uint64_t v = 0;
    for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
        if (v > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) >> 3)) return std::nullopt;
        v = v * 8 + std::uint64_t(f[i] - '0');
    }
    if (i < f.size() && f[i] != '\0' && f[i] != ' ' && !(f[i] >= '\t' && f[i] <= '\r'))
        return std::nullopt;
    return static_cast<std::int64_t>(v);
}

CZ_DECL bool format_octal(char* field, std::size_t width, std::int64_t value) noexcept {
    if (value < 0 || width < 2) return false;
    auto v = static_cast<std::uint64_t>(value);
    field[width - 1] = '\0';
    for (std::size_t i = width - 1; i-- > 0;) {
        field[i] = char('0' + (v & 7));
        v >>= 3;
    }
    return v == 0;
}

CZ_DECL bool format_base256(char* field, std::size_t width, std::int64_t value) noexcept {
    if (width < 2) return false;
    auto v = static_cast<std::uint64_t>(value);
    for (std::size_t i = width; i-- > 1;) {
        field[i] = char(v & 0xff);
        v = static_cast<std::uint64_t>(static_cast<std::int64_t>(v) >> 8);
    }
    // What is left must be pure sign, with room for the sign bit in the first byte.
    bool negative = value < 0;
    if (v != (negative ? ~std::uint64_t(0) : 0)) return false;
    if (width <= 8) {
        // The value's own top bit lands in field[1]; the first byte is only a marker.
        bool top = (static_cast<unsigned char>(field[1]) & 0x80) != 0;
        if (top != negative) return false;
    }
    field[0] = char(negative ? 0xff : 0x80);
    return true;
}

} // namespace cz::tar
