// cz/tar/entry.hpp — one archive member as the reader reports it and the writer takes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::tar {

// What an entry is, from its typeflag. Unknown typeflags read as `regular`, as POSIX and GNU tar
// say ("extracted as normal file"); `typeflag` keeps the byte itself. A regular-file typeflag
// ('0', NUL, '7') on a name that ends in '/' reads as `directory`, as old (v7) tars meant it.
enum class entry_type : std::uint8_t {
    regular,      // '0', '\0', and unknown typeflags
    hard_link,    // '1': linkname names an earlier member
    symlink,      // '2'
    char_device,  // '3'
    block_device, // '4'
    directory,    // '5'; also '0', NUL, '7' when the name ends in '/'
    fifo,         // '6'
    contiguous,   // '7': a regular file (contiguous allocation is a hint nobody honours)
    gnu_dumpdir,  // 'D': GNU incremental directory listing; its data is the listing
    gnu_volume,   // 'V': GNU volume label
    gnu_multivol, // 'M': GNU multi-volume continuation
};

// "regular", "hardlink", "symlink", "char", "block", "directory", "fifo", "contiguous", ...
constexpr std::string_view to_string(entry_type t) noexcept {
    switch (t) {
    case entry_type::regular:
        return "regular";
    case entry_type::hard_link:
        return "hardlink";
    case entry_type::symlink:
        return "symlink";
    case entry_type::char_device:
        return "char";
    case entry_type::block_device:
        return "block";
    case entry_type::directory:
        return "directory";
    case entry_type::fifo:
        return "fifo";
    case entry_type::contiguous:
        return "contiguous";
    case entry_type::gnu_dumpdir:
        return "gnu-dumpdir";
    case entry_type::gnu_volume:
        return "gnu-volume";
    case entry_type::gnu_multivol:
        return "gnu-multivolume";
    }
    return "unknown";
}

// An extended attribute: pax `SCHILY.xattr.<name>=<value>` or
// `LIBARCHIVE.xattr.<url-encoded name>=<base64 value>`. The value is raw bytes (may hold NULs).
struct xattr {
    std::string name;
    std::string value;
    friend bool operator==(const xattr&, const xattr&) = default;
};

// A data region of a sparse file: `length` bytes at logical `offset`. The gaps are holes (zeros).
struct sparse_segment {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    friend bool operator==(const sparse_segment&, const sparse_segment&) = default;
};

enum class sparse_format : std::uint8_t {
    none,
    gnu_old, // GNU 'S' typeflag, map in the header and extension blocks
    pax_0_0, // GNU.sparse.offset / GNU.sparse.numbytes records
    pax_0_1, // GNU.sparse.map record
    pax_1_0, // map at the start of the data; GNU.sparse.name and GNU.sparse.realsize
};

struct entry {
    entry_type type = entry_type::regular;
    char typeflag = '0';
    // As stored: pax `path`, GNU long name, or the header's prefix/name. Never normalised; see
    // cz/tar/path.hpp before using it as a path.
    std::string name;
    // Target of a hard link or symlink, as stored.
    std::string linkname;
    // Logical size: what reading the entry's data yields (for sparse files, holes included, up
    // to the end of the last map entry, which is where GNU tar ends the extracted file; writers
    // put an empty map entry at the real size).
    std::uint64_t size = 0;
    // Bytes of data stored in the archive (sparse files: the data regions only, without a
    // pax 1.0 map).
    std::uint64_t stored_size = 0;
    // Permission bits with setuid/setgid/sticky (07777); the file type is `type`.
    std::uint32_t mode = 0;
    std::uint64_t uid = 0;
    std::uint64_t gid = 0;
    std::string uname;
    std::string gname;
    // Nanoseconds since the Unix epoch; may be negative.
    std::int64_t mtime_ns = 0;
    std::optional<std::int64_t> atime_ns;
    std::optional<std::int64_t> ctime_ns;
    std::uint32_t devmajor = 0;
    std::uint32_t devminor = 0;
    // In archive order (a later duplicate replaces an earlier one).
    std::vector<xattr> xattrs;
    // For sparse files: the data regions, sorted, not overlapping, inside [0, size).
    sparse_format sparse = sparse_format::none;
    std::vector<sparse_segment> sparse_map;
    // Offset in the archive of this entry's first header block (its pax or long-name header, if
    // any) and of its main header block.
    std::uint64_t offset = 0;
    std::uint64_t header_offset = 0;

    bool is_sparse() const noexcept { return sparse != sparse_format::none; }
    // Regular-file content follows (types regular and contiguous).
    bool is_file() const noexcept {
        return type == entry_type::regular || type == entry_type::contiguous;
    }
};

} // namespace cz::tar
