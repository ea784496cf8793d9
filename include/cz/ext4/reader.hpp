// cz/ext4/reader.hpp — reads ext4 images: cz's own and mke2fs's (ext2/3/4).
//
// The reader does no I/O of its own: it reads through an `image_ref`, a random-access view of the
// image (a file descriptor with pread, or bytes in memory). Everything in the image is untrusted:
// every block number, offset, length, count and depth is checked against the image before use,
// and a bad one is errc::corrupt_image, never a crash or an unbounded allocation.
//
// It reads: superblock and group descriptors (32- and 64-byte), inodes of any size >= 128,
// extent trees of any depth (unwritten extents read as zeros), ext2/3 block maps (direct, single,
// double, triple indirect), linear and htree directories (an htree's index blocks are walked as
// the empty entries they look like), fast and slow symlinks, xattrs in the inode and in a block.
// Not read: inline_data files, encrypted or casefolded directories, xattr values in EA inodes,
// meta_bg layouts.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/stream.hpp>
#include <cz/ext4/error.hpp>
#include <cz/ext4/formatter.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::ext4 {

// A non-owning random-access view of an image.
class image_ref {
public:
    using read_fn = std::size_t (*)(const void*, std::uint64_t, mutable_bytes, std::error_code&);
    image_ref(const void* object, read_fn read, std::uint64_t size) noexcept
        : object_(object), read_(read), size_(size) {}
    // Bytes in memory.
    CZ_DECL static image_ref memory(bytes_view data) noexcept;
    std::uint64_t size() const noexcept { return size_; }
    // Reads exactly buf.size() bytes at `offset`, or sets ec (corrupt_image past the end).
    CZ_DECL void read(std::uint64_t offset, mutable_bytes buf, std::error_code& ec) const;

private:
    const void* object_;
    read_fn read_;
    std::uint64_t size_;
    bytes_view memory_;
};

// An image file read with pread. Owns nothing: the fd must outlive it. reader::open(path) opens
// and owns the file instead, which is what most callers want.
class fd_image {
public:
    // Sizes the image with fstat (regular files) or lseek (block devices).
    CZ_DECL explicit fd_image(int fd, std::error_code& ec);
    CZ_DECL image_ref ref() const noexcept;

private:
    int fd_;
    std::uint64_t size_ = 0;
};

struct inode_info {
    std::uint32_t ino = 0;
    file_type type = file_type::regular;
    std::uint16_t mode = 0; // permission bits with setuid/setgid/sticky
    std::uint32_t uid = 0, gid = 0;
    std::uint64_t size = 0;
    std::uint32_t links = 0;
    std::uint32_t flags = 0;
    timestamp atime, mtime, ctime, crtime;
    std::uint32_t major = 0, minor = 0; // devices
};

struct dir_entry {
    std::string name;
    std::uint32_t ino = 0;
    std::uint8_t type = 0; // ft_* (0 when the image has no filetype feature)
};

struct image_info {
    std::uint64_t blocks_count = 0;
    std::uint64_t free_blocks = 0;
    std::uint32_t inodes_count = 0;
    std::uint32_t free_inodes = 0;
    std::uint32_t block_size = 0;
    std::uint32_t inode_size = 0;
    std::uint32_t feature_compat = 0, feature_incompat = 0, feature_ro_compat = 0;
};

// Reads an image through an image_ref (which must outlive the reader), or a file it opened and
// owns (reader::open). Copies share the file.
//
//     std::error_code ec;
//     auto image = cz::ext4::reader::open("rootfs.img", ec);   // ec: ENOENT, unsupported_image...
//     std::uint32_t ino = image.lookup("/etc/os-release", ec);
//     image.read_file(ino, my_sink, ec);                       // any cz::byte_sink
class reader {
public:
    // Reads the superblock and group descriptors.
    reader(image_ref image, std::error_code& ec) : img_(image) { init(ec); }
    explicit reader(image_ref image) : img_(image) {
        std::error_code ec;
        init(ec);
        throw_if(ec, "ext4 image");
    }

    // Opens the image file at `path` read-only and reads its superblock and group descriptors.
    // The file stays open as long as the reader or a copy of it lives. On error (the file cannot
    // be opened, or is no ext4 image cz reads) the reader returned reads nothing: every call on
    // it fails with errc::corrupt_image.
    CZ_DECL static reader open(const std::string& path, std::error_code& ec);
    static reader open(const std::string& path) {
        std::error_code ec;
        reader r = open(path, ec);
        throw_if(ec, "ext4 image " + path);
        return r;
    }

    const image_info& info() const noexcept { return info_; }

    CZ_DECL inode_info stat(std::uint32_t ino, std::error_code& ec) const;
    // The entries of a directory, except "." and "..", in on-disk order.
    CZ_DECL std::vector<dir_entry> read_dir(std::uint32_t ino, std::error_code& ec) const;
    // Streams a regular file's (or symlink's, or directory's) data into `sink`; holes as zeros.
    CZ_DECL void read_file(std::uint32_t ino, sink_ref sink, std::error_code& ec) const;
    // A symlink's target.
    CZ_DECL std::string read_link(std::uint32_t ino, std::error_code& ec) const;
    // Extended attributes with full names ("user.x", "security.capability"); POSIX ACLs are
    // returned in the VFS format getfattr shows.
    CZ_DECL std::vector<xattr> read_xattrs(std::uint32_t ino, std::error_code& ec) const;
    // Resolves an absolute or relative-to-root path without following symlinks.
    CZ_DECL std::uint32_t lookup(std::string_view path, std::error_code& ec) const;

    // Calls `visit(path, entry)` for every entry under directory `ino` (depth-first, paths
    // relative to it, '/'-separated). Stops at the first error or when visit returns false.
    CZ_DECL void walk(std::uint32_t ino,
                      const std::function<bool(const std::string&, const dir_entry&)>& visit,
                      std::error_code& ec) const;

    // Data runs of a file in logical order, for tests and tools: (logical block, physical block,
    // length); physical 0 marks an unwritten extent.
    struct run {
        std::uint64_t logical;
        std::uint64_t physical;
        std::uint64_t len;
    };
    CZ_DECL void for_each_run(std::uint32_t ino, const std::function<bool(const run&)>& f,
                              std::error_code& ec) const;

private:
    struct owned_file; // the file reader::open opened, and its fd_image
    reader() : img_(image_ref::memory({})) {}
    CZ_DECL void init(std::error_code& ec);
    CZ_DECL void load_inode(std::uint32_t ino, byte_buffer& raw, std::error_code& ec) const;

    std::shared_ptr<const owned_file> file_; // set by open(); img_ reads through it
    image_ref img_;
    image_info info_;
    std::uint32_t blocks_per_group_ = 0;
    std::uint32_t inodes_per_group_ = 0;
    std::uint32_t desc_size_ = 32;
    std::uint32_t first_data_block_ = 0;
    bool sixty_four_ = false;
    bool filetype_ = false;
    bool unsigned_hash_ = false;
    std::vector<std::uint64_t> inode_tables_;
};

} // namespace cz::ext4

#if CZ_HEADER_ONLY
#include <cz/ext4/impl/reader.ipp>
#endif
