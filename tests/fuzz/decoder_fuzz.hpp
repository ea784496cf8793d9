// The body shared by the gzip and zstd decoder fuzz targets: decode arbitrary input in one mode;
// it must end in data or a clean error within the limits, never crash or read out of bounds.
#pragma once

#include <cz/core/compression.hpp>

#include <array>

inline void fuzz_decoder(const unsigned char* data, std::size_t size,
                         cz::decompressing_source::mode mode) {
    constexpr std::uint64_t max_output = 16 << 20;
    cz::memory_source mem({reinterpret_cast<const std::byte*>(data), size});
    cz::decompressing_source dec(mem, mode, {.max_output = max_output, .max_ratio = 2000});
    std::array<std::byte, 4096> buf;
    std::error_code ec;
    std::uint64_t total = 0;
    while (auto n = dec.read_some(buf, ec)) total += n;
    if (total > max_output) __builtin_trap(); // the limit must hold
}
