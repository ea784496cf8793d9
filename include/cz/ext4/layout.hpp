// cz/ext4/layout.hpp — ext4 on-disk structures, as the bytes lie on disk.
//
// Every multi-byte field is little-endian on disk. Each struct here is made of `le<T>` fields (an
// array of bytes with get()/set()), so the struct *is* the on-disk bytes: alignment 1, no padding,
// and the size and the offsets that matter are static_assert'ed against the kernel's
// Documentation/filesystems/ext4/*.rst and fs/ext4/ext4.h, ext4_extents.h, xattr.h, namei.c.
//
// Primer (what cz writes; the reader also reads what mke2fs writes):
//  - The image is an array of 4 KiB blocks split into groups of 32768 blocks. Block 0 holds the
//    superblock at byte 1024; the group descriptor table follows in block 1. Each group has a
//    block bitmap, an inode bitmap and an inode table; with flex_bg they may lie anywhere in the
//    image, and cz puts all of them after the file data.
//  - Inode N lives in group (N-1)/inodes_per_group. Inode 2 is the root directory, 1 and 3..10 are
//    reserved, 11 is usually lost+found.
//  - A file's data is found through an extent tree rooted in the inode's 60-byte i_block: a
//    12-byte header and 4 entries. At depth 0 the entries are extents (logical block, length,
//    physical block); at depth > 0 they are index entries pointing at blocks that hold another
//    header and up to 340 entries, one level down. Logical blocks without an extent are holes.
//  - Old ext2/3 files use a block map instead: 12 direct block numbers, then single, double and
//    triple indirect blocks.
//  - A directory is a file of directory entries (inode, rec_len, name_len, type, name). A large
//    directory is an htree: block 0 holds ".", ".." and a dx_root index of (hash, block) pairs;
//    the leaves are ordinary entry blocks holding names whose hashes fall in the range. Index
//    blocks look like one empty entry spanning the block, so a linear walk still reads every
//    name exactly once.
//  - Extended attributes live after the inode's fixed fields (in-inode) and in one xattr block.
#pragma once

#include <cz/core/bytes.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cz::ext4 {

// A little-endian unsigned integer stored as bytes; alignment 1 so structs have no padding.
template <class T>
struct le {
    std::array<std::byte, sizeof(T)> bytes{};
    T get() const noexcept { return load_le<T>(bytes.data()); }
    void set(T v) noexcept { store_le<T>(bytes.data(), v); }
};

inline constexpr std::uint32_t block_size = 4096;
inline constexpr std::uint32_t log_block_size = 2; // block size = 1024 << 2
inline constexpr std::uint32_t blocks_per_group = 32768;
inline constexpr std::uint32_t inode_size = 256;
inline constexpr std::uint16_t extra_isize = 32;
inline constexpr std::uint32_t root_inode = 2;
inline constexpr std::uint32_t first_inode = 11;
inline constexpr std::uint16_t super_magic = 0xEF53;
inline constexpr std::uint32_t superblock_offset = 1024;
inline constexpr std::uint32_t link_max = 65000;
inline constexpr std::uint32_t max_name = 255;

// Feature bits (ext4.h EXT4_FEATURE_*).
inline constexpr std::uint32_t compat_ext_attr = 0x0008;
inline constexpr std::uint32_t compat_resize_inode = 0x0010;
inline constexpr std::uint32_t compat_dir_index = 0x0020;
inline constexpr std::uint32_t compat_sparse_super2 = 0x0200;
inline constexpr std::uint32_t incompat_compression = 0x0001;
inline constexpr std::uint32_t incompat_filetype = 0x0002;
inline constexpr std::uint32_t incompat_recover = 0x0004;
inline constexpr std::uint32_t incompat_journal_dev = 0x0008;
inline constexpr std::uint32_t incompat_meta_bg = 0x0010;
inline constexpr std::uint32_t incompat_extents = 0x0040;
inline constexpr std::uint32_t incompat_64bit = 0x0080;
inline constexpr std::uint32_t incompat_mmp = 0x0100;
inline constexpr std::uint32_t incompat_flex_bg = 0x0200;
inline constexpr std::uint32_t incompat_ea_inode = 0x0400;
inline constexpr std::uint32_t incompat_dirdata = 0x1000;
inline constexpr std::uint32_t incompat_csum_seed = 0x2000;
inline constexpr std::uint32_t incompat_largedir = 0x4000;
inline constexpr std::uint32_t incompat_inline_data = 0x8000;
inline constexpr std::uint32_t incompat_encrypt = 0x10000;
inline constexpr std::uint32_t incompat_casefold = 0x20000;
inline constexpr std::uint32_t ro_compat_sparse_super = 0x0001;
inline constexpr std::uint32_t ro_compat_large_file = 0x0002;
inline constexpr std::uint32_t ro_compat_huge_file = 0x0008;
inline constexpr std::uint32_t ro_compat_dir_nlink = 0x0020;
inline constexpr std::uint32_t ro_compat_extra_isize = 0x0040;

