// cz/core/bytes.hpp — byte spans and a growable byte buffer.
//
// cz passes bytes as std::span<const std::byte> (input) and std::span<std::byte> (output). These
// helpers convert from the char-based types the rest of the world uses, and read/write the
// fixed-width little- and big-endian integers that on-disk and on-wire formats are made of.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cz {

using bytes_view = std::span<const std::byte>;
using mutable_bytes = std::span<std::byte>;
using byte_buffer = std::vector<std::byte>;

inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string_view as_chars(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline byte_buffer to_buffer(std::string_view s) {
    auto b = as_bytes(s);
    return {b.begin(), b.end()};
}

inline std::string to_string(bytes_view b) { return std::string(as_chars(b)); }

// Fixed-width integer loads and stores. `p` must point at sizeof(T) readable/writable bytes; the
// callers' bounds checks are what make that true. Written byte by byte so they are correct on any
// host; compilers turn each loop into one load or store.
template <class T>
T load_le(const std::byte* p) noexcept {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= T(T(std::to_integer<unsigned>(p[i])) << (8 * i));
    return v;
}

template <class T>
T load_be(const std::byte* p) noexcept {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = T((v << 8) | T(std::to_integer<unsigned>(p[i])));
    return v;
}

template <class T>
void store_le(std::byte* p, T v) noexcept {
    for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}

template <class T>
void store_be(std::byte* p, T v) noexcept {
    for (std::size_t i = 0; i < sizeof(T); ++i)
        p[i] = std::byte((v >> (8 * (sizeof(T) - 1 - i))) & 0xff);
}

} // namespace cz
