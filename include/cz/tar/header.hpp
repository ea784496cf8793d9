// cz/tar/header.hpp — the 512-byte tar header block, as it is on the wire.
//
// Primer. A tar archive is a sequence of 512-byte blocks: a header block, then the entry's data
// rounded up to a whole block, then the next header. The archive ends with zero blocks.
// Numbers are ASCII octal terminated by NUL or space; GNU tar writes numbers that do not fit as
// base-256 (first byte 0x80 for positive, 0xff for negative, big-endian two's complement). The
// checksum is the sum of the header's bytes with the checksum field read as eight spaces; old
// tars summed signed chars, so readers accept either sum.
//
// Three header layouts share the first 345 bytes:
//  - v7: name, mode, uid, gid, size, mtime, chksum, typeflag, linkname; no magic.
//  - POSIX ustar (magic "ustar\0", version "00"): + uname, gname, devmajor, devminor and a
//    155-byte prefix joined to the name with '/'.
//  - GNU (magic "ustar ", version " \0"): the prefix area holds atime, ctime and the old sparse
//    map (4 entries, more in extension blocks when `isextended` is set) and `realsize`.
// References: POSIX.1-2017 pax(1) "ustar Interchange Format"; GNU tar manual, "Basic Tar Format"
// (struct posix_header, struct oldgnu_header, struct sparse_header); libarchive tar(5).
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cz::tar {

inline constexpr std::size_t block_size = 512;

// Rounds n up to a whole number of blocks; the caller guarantees n < 2^64 - 511.
constexpr std::uint64_t padded(std::uint64_t n) noexcept {
    return (n + block_size - 1) & ~std::uint64_t(block_size - 1);
}

// One entry of a GNU sparse map as stored in old GNU headers: 12-byte offset, 12-byte length.
struct gnu_sparse_wire {
    char offset[12];
    char numbytes[12];
};
static_assert(sizeof(gnu_sparse_wire) == 24);

// The header block (POSIX ustar with the GNU variant's fields overlaid on the prefix area).
struct header_block {
    char name[100];
    char mode[8];
    char uid[8];
    char gid[8];
    char size[12];
    char mtime[12];
    char chksum[8];
    char typeflag;
    char linkname[100];
    char magic[6];
    char version[2];
    char uname[32];
    char gname[32];
    char devmajor[8];
    char devminor[8];
    // The GNU variant's use of the POSIX prefix area.
    struct gnu_area {
        char atime[12];
        char ctime[12];
        char offset[12];
        char longnames[4];
        char unused;
        gnu_sparse_wire sparse[4];
        char isextended;
        char realsize[12];
    };
    union {
        char prefix[155]; // POSIX ustar
        gnu_area gnu;
    };
    char pad[12];

    enum class layout { v7, ustar, gnu };

    // Which of the three layouts the magic says this is.
    CZ_DECL layout kind() const noexcept;

    // Stored checksum against both sums. False also when the field is not a number.
    CZ_DECL bool checksum_ok() const noexcept;
    // The unsigned sum, with the checksum field counted as spaces.
    CZ_DECL std::uint32_t compute_checksum() const noexcept;
    // Writes the checksum field as GNU tar does: six octal digits, NUL, space.
    CZ_DECL void set_checksum() noexcept;

    // True when all 512 bytes are zero (an end-of-archive block).
    CZ_DECL bool is_zero() const noexcept;
};
static_assert(sizeof(header_block) == block_size);
static_assert(offsetof(header_block, chksum) == 148);
static_assert(offsetof(header_block, typeflag) == 156);
static_assert(offsetof(header_block, magic) == 257);
static_assert(offsetof(header_block, uname) == 265);
static_assert(offsetof(header_block, prefix) == 345);
static_assert(offsetof(header_block, gnu.sparse) == 386);
static_assert(offsetof(header_block, gnu.isextended) == 482);
static_assert(offsetof(header_block, gnu.realsize) == 483);

// An old GNU sparse extension block: 21 more map entries and a continuation flag.
struct gnu_sparse_extension {
    gnu_sparse_wire sparse[21];
    char isextended;
    char pad[7];
};
static_assert(sizeof(gnu_sparse_extension) == block_size);

// Reads a numeric field as GNU tar does: leading spaces, then octal digits ended by NUL, space or
// the end of the field (an all-NUL field is 0), or base-256 when the first byte has its top bit
// set. nullopt when the field is neither, or when an octal value overflows.
CZ_DECL std::optional<std::int64_t> parse_number(std::string_view field) noexcept;

// Writes `value` as zero-padded octal digits followed by a NUL into `field`; false when it does
// not fit (width - 1 digits) or is negative.
CZ_DECL bool format_octal(char* field, std::size_t width, std::int64_t value) noexcept;
// Writes `value` in GNU base-256 (two's complement, first byte 0x80 or 0xff); false when it does
// not fit.
CZ_DECL bool format_base256(char* field, std::size_t width, std::int64_t value) noexcept;

// A NUL-terminated string field, up to its width.
inline std::string_view field_string(const char* field, std::size_t width) noexcept {
    std::size_t n = 0;
    while (n < width && field[n] != '\0') ++n;
    return {field, n};
}

} // namespace cz::tar

#if CZ_HEADER_ONLY
#include <cz/tar/impl/header.ipp>
#endif
