// Out-of-line definitions for cz/ext4/formatter.hpp: the tree and the file data. What finish()
// does with them is in formatter_finish.ipp.
//
// Layout of an image (blocks):
//   0                 superblock (at byte 1024)
//   1 .. gdt          group descriptor table (32-byte descriptors, no 64bit feature)
//   .. data_start     free: room for the descriptors of the largest image this may grow to
//   data_start ..     file data, slow symlinks, in the order it streamed in; blocks of files
//                     that a later layer removed stay free in the bitmap
//   meta_start ..     directory blocks, extent-tree blocks and xattr blocks, then every group's
//                     inode table, block bitmap and inode bitmap (flex_bg lets them live here)
//   .. blocks_count   free space
//
// Until finish(), the formatter holds the tree in memory (`fnode`s indexed by node_id, each
// directory a sorted map of names) and streams file data straight to the data region: every
// write extends the file's extent list, all-zero blocks become holes, and a partial last block
// waits in `tail` until the file's next write or another file's first. The pieces finish() uses
// live in their own files: extent_writer.ipp (extent trees), directory_builder.ipp (linear and
// htree directories), xattr_layout.ipp (xattrs in the inode and in a block), write_helpers.ipp.
#pragma once

#include <cz/core/syscall.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/ext4/impl/directory_builder.ipp>
#include <cz/ext4/impl/extent_writer.ipp>
#include <cz/ext4/impl/write_helpers.ipp>
#include <cz/ext4/impl/xattr_layout.ipp>
#include <cz/ext4/layout.hpp>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace cz::ext4 {
namespace detail {

// A node of the tree: a directory (its children by name), a file (its extents in the data
// region), a symlink, a device, fifo or socket. Removed nodes stay as dead slots for reuse.
struct fnode {
    file_type type = file_type::regular;
    bool live = true;
    std::uint32_t links = 0;  // names pointing here
    node_id parent = no_node; // directories: the parent directory
    std::uint32_t ino = 0;    // assigned by finish()
    std::uint32_t major = 0, minor = 0;
    std::uint64_t size = 0;
    metadata md;
    std::string target; // symlinks
    std::vector<extent_run> extents;
    std::unique_ptr<std::map<std::string, node_id, std::less<>>> children;
};

inline bool valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name || name == "." || name == "..") return false;
    return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// Where finish() puts the metadata, decided once every size is known.
struct geometry {
    std::uint64_t blocks = 0;     // blocks in the image
    std::uint64_t groups = 0;     // block groups of blocks_per_group blocks (the last may be short)
    std::uint64_t ipg = 0;        // inodes per group
    std::uint64_t itb = 0;        // inode table blocks per group
    std::uint64_t gdt_blocks = 0; // group descriptor table, from block 1
    std::uint64_t meta_start = 0; // where file data ends: directory, extent-tree, xattr blocks
    std::uint64_t it_start = 0;   // inode tables, itb blocks per group
    std::uint64_t bb_start = 0;   // block bitmaps, one per group
    std::uint64_t ib_start = 0;   // inode bitmaps
    std::uint64_t meta_end = 0;
};

// What an inode's size, links, block count and flags say, found as its blocks are written.
struct inode_usage {
    std::uint64_t size = 0;
    std::uint64_t blocks = 0; // data, directory, extent-tree and xattr blocks
    std::uint32_t flags = 0;
    std::uint32_t links = 0;
};

// What a group's bitmaps say is free.
struct group_usage {
    std::uint64_t free_blocks = 0;
    std::uint64_t free_inodes = 0;
};

} // namespace detail