// Inode flags (ext4.h EXT4_*_FL).
inline constexpr std::uint32_t inode_flag_index = 0x1000;     // htree directory
inline constexpr std::uint32_t inode_flag_huge_file = 0x40000; // i_blocks in fs blocks
inline constexpr std::uint32_t inode_flag_extents = 0x80000;
inline constexpr std::uint32_t inode_flag_inline_data = 0x10000000;

// Directory entry file types (ext4.h EXT4_FT_*).
inline constexpr std::uint8_t ft_unknown = 0, ft_regular = 1, ft_directory = 2, ft_chrdev = 3,
                              ft_blkdev = 4, ft_fifo = 5, ft_socket = 6, ft_symlink = 7;

// Mode bits (the S_IF* values, re-declared so this header needs no <sys/stat.h>).
inline constexpr std::uint16_t mode_type_mask = 0170000;
inline constexpr std::uint16_t mode_socket = 0140000, mode_symlink = 0120000,
                               mode_regular = 0100000, mode_blkdev = 0060000,
                               mode_directory = 0040000, mode_chrdev = 0020000,
                               mode_fifo = 0010000;

// struct ext4_super_block (Documentation/filesystems/ext4/super.rst). 1024 bytes at byte 1024.
struct superblock {
    le<std::uint32_t> inodes_count;         // 0x00
    le<std::uint32_t> blocks_count_lo;      // 0x04
    le<std::uint32_t> r_blocks_count_lo;    // 0x08
    le<std::uint32_t> free_blocks_count_lo; // 0x0C
    le<std::uint32_t> free_inodes_count;    // 0x10
    le<std::uint32_t> first_data_block;     // 0x14
    le<std::uint32_t> log_block_size;       // 0x18
    le<std::uint32_t> log_cluster_size;     // 0x1C
    le<std::uint32_t> blocks_per_group;     // 0x20
    le<std::uint32_t> clusters_per_group;   // 0x24
    le<std::uint32_t> inodes_per_group;     // 0x28
    le<std::uint32_t> mtime;                // 0x2C
    le<std::uint32_t> wtime;                // 0x30
    le<std::uint16_t> mnt_count;            // 0x34
    le<std::uint16_t> max_mnt_count;        // 0x36
    le<std::uint16_t> magic;                // 0x38
    le<std::uint16_t> state;                // 0x3A
    le<std::uint16_t> errors;               // 0x3C
    le<std::uint16_t> minor_rev_level;      // 0x3E
    le<std::uint32_t> lastcheck;            // 0x40
    le<std::uint32_t> checkinterval;        // 0x44
    le<std::uint32_t> creator_os;           // 0x48
    le<std::uint32_t> rev_level;            // 0x4C
    le<std::uint16_t> def_resuid;           // 0x50
    le<std::uint16_t> def_resgid;           // 0x52
    le<std::uint32_t> first_ino;            // 0x54
    le<std::uint16_t> inode_size;           // 0x58
    le<std::uint16_t> block_group_nr;       // 0x5A
    le<std::uint32_t> feature_compat;       // 0x5C
    le<std::uint32_t> feature_incompat;     // 0x60
    le<std::uint32_t> feature_ro_compat;    // 0x64
    std::array<std::byte, 16> uuid;         // 0x68
    std::array<std::byte, 16> volume_name;  // 0x78
    std::array<std::byte, 64> last_mounted; // 0x88
    le<std::uint32_t> algorithm_usage_bitmap; // 0xC8
    std::byte prealloc_blocks;              // 0xCC
    std::byte prealloc_dir_blocks;          // 0xCD
    le<std::uint16_t> reserved_gdt_blocks;  // 0xCE
    std::array<std::byte, 16> journal_uuid; // 0xD0
    le<std::uint32_t> journal_inum;         // 0xE0
    le<std::uint32_t> journal_dev;          // 0xE4
    le<std::uint32_t> last_orphan;          // 0xE8
    std::array<le<std::uint32_t>, 4> hash_seed; // 0xEC
    std::byte def_hash_version;             // 0xFC
    std::byte jnl_backup_type;              // 0xFD
    le<std::uint16_t> desc_size;            // 0xFE
    le<std::uint32_t> default_mount_opts;   // 0x100
    le<std::uint32_t> first_meta_bg;        // 0x104
    le<std::uint32_t> mkfs_time;            // 0x108
    std::array<le<std::uint32_t>, 17> jnl_blocks; // 0x10C
    le<std::uint32_t> blocks_count_hi;      // 0x150
    le<std::uint32_t> r_blocks_count_hi;    // 0x154
    le<std::uint32_t> free_blocks_count_hi; // 0x158
    le<std::uint16_t> min_extra_isize;      // 0x15C
    le<std::uint16_t> want_extra_isize;     // 0x15E
    le<std::uint32_t> flags;                // 0x160
    std::array<std::byte, 0x174 - 0x164> raid_and_mmp; // 0x164 raid stride, mmp, stripe width
    std::byte log_groups_per_flex;          // 0x174
    std::array<std::byte, 0x24C - 0x175> misc; // 0x175 checksum type .. overhead clusters
    std::array<le<std::uint32_t>, 2> backup_bgs; // 0x24C sparse_super2 backup groups
    std::array<std::byte, 0x400 - 0x254> tail;   // 0x254 .. checksum at 0x3FC
};
static_assert(sizeof(superblock) == 1024);
static_assert(offsetof(superblock, magic) == 0x38);
static_assert(offsetof(superblock, feature_compat) == 0x5C);
static_assert(offsetof(superblock, hash_seed) == 0xEC);
static_assert(offsetof(superblock, desc_size) == 0xFE);
static_assert(offsetof(superblock, blocks_count_hi) == 0x150);
static_assert(offsetof(superblock, flags) == 0x160);
static_assert(offsetof(superblock, log_groups_per_flex) == 0x174);
static_assert(offsetof(superblock, backup_bgs) == 0x24C);

