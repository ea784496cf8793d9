// cz/ext4/formatter.hpp — writes a complete ext4 filesystem into a (sparse) regular file.
//
// The caller builds a tree (directories, files, symlinks, device nodes, hard links) through the
// formatter; file data is written to its final blocks as it streams in (all-zero 4 KiB blocks
// become holes), and the tree's metadata stays in memory until finish() lays out bitmaps, inode
// tables, directories (htree above one block), extent-tree blocks and xattr blocks after the data,
// then writes the group descriptors and the superblock. Memory is bounded by the metadata.
//
// What the image is: 4 KiB blocks, 256-byte inodes (nanosecond and post-2038 timestamps, crtime),
// features filetype, extents, flex_bg, sparse_super2 (no backups), ext_attr, dir_index,
// large_file, huge_file, dir_nlink, extra_isize; no journal (the image is built once and mounted
// read-only; ext4 runs without one) and no metadata_csum (nothing requires it, and without it a
// reader or e2fsck -n needs no crc32c of every block to agree). `e2fsck -fn` passes.
//
//     cz::ext4::format_options options;                    // size 0: grow to fit
//     options.free_bytes = 64 << 20;
//     cz::ext4::formatter f(std::move(fd), options);       // fd: a cz::unique_fd
//     std::error_code ec;
//     cz::ext4::metadata dir;                              // owner root, times 0
//     dir.mode = 0755;
//     cz::ext4::node_id etc = f.make_directory(f.root, "etc", dir, ec);
//     cz::ext4::node_id file = f.add_file(etc, "hostname", {}, ec);   // mode 0644
//     cz::memory_source data(cz::as_bytes(std::string_view("box\n")));
//     f.write_file(file, 0, data, 4, ec);                  // any cz::byte_source
//     f.finish(ec);
//
// Images made from OCI layers: cz::ext4::layer_applier (applier.hpp) drives the formatter.
// Inside: impl/formatter.ipp holds the tree and streams the data; impl/formatter_finish.ipp is
// finish(), phase by phase.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/ext4/error.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::ext4 {

enum class file_type : std::uint8_t {
    regular,
    directory,
    symlink,
    char_device,
    block_device,
    fifo,
    socket,
};

struct timestamp {
    std::int64_t sec = 0;
    std::uint32_t nsec = 0;
    friend bool operator==(const timestamp&, const timestamp&) = default;
};

struct xattr {
    std::string name; // full name: "user.x", "trusted.overlay.opaque", "security.capability"
    std::string value;
    friend bool operator==(const xattr&, const xattr&) = default;
};

// What every node carries besides its type and content.
struct metadata {
    std::uint32_t mode = 0644; // permission bits with setuid/setgid/sticky (07777)
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    timestamp atime, mtime, ctime, crtime;
    std::vector<xattr> xattrs;
};

struct format_options {
    // Image size in bytes, rounded down to 4 KiB; 0 grows the image to fit the content plus
    // `free_bytes`. Content that does not fit fails with errc::no_space.
    std::uint64_t size = 0;
    // Growing images: the largest size the image may reach (sizes the group descriptor table
    // reserved at the start). At most 16 TiB.
    std::uint64_t max_size = std::uint64_t(4) << 40;
    // Growing images: extra free space and free inodes beyond the content.
    std::uint64_t free_bytes = 0;
    std::uint32_t free_inodes = 0;
    // Superblock identity and the times of the root and lost+found when the caller sets none.
    std::array<std::uint8_t, 16> uuid{};
    std::string label;
    timestamp creation_time;
};

// A node of the tree: an index, stable until the node is removed.
using node_id = std::uint32_t;
inline constexpr node_id no_node = 0xffffffffu;

class formatter {
public:
    static constexpr node_id root = 0;

    // Writes into `out`, a regular file opened for writing; the file is truncated.
    CZ_DECL formatter(unique_fd out, format_options options = {});
    CZ_DECL ~formatter();
    formatter(const formatter&) = delete;
    formatter& operator=(const formatter&) = delete;

    // --- reading the tree ---
    // The child `name` of directory `dir`, or no_node.
    CZ_DECL node_id lookup(node_id dir, std::string_view name) const noexcept;
    CZ_DECL file_type type(node_id n) const noexcept;
    // A directory's parent (the root's parent is the root).
    CZ_DECL node_id parent(node_id dir) const noexcept;
    // A symlink's target.
    CZ_DECL std::string symlink_target(node_id n) const;
    CZ_DECL const metadata& get_metadata(node_id n) const noexcept;
    CZ_DECL std::uint64_t file_size(node_id n) const noexcept;
    // Names of a directory's children, sorted.
    CZ_DECL std::vector<std::string> children(node_id dir) const;

    // --- changing the tree ---
    // Each add_* replaces whatever `name` was (removing a directory removes its subtree), except
    // make_directory over a directory, which only replaces its metadata.
    CZ_DECL node_id make_directory(node_id parent, std::string_view name, const metadata& md,
                                   std::error_code& ec);
    // An empty regular file; its data comes through write_file.
    CZ_DECL node_id add_file(node_id parent, std::string_view name, const metadata& md,
                             std::error_code& ec);
    // Writes `length` bytes from `data` at byte `offset` of file `n`. Writes to one file must go
    // at increasing offsets (a sparse map's segments in order) and, once another file has been
    // written, not come back. Skipped ranges and all-zero blocks are holes. The file's size
    // grows to offset + length.
    CZ_DECL void write_file(node_id n, std::uint64_t offset, source_ref data,
                            std::uint64_t length, std::error_code& ec);
    // Sets the size of file `n` (at least what was written): a tail that was never written is a
    // hole.
    CZ_DECL void set_file_size(node_id n, std::uint64_t size, std::error_code& ec);
    CZ_DECL node_id add_symlink(node_id parent, std::string_view name, std::string_view target,
                                const metadata& md, std::error_code& ec);
    // Character/block devices, fifos and sockets; major/minor matter for devices only.
    CZ_DECL node_id add_special(node_id parent, std::string_view name, file_type t,
                                const metadata& md, std::uint32_t major, std::uint32_t minor,
                                std::error_code& ec);
    // A new name for the non-directory `target`.
    CZ_DECL void add_hard_link(node_id parent, std::string_view name, node_id target,
                               std::error_code& ec);
    // Removes `name` from `dir` (and a directory's subtree); nothing if absent.
    CZ_DECL void remove(node_id dir, std::string_view name);
    // Removes every child of `dir`.
    CZ_DECL void clear_directory(node_id dir);
    CZ_DECL void set_metadata(node_id n, const metadata& md, std::error_code& ec);

    // Lays out and writes the metadata; the image is complete when this returns without error.
    CZ_DECL void finish(std::error_code& ec);
    void finish() {
        std::error_code ec;
        finish(ec);
        throw_if(ec, "ext4: finishing the image");
    }

    // Blocks of file data written so far (the data region's size) and live inodes.
    CZ_DECL std::uint64_t data_blocks() const noexcept;
    CZ_DECL std::size_t node_count() const noexcept;

    struct state;

private:
    std::unique_ptr<state> s_;
};

} // namespace cz::ext4

#if CZ_HEADER_ONLY
#include <cz/ext4/impl/formatter.ipp>
#endif