struct formatter::state {
    unique_fd fd;
    format_options opt;
    std::vector<detail::fnode> nodes;
    std::vector<node_id> free_ids;
    std::size_t live = 0;
    std::uint64_t limit_blocks = 0; // blocks the image may have
    std::uint64_t gdt_reserved = 0; // blocks reserved for group descriptors
    std::uint64_t data_start = 0;
    std::uint64_t next_block = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> freed; // [start, start+len)
    // The file being written and its pending partial block.
    node_id cur = no_node;
    std::uint64_t tail_block = ~std::uint64_t(0);
    bool tail_dirty = false;
    byte_buffer tail = byte_buffer(block_size);
    byte_buffer buf;
    bool failed = false;
    bool finished = false;
    std::error_code init_error;

    // What a call on a failed or finished formatter reports: the constructor's error (the image
    // file could not be truncated, the size is unusable) when there was one, else bad_state.
    std::error_code unusable_error() const {
        return init_error ? init_error : make_error_code(errc::bad_state);
    }

    bool usable(node_id n) const { return n < nodes.size() && nodes[n].live; }

    node_id new_node(file_type t, const metadata& md) {
        node_id id;
        if (!free_ids.empty()) {
            id = free_ids.back();
            free_ids.pop_back();
            nodes[id] = detail::fnode{};
        } else {
            id = node_id(nodes.size());
            nodes.emplace_back();
        }
        auto& n = nodes[id];
        n.type = t;
        n.md = md;
        n.md.mode &= 07777;
        if (t == file_type::directory)
            n.children = std::make_unique<std::map<std::string, node_id, std::less<>>>();
        ++live;
        return id;
    }

    void release(node_id id) {
        auto& n = nodes[id];
        for (const auto& e : n.extents)
            freed.emplace_back(e.physical, e.len);
        if (cur == id) {
            cur = no_node;
            tail_block = ~std::uint64_t(0);
            tail_dirty = false;
        }
        n = detail::fnode{};
        n.live = false;
        free_ids.push_back(id);
        --live;
    }

    void unlink(node_id id) {
        auto& n = nodes[id];
        if (n.type == file_type::directory) {
            auto kids = std::move(n.children);
            for (auto& [name, child] : *kids)
                unlink(child);
            release(id);
            return;
        }
        if (--n.links == 0) release(id);
    }

    // Removes `name` from `dir` if present.
    void remove_name(node_id dir, std::string_view name) {
        auto& kids = *nodes[dir].children;
        auto it = kids.find(name);
        if (it == kids.end()) return;
        node_id child = it->second;
        kids.erase(it);
        unlink(child);
    }

    std::error_code check_parent(node_id parent, std::string_view name) const {
        if (failed || finished) return unusable_error();
        if (!usable(parent)) return errc::not_found;
        if (nodes[parent].type != file_type::directory) return errc::not_a_directory;
        if (!detail::valid_name(name)) return errc::invalid_name;
        return {};
    }

    node_id insert(node_id parent, std::string_view name, node_id child) {
        // Count the new name first: removing what `name` held may drop a link to `child`
        // (a hard link replacing a directory that holds its target). Removing never releases
        // `parent` itself: a directory's entry is never below itself.
        nodes[child].links += 1;
        remove_name(parent, name);
        nodes[parent].children->emplace(std::string(name), child);
        if (nodes[child].type == file_type::directory) nodes[child].parent = parent;
        return child;
    }

    std::error_code allocate(std::uint64_t& block) {
        if (next_block >= limit_blocks) return errc::no_space;
        block = next_block++;
        return {};
    }

    // Maps logical block `lb` of the current file to a new physical block.
    std::error_code map_new(detail::fnode& n, std::uint32_t lb, std::uint64_t count,
                            std::uint64_t& physical) {
        if (next_block + count > limit_blocks) return errc::no_space;
        physical = next_block;
        next_block += count;
        std::uint64_t p = physical;
        while (count > 0) {
            if (!n.extents.empty()) {
                auto& last = n.extents.back();
                if (last.logical + last.len == lb && last.physical + last.len == p &&
                    last.len < max_extent_len) {
                    std::uint32_t add =
                        std::uint32_t(std::min<std::uint64_t>(count, max_extent_len - last.len));
                    last.len += add;
                    lb += add;
                    p += add;
                    count -= add;
                    continue;
                }
            }
            std::uint32_t add = std::uint32_t(std::min<std::uint64_t>(count, max_extent_len));
            n.extents.push_back({lb, add, p});
            lb += add;
            p += add;
            count -= add;
        }
        return {};
    }