inline constexpr std::uint32_t sb_flags_unsigned_hash = 0x2; // EXT2_FLAGS_UNSIGNED_HASH
inline constexpr std::uint8_t hash_legacy = 0;              // DX_HASH_LEGACY
inline constexpr std::uint8_t hash_legacy_unsigned = 3;     // DX_HASH_LEGACY_UNSIGNED

// struct ext4_group_desc, first 32 bytes (Documentation/filesystems/ext4/group_descr.rst). With
// the 64bit feature and s_desc_size 64 the *_hi halves follow; the reader handles both.
struct group_desc {
    le<std::uint32_t> block_bitmap_lo;      // 0x00
    le<std::uint32_t> inode_bitmap_lo;      // 0x04
    le<std::uint32_t> inode_table_lo;       // 0x08
    le<std::uint16_t> free_blocks_count_lo; // 0x0C
    le<std::uint16_t> free_inodes_count_lo; // 0x0E
    le<std::uint16_t> used_dirs_count_lo;   // 0x10
    le<std::uint16_t> flags;                // 0x12
    le<std::uint32_t> exclude_bitmap_lo;    // 0x14
    le<std::uint16_t> block_bitmap_csum_lo; // 0x18
    le<std::uint16_t> inode_bitmap_csum_lo; // 0x1A
    le<std::uint16_t> itable_unused_lo;     // 0x1C
    le<std::uint16_t> checksum;             // 0x1E
};
static_assert(sizeof(group_desc) == 32);
static_assert(offsetof(group_desc, inode_table_lo) == 0x08);
inline constexpr std::size_t group_desc_inode_table_hi = 0x28; // in 64-byte descriptors

