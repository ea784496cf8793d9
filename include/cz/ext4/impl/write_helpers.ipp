// Small pieces the formatter's writers share (formatter.ipp and the files it includes): padding
// of on-disk records, the all-zero test that turns blocks into holes, a pwrite loop, the
// sequential writer of the metadata region, and bit ranges in a bitmap block.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/error.hpp>
#include <cz/core/syscall.hpp>
#include <cz/ext4/layout.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <unistd.h>

namespace cz::ext4::detail {

// Directory entries and xattr names and values are padded to 4 bytes.
inline std::uint32_t round4(std::size_t n) noexcept {
    return std::uint32_t((n + 3) & ~std::size_t(3));
}

inline bool all_zero(const std::byte* p, std::size_t n) noexcept {
    // Compare 8 bytes at a time; the compiler vectorises the loop.
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (std::size_t i = n & ~std::size_t(7); i < n; ++i)
        acc |= std::to_integer<std::uint64_t>(p[i]);
    return acc == 0;
}

inline std::error_code pwrite_all(int fd, const std::byte* p, std::size_t n, std::uint64_t off) {
    while (n > 0) {
        ssize_t w = sys::pwrite(fd, p, n, off_t(off));
        if (w < 0) {
            if (errno == EINTR) continue;
            return last_system_error();
        }
        p += w;
        n -= std::size_t(w);
        off += std::uint64_t(w);
    }
    return {};
}

// A sequential writer for the metadata region: buffers and writes in large pwrites. `block` is
// the block the next put() lands on, which is how callers learn where their blocks went.
struct appender {
    int fd;
    std::uint64_t block; // next block to write
    byte_buffer buf;
    std::uint64_t buf_block = 0;

    std::error_code put(const std::byte* p, std::size_t nblocks) {
        if (buf.empty()) buf_block = block;
        buf.insert(buf.end(), p, p + nblocks * block_size);
        block += nblocks;
        if (buf.size() >= (std::size_t(4) << 20)) return flush();
        return {};
    }
    std::error_code flush() {
        auto ec = pwrite_all(fd, buf.data(), buf.size(), buf_block * block_size);
        buf.clear();
        return ec;
    }
};

// Bits [from, to) of a bitmap, bit 0 being the low bit of byte 0 (as ext4 numbers them).
inline void set_bits(std::byte* bitmap, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i)
        bitmap[i / 8] |= std::byte(1u << (i % 8));
}
inline void clear_bits(std::byte* bitmap, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i)
        bitmap[i / 8] &= ~std::byte(1u << (i % 8));
}

} // namespace cz::ext4::detail