    // The physical block of logical block `lb` if the file has one (only its last extent can
    // hold it: writes go at increasing offsets).
    std::uint64_t mapped(const detail::fnode& n, std::uint64_t lb) const {
        if (n.extents.empty()) return 0;
        const auto& e = n.extents.back();
        if (lb >= e.logical && lb < std::uint64_t(e.logical) + e.len)
            return e.physical + (lb - e.logical);
        return 0;
    }

    std::error_code flush_tail() {
        if (cur == no_node || !tail_dirty) return {};
        tail_dirty = false;
        auto& n = nodes[cur];
        std::uint64_t phys = mapped(n, tail_block);
        if (phys == 0) {
            if (detail::all_zero(tail.data(), block_size)) return {};
            if (auto ec = map_new(n, std::uint32_t(tail_block), 1, phys)) return ec;
        }
        return detail::pwrite_all(fd.get(), tail.data(), block_size, phys * block_size);
    }

    // Makes `lb` of the current file the tail block, loading its bytes when already written.
    std::error_code load_tail(std::uint64_t lb) {
        if (tail_block == lb) return {};
        if (auto ec = flush_tail()) return ec;
        std::fill(tail.begin(), tail.end(), std::byte{0});
        tail_block = lb;
        std::uint64_t phys = mapped(nodes[cur], lb);
        if (phys != 0) {
            ssize_t r = sys::pread(fd.get(), tail.data(), block_size, off_t(phys * block_size));
            if (r != ssize_t(block_size))
                return r < 0 ? last_system_error() : make_error_code(errc::corrupt_image);
        }
        return {};
    }