// struct ext4_inode (Documentation/filesystems/ext4/inodes.rst), 160 bytes of fields with
// i_extra_isize 32; in-inode xattrs follow up to the 256-byte inode size.
struct inode {
    le<std::uint16_t> mode;          // 0x00
    le<std::uint16_t> uid;           // 0x02
    le<std::uint32_t> size_lo;       // 0x04
    le<std::uint32_t> atime;         // 0x08
    le<std::uint32_t> ctime;         // 0x0C
    le<std::uint32_t> mtime;         // 0x10
    le<std::uint32_t> dtime;         // 0x14
    le<std::uint16_t> gid;           // 0x18
    le<std::uint16_t> links_count;   // 0x1A
    le<std::uint32_t> blocks_lo;     // 0x1C
    le<std::uint32_t> flags;         // 0x20
    le<std::uint32_t> version;       // 0x24
    std::array<std::byte, 60> block; // 0x28 extent tree root, block map, or symlink target
    le<std::uint32_t> generation;    // 0x64
    le<std::uint32_t> file_acl_lo;   // 0x68 xattr block
    le<std::uint32_t> size_high;     // 0x6C
    le<std::uint32_t> obso_faddr;    // 0x70
    le<std::uint16_t> blocks_high;   // 0x74
    le<std::uint16_t> file_acl_high; // 0x76
    le<std::uint16_t> uid_high;      // 0x78
    le<std::uint16_t> gid_high;      // 0x7A
    le<std::uint16_t> checksum_lo;   // 0x7C
    le<std::uint16_t> reserved;      // 0x7E
    le<std::uint16_t> extra_isize;   // 0x80
    le<std::uint16_t> checksum_hi;   // 0x82
    le<std::uint32_t> ctime_extra;   // 0x84
    le<std::uint32_t> mtime_extra;   // 0x88
    le<std::uint32_t> atime_extra;   // 0x8C
    le<std::uint32_t> crtime;        // 0x90
    le<std::uint32_t> crtime_extra;  // 0x94
    le<std::uint32_t> version_hi;    // 0x98
    le<std::uint32_t> projid;        // 0x9C
};
static_assert(sizeof(inode) == 160);
static_assert(offsetof(inode, block) == 0x28);
static_assert(offsetof(inode, file_acl_lo) == 0x68);
static_assert(offsetof(inode, blocks_high) == 0x74);
static_assert(offsetof(inode, extra_isize) == 0x80);
static_assert(offsetof(inode, crtime) == 0x90);

// struct ext4_extent_header / ext4_extent / ext4_extent_idx (fs/ext4/ext4_extents.h).
struct extent_header {
    le<std::uint16_t> magic; // 0xF30A
    le<std::uint16_t> entries;
    le<std::uint16_t> max;
    le<std::uint16_t> depth;
    le<std::uint32_t> generation;
};
struct extent_leaf {
    le<std::uint32_t> logical;
    le<std::uint16_t> len; // > 32768: an unwritten (preallocated) extent of len - 32768 blocks
    le<std::uint16_t> start_hi;
    le<std::uint32_t> start_lo;
};
struct extent_index {
    le<std::uint32_t> logical;
    le<std::uint32_t> leaf_lo;
    le<std::uint16_t> leaf_hi;
    le<std::uint16_t> unused;
};
static_assert(sizeof(extent_header) == 12 && sizeof(extent_leaf) == 12 &&
              sizeof(extent_index) == 12);
inline constexpr std::uint16_t extent_magic = 0xF30A;
inline constexpr std::uint32_t max_extent_len = 32768;
inline constexpr std::uint16_t extents_in_inode = 4;                                  // (60-12)/12
inline constexpr std::uint16_t extents_per_block = (block_size - 12) / 12;            // 340

// struct ext4_dir_entry_2 (Documentation/filesystems/ext4/directory.rst); the name follows.
struct dirent_header {
    le<std::uint32_t> inode;
    le<std::uint16_t> rec_len;
    std::byte name_len;
    std::byte file_type;
};
static_assert(sizeof(dirent_header) == 8);

