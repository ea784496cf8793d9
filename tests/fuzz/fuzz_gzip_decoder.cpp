// Fuzzes the gzip decoder with arbitrary input: it must end in data or a clean error, within the
// limits, never crash or read out of bounds.
#include <cz/core/compression.hpp>

#include <array>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    cz::memory_source mem({reinterpret_cast<const std::byte*>(data), size});
    cz::decompressing_source dec(mem, cz::decompressing_source::mode::gzip,
                                 {.max_output = 16 << 20, .max_ratio = 2000});
    std::array<std::byte, 4096> buf;
    std::error_code ec;
    std::uint64_t total = 0;
    while (auto n = dec.read_some(buf, ec)) total += n;
    if (total > (16u << 20)) __builtin_trap(); // the limit must hold
    return 0;
}