    // Writes whole blocks starting at logical block lb: zero blocks become holes, runs of data
    // blocks go to consecutive physical blocks in one pwrite.
    std::error_code write_blocks(std::uint64_t lb, const std::byte* p, std::size_t nblocks) {
        auto& n = nodes[cur];
        std::size_t i = 0;
        while (i < nblocks) {
            if (detail::all_zero(p + i * block_size, block_size) && mapped(n, lb + i) == 0) {
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            while (j < nblocks && !detail::all_zero(p + j * block_size, block_size))
                ++j;
            std::uint64_t phys = mapped(n, lb + i);
            std::size_t count = j - i;
            if (phys != 0)
                count = 1; // rewriting the previously flushed tail block
            else if (auto ec = map_new(n, std::uint32_t(lb + i), count, phys))
                return ec;
            if (auto ec = detail::pwrite_all(fd.get(), p + i * block_size, count * block_size,
                                             phys * block_size))
                return ec;
            i += count;
        }
        return {};
    }

    std::error_code write(node_id id, std::uint64_t offset, source_ref src, std::uint64_t length) {
        auto& n = nodes[id];
        if (offset < n.size) return errc::bad_state; // offsets must increase
        if (length > max_file_size() || offset > max_file_size() - length)
            return errc::file_too_large;
        if (cur != id) {
            if (auto ec = flush_tail()) return ec;
            cur = id;
            tail_block = ~std::uint64_t(0);
        }
        if (buf.empty()) buf.resize(std::size_t(1) << 20);
        std::uint64_t pos = offset;
        std::uint64_t end = offset + length;
        while (pos < end) {
            std::uint64_t lb = pos / block_size;
            std::size_t in = std::size_t(pos % block_size);
            if (in != 0 || end - pos < block_size || lb == tail_block) {
                if (auto ec = load_tail(lb)) return ec;
                std::size_t k = std::size_t(std::min<std::uint64_t>(block_size - in, end - pos));
                std::error_code ec;
                if (read_full(src, mutable_bytes(tail.data() + in, k), ec) != k)
                    return ec ? ec : make_error_code(cz::errc::truncated);
                tail_dirty = true;
                pos += k;
                continue;
            }
            if (auto ec = flush_tail()) return ec;
            tail_block = ~std::uint64_t(0);
            std::size_t k = std::size_t(
                std::min<std::uint64_t>((end - pos) / block_size * block_size, buf.size()));
            std::error_code ec;
            if (read_full(src, mutable_bytes(buf.data(), k), ec) != k)
                return ec ? ec : make_error_code(cz::errc::truncated);
            if (auto e = write_blocks(lb, buf.data(), k / block_size)) return e;
            pos += k;
        }
        n.size = std::max(n.size, end);
        return {};
    }

    static constexpr std::uint64_t max_file_size() noexcept {
        return (std::uint64_t(1) << 32) * block_size - block_size;
    }

    // finish() and its phases, in the order they run (formatter_finish.ipp).
    void finish(std::error_code& ec);
    void ensure_lost_found();
    std::error_code number_inodes(std::vector<node_id>& order);
    std::error_code count_metadata_blocks(const std::vector<node_id>& order, std::uint64_t& blocks);
    std::error_code choose_geometry(std::uint64_t inodes_used, std::uint64_t metadata_blocks,
                                    detail::geometry& g) const;
    bool size_fixed_image(std::uint64_t inodes_needed, std::uint64_t metadata_blocks,
                          detail::geometry& g) const;
    bool size_growing_image(std::uint64_t inodes_needed, std::uint64_t metadata_blocks,
                            detail::geometry& g) const;
    std::error_code write_inodes(const std::vector<node_id>& order, const detail::geometry& g);
    std::error_code write_inode(node_id id, std::byte* raw, detail::appender& app,
                                byte_buffer& scratch);
    std::error_code write_directory(node_id id, inode& ino, detail::appender& app,
                                    byte_buffer& scratch, detail::inode_usage& usage);
    std::error_code write_bitmaps(const detail::geometry& g, std::uint64_t last_ino,
                                  std::vector<detail::group_usage>& usage);
    std::uint64_t fill_block_bitmap(const detail::geometry& g, std::uint64_t group,
                                    std::size_t& freed_at, std::byte* bitmap) const;
    std::error_code write_group_descriptors(const detail::geometry& g,
                                            const std::vector<node_id>& order,
                                            const std::vector<detail::group_usage>& usage);
    std::error_code write_superblock(const detail::geometry& g,
                                     const std::vector<detail::group_usage>& usage);
    std::vector<detail::dentry> dir_entries(node_id id) const;
};

CZ_DECL formatter::formatter(unique_fd out, format_options options)
    : s_(std::make_unique<state>()) {
    s_->fd = std::move(out);
    s_->opt = std::move(options);
    auto& s = *s_;
    constexpr std::uint64_t max_blocks = 0xffffffffu;
    if (s.opt.size != 0) {
        s.limit_blocks = s.opt.size / block_size;
        if (s.limit_blocks < 64 || s.limit_blocks > max_blocks) s.init_error = errc::no_space;
    } else {
        s.limit_blocks = std::min<std::uint64_t>(s.opt.max_size / block_size, max_blocks);
    }
    std::uint64_t groups = (s.limit_blocks + blocks_per_group - 1) / blocks_per_group;
    s.gdt_reserved = (groups * sizeof(group_desc) + block_size - 1) / block_size;
    s.data_start = 1 + s.gdt_reserved;
    s.next_block = s.data_start;
    if (!s.init_error && (!s.fd || sys::ftruncate(s.fd.get(), 0) != 0))
        s.init_error =
            s.fd ? last_system_error() : std::make_error_code(std::errc::bad_file_descriptor);
    if (s.init_error) s.failed = true;
    metadata root_md;
    root_md.mode = 0755;
    root_md.atime = root_md.mtime = root_md.ctime = root_md.crtime = s.opt.creation_time;
    node_id r = s.new_node(file_type::directory, root_md);
    s.nodes[r].parent = r;
    s.nodes[r].links = 1;
    metadata lf = root_md;
    lf.mode = 0700;
    node_id l = s.new_node(file_type::directory, lf);
    s.insert(r, "lost+found", l);
}

CZ_DECL formatter::~formatter() = default;

CZ_DECL node_id formatter::lookup(node_id dir, std::string_view name) const noexcept {
    if (!s_->usable(dir) || s_->nodes[dir].type != file_type::directory) return no_node;
    const auto& kids = *s_->nodes[dir].children;
    auto it = kids.find(name);
    return it == kids.end() ? no_node : it->second;
}

CZ_DECL file_type formatter::type(node_id n) const noexcept {
    return s_->nodes[n].type;
}

CZ_DECL node_id formatter::parent(node_id dir) const noexcept {
    return s_->nodes[dir].parent;
}

CZ_DECL std::string formatter::symlink_target(node_id n) const {
    return s_->nodes[n].target;
}

CZ_DECL const metadata& formatter::get_metadata(node_id n) const noexcept {
    return s_->nodes[n].md;
}

CZ_DECL std::uint64_t formatter::file_size(node_id n) const noexcept {
    return s_->nodes[n].size;
}

CZ_DECL std::vector<std::string> formatter::children(node_id dir) const {
    std::vector<std::string> out;
    if (!s_->usable(dir) || !s_->nodes[dir].children) return out;
    for (const auto& [name, id] : *s_->nodes[dir].children)
        out.push_back(name);
    return out;
}

CZ_DECL node_id formatter::make_directory(node_id parent, std::string_view name, const metadata& md,
                                          std::error_code& ec) {
    ec = s_->check_parent(parent, name);
    if (!ec) ec = detail::check_xattrs(md.xattrs);
    if (ec) return no_node;
    node_id existing = lookup(parent, name);
    if (existing != no_node && s_->nodes[existing].type == file_type::directory) {
        s_->nodes[existing].md = md;
        s_->nodes[existing].md.mode &= 07777;
        return existing;
    }
    return s_->insert(parent, name, s_->new_node(file_type::directory, md));
}

CZ_DECL node_id formatter::add_file(node_id parent, std::string_view name, const metadata& md,
                                    std::error_code& ec) {
    ec = s_->check_parent(parent, name);
    if (!ec) ec = detail::check_xattrs(md.xattrs);
    if (ec) return no_node;
    return s_->insert(parent, name, s_->new_node(file_type::regular, md));
}

CZ_DECL void formatter::write_file(node_id n, std::uint64_t offset, source_ref data,
                                   std::uint64_t length, std::error_code& ec) {
    ec = {};
    if (s_->failed || s_->finished) {
        ec = s_->unusable_error();
        return;
    }
    if (!s_->usable(n) || s_->nodes[n].type != file_type::regular) {
        ec = errc::not_found;
        return;
    }
    ec = s_->write(n, offset, data, length);
    if (ec) s_->failed = true;
}

CZ_DECL void formatter::set_file_size(node_id n, std::uint64_t size, std::error_code& ec) {
    ec = {};
    if (!s_->usable(n) || s_->nodes[n].type != file_type::regular)
        ec = errc::not_found;
    else if (size > state::max_file_size())
        ec = errc::file_too_large;
    else if (size < s_->nodes[n].size)
        ec = errc::bad_state;
    else
        s_->nodes[n].size = size;
}

CZ_DECL node_id formatter::add_symlink(node_id parent, std::string_view name,
                                       std::string_view target, const metadata& md,
                                       std::error_code& ec) {
    ec = s_->check_parent(parent, name);
    if (!ec) ec = detail::check_xattrs(md.xattrs);
    if (!ec && (target.empty() || target.size() >= block_size || target.find('\0') != target.npos))
        ec = errc::invalid_symlink;
    if (ec) return no_node;
    node_id id = s_->new_node(file_type::symlink, md);
    auto& n = s_->nodes[id];
    n.target = std::string(target);
    n.size = target.size();
    if (target.size() >= 60) { // a slow symlink: the target in one data block
        if (auto e = s_->flush_tail()) {
            ec = e;
            s_->failed = true;
            s_->release(id);
            return no_node;
        }
        s_->cur = no_node;
        byte_buffer blk(block_size);
        std::memcpy(blk.data(), target.data(), target.size());
        std::uint64_t phys = 0;
        if (auto e = s_->map_new(n, 0, 1, phys)) {
            ec = e;
            s_->release(id);
            return no_node;
        }
        if (auto e = detail::pwrite_all(s_->fd.get(), blk.data(), block_size, phys * block_size)) {
            ec = e;
            s_->failed = true;
            s_->release(id);
            return no_node;
        }
    }
    return s_->insert(parent, name, id);
}

CZ_DECL node_id formatter::add_special(node_id parent, std::string_view name, file_type t,
                                       const metadata& md, std::uint32_t major, std::uint32_t minor,
                                       std::error_code& ec) {
    ec = s_->check_parent(parent, name);
    if (!ec) ec = detail::check_xattrs(md.xattrs);
    if (!ec && t != file_type::char_device && t != file_type::block_device &&
        t != file_type::fifo && t != file_type::socket)
        ec = cz::errc::invalid_argument;
    if (!ec && (major > 0xfff || minor > 0xfffff)) ec = cz::errc::invalid_argument;
    if (ec) return no_node;
    node_id id = s_->new_node(t, md);
    if (t == file_type::char_device || t == file_type::block_device) {
        s_->nodes[id].major = major;
        s_->nodes[id].minor = minor;
    }
    return s_->insert(parent, name, id);
}

CZ_DECL void formatter::add_hard_link(node_id parent, std::string_view name, node_id target,
                                      std::error_code& ec) {
    ec = s_->check_parent(parent, name);
    if (ec) return;
    if (!s_->usable(target)) {
        ec = errc::not_found;
        return;
    }
    if (s_->nodes[target].type == file_type::directory) {
        ec = errc::link_to_directory;
        return;
    }
    if (lookup(parent, name) == target) return;
    if (s_->nodes[target].links >= link_max) {
        ec = errc::too_many_links;
        return;
    }
    s_->insert(parent, name, target);
}

CZ_DECL void formatter::remove(node_id dir, std::string_view name) {
    if (s_->usable(dir) && s_->nodes[dir].type == file_type::directory) s_->remove_name(dir, name);
}

CZ_DECL void formatter::clear_directory(node_id dir) {
    if (!s_->usable(dir) || s_->nodes[dir].type != file_type::directory) return;
    auto kids = std::move(*s_->nodes[dir].children);
    s_->nodes[dir].children->clear();
    for (auto& [name, child] : kids)
        s_->unlink(child);
}

CZ_DECL void formatter::set_metadata(node_id n, const metadata& md, std::error_code& ec) {
    ec = {};
    if (!s_->usable(n)) {
        ec = errc::not_found;
        return;
    }
    if ((ec = detail::check_xattrs(md.xattrs))) return;
    s_->nodes[n].md = md;
    s_->nodes[n].md.mode &= 07777;
}

CZ_DECL std::uint64_t formatter::data_blocks() const noexcept {
    return s_->next_block - s_->data_start;
}

CZ_DECL std::size_t formatter::node_count() const noexcept {
    return s_->live;
}

CZ_DECL void formatter::finish(std::error_code& ec) {
    ec = {};
    if (s_->failed || s_->finished) {
        ec = s_->unusable_error();
        return;
    }
    s_->finish(ec);
    if (ec) s_->failed = true;
    s_->finished = true;
}

} // namespace cz::ext4

#include <cz/ext4/impl/formatter_finish.ipp>