// struct dx_root_info and dx_countlimit/dx_entry (fs/ext4/namei.c). dx_root_info sits at byte 24
// of an htree directory's block 0, right after the "." (12 bytes) and ".." headers.
struct dx_root_info {
    le<std::uint32_t> reserved_zero;
    std::byte hash_version;
    std::byte info_length; // 8
    std::byte indirect_levels;
    std::byte unused_flags;
};
struct dx_countlimit {
    le<std::uint16_t> limit;
    le<std::uint16_t> count;
};
struct dx_entry {
    le<std::uint32_t> hash;
    le<std::uint32_t> block;
};
static_assert(sizeof(dx_root_info) == 8 && sizeof(dx_countlimit) == 4 && sizeof(dx_entry) == 8);
inline constexpr std::size_t dx_root_entries_offset = 32; // countlimit overlays entry 0's hash
inline constexpr std::size_t dx_node_entries_offset = 8;

// struct ext4_xattr_header (the 32-byte head of an xattr block) and ext4_xattr_entry
// (fs/ext4/xattr.h); in the inode, a 4-byte magic precedes the entries.
struct xattr_block_header {
    le<std::uint32_t> magic; // 0xEA020000
    le<std::uint32_t> refcount;
    le<std::uint32_t> blocks; // 1
    le<std::uint32_t> hash;
    le<std::uint32_t> checksum;
    std::array<le<std::uint32_t>, 3> reserved;
};
struct xattr_entry {
    std::byte name_len;
    std::byte name_index;
    le<std::uint16_t> value_offs;
    le<std::uint32_t> value_inum;
    le<std::uint32_t> value_size;
    le<std::uint32_t> hash;
    // name_len bytes of name follow, padded to 4
};
static_assert(sizeof(xattr_block_header) == 32 && sizeof(xattr_entry) == 16);
inline constexpr std::uint32_t xattr_magic = 0xEA020000;

// Xattr name prefixes and their on-disk index (fs/ext4/xattr.h EXT4_XATTR_INDEX_*). The POSIX ACL
// indexes (2, 3) store a different binary format than the VFS and are not written by cz.
struct xattr_prefix {
    std::uint8_t index;
    std::string_view prefix;
};
inline constexpr std::array<xattr_prefix, 4> xattr_prefixes{{
    {1, "user."}, {4, "trusted."}, {6, "security."}, {7, "system."}}};

// The legacy htree hash, unsigned-char variant (fs/ext4/hash.c dx_hack_hash_unsigned), finished
// as ext4fs_dirhash does: the low bit is cleared, and the end-of-directory value is avoided.
constexpr std::uint32_t dx_legacy_hash(std::string_view name) noexcept {
    std::uint32_t hash0 = 0x12a3fe2d, hash1 = 0x37abe8f9;
    for (char c : name) {
        std::uint32_t hash =
            hash1 + (hash0 ^ std::uint32_t(int(static_cast<unsigned char>(c)) * 7152373));
        if (hash & 0x80000000u) hash -= 0x7fffffffu;
        hash1 = hash0;
        hash0 = hash;
    }
    std::uint32_t h = (hash0 << 1) & ~1u;
    if (h == (0x7fffffffu << 1)) h = (0x7fffffffu - 1) << 1;
    return h;
}

// ext4_xattr_hash_entry (fs/ext4/xattr.c): name bytes as signed char (what x86 kernels and
// e2fsprogs always computed), then the value as little-endian 32-bit words, zero padded.
inline std::uint32_t xattr_entry_hash(std::string_view name, bytes_view value) noexcept {
    std::uint32_t hash = 0;
    for (char c : name)
        hash = (hash << 5) ^ (hash >> 27) ^ std::uint32_t(std::int32_t(static_cast<signed char>(c)));
    for (std::size_t i = 0; i < value.size(); i += 4) {
        std::byte w[4] = {};
        for (std::size_t j = 0; j < 4 && i + j < value.size(); ++j) w[j] = value[i + j];
        hash = (hash << 16) ^ (hash >> 16) ^ load_le<std::uint32_t>(w);
    }
    return hash;
}

// Splits an xattr name into its on-disk index and suffix; index 0 when no prefix fits.
constexpr xattr_prefix split_xattr_name(std::string_view name) noexcept {
    for (const auto& p : xattr_prefixes)
        if (name.size() > p.prefix.size() && name.substr(0, p.prefix.size()) == p.prefix)
            return {p.index, name.substr(p.prefix.size())};
    return {0, name};
}

} // namespace cz::ext4
