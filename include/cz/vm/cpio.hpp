// cz/vm/cpio.hpp — a streaming writer of cpio "newc" archives, the format of Linux initramfs.
//
// Format primer (Documentation/driver-api/early-userspace/buffer-format.rst): each entry is a
// 110-byte ASCII header — the magic "070701" and 13 fields of 8 hex digits (ino, mode, uid, gid,
// nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check) — then the
// NUL-terminated name padded to a multiple of 4 bytes (counting from the header's start), then the
// data (a file's bytes or a symlink's target) padded to a multiple of 4. The archive ends with an
// entry named "TRAILER!!!". The kernel accepts the archive gzip-compressed as well: pair this
// writer with cz::compressing_sink. Needs only cz/core (no Asio).
#pragma once

#include <cz/core/stream.hpp>
#include <cz/vm/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cz::vm {

// What an archive entry is; the values are the S_IFMT bits of its mode.
enum class cpio_type : std::uint32_t {
    regular = 0100000,
    directory = 0040000,
    symlink = 0120000,
    char_device = 0020000,
    block_device = 0060000,
    fifo = 0010000,
};

// One entry's metadata. `path` is relative to the archive root ("init", "bin/sh"); a leading "/"
// or "./" is dropped. `permissions` holds the permission bits only (07777).
struct cpio_entry {
    std::string path;
    cpio_type type = cpio_type::regular;
    std::uint32_t permissions = 0644;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t mtime = 0;
    std::uint32_t rdev_major = 0;
    std::uint32_t rdev_minor = 0;
};

// The size of a newc header, and the largest file size its 8 hex digits can hold.
inline constexpr std::size_t cpio_header_size = 110;
inline constexpr std::uint64_t cpio_max_file_size = 0xffffffffu;

// Normalises an archive path: drops leading "/" and "./", collapses "//" and "/./". Fails with
// errc::bad_archive_path for an empty result or a ".." component.
CZ_DECL std::string normalize_archive_path(std::string_view path, std::error_code& ec);

// Writes a newc archive to a sink, one entry at a time; nothing is buffered beyond one header.
// Entries get consecutive inode numbers starting at 1 (the kernel uses ino+dev to recognise hard
// links, so two entries never share one). finish() writes the trailer and finishes the sink.
class cpio_writer {
public:
    explicit cpio_writer(sink_ref out) noexcept : out_(out) {}

    // An entry without data: directory, device node or fifo (entry.type says which).
    CZ_DECL void add(const cpio_entry& entry, std::error_code& ec);
    // A regular file whose bytes are in memory.
    CZ_DECL void add_file(const cpio_entry& entry, bytes_view data, std::error_code& ec);
    // A regular file of exactly `size` bytes read from `data`; errc::file_changed if the source
    // ends early, errc::archive_entry_too_large past cpio_max_file_size.
    CZ_DECL void add_file(const cpio_entry& entry, std::uint64_t size, source_ref data,
                          std::error_code& ec);
    // A symbolic link to `target`.
    CZ_DECL void add_symlink(const cpio_entry& entry, std::string_view target, std::error_code& ec);
    // Writes the trailer and calls finish() on the sink. No entries may follow.
    CZ_DECL void finish(std::error_code& ec);

    // Throwing overloads.
    void add(const cpio_entry& entry) { call([&](auto& ec) { add(entry, ec); }, entry.path); }
    void add_file(const cpio_entry& entry, bytes_view data) {
        call([&](auto& ec) { add_file(entry, data, ec); }, entry.path);
    }
    void add_symlink(const cpio_entry& entry, std::string_view target) {
        call([&](auto& ec) { add_symlink(entry, target, ec); }, entry.path);
    }
    void finish() { call([&](auto& ec) { finish(ec); }, "cpio trailer"); }

    // Bytes written to the sink so far.
    std::uint64_t bytes_written() const noexcept { return offset_; }

private:
    template <class F>
    void call(F&& f, std::string_view what) {
        std::error_code ec;
        f(ec);
        if (ec) throw_error(ec, "cpio entry {}", what);
    }
    CZ_DECL void write_header(const std::string& name, std::uint32_t mode, const cpio_entry& e,
                              std::uint64_t size, std::error_code& ec);
    CZ_DECL void write(bytes_view data, std::error_code& ec);
    CZ_DECL void pad(std::error_code& ec);

    sink_ref out_;
    std::uint64_t offset_ = 0;
    std::uint32_t next_ino_ = 1;
};

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/cpio.ipp>
#endif
