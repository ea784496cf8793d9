// formatter::finish(): lays out and writes the metadata once the tree and the file data are done.
//
// The phases, in order (each a function below):
//   1. number_inodes          root = 2, then 11, 12, ... breadth-first, so a directory's
//                             entries have neighbouring numbers
//   2. count_metadata_blocks  directory, extent-tree and xattr blocks every inode will need
//   3. choose_geometry        groups and inodes per group so that everything fits (a fixed size,
//                             or the smallest image that holds the content plus the free space
//                             asked for), and where bitmaps and inode tables go
//   4. write_inodes           every inode into its group's table, in inode order, appending
//                             its directory, extent-tree and xattr blocks to the metadata region
//   5. write_bitmaps          each group's block bitmap (data, metadata, blocks of removed files
//                             freed) and inode bitmap
//   6. write_group_descriptors
//   7. write_superblock       then the file is cut to the image's size
// Phase 2 and phase 4 must agree block for block: phase 4 checks that it ended where phase 2
// said the bitmaps start.
#pragma once

#include <cz/ext4/impl/formatter.ipp>

#include <algorithm>
#include <cstring>
#include <unistd.h>

namespace cz::ext4 {
namespace detail {

inline std::uint16_t type_bits(file_type t) noexcept {
    switch (t) {
    case file_type::regular:
        return mode_regular;
    case file_type::directory:
        return mode_directory;
    case file_type::symlink:
        return mode_symlink;
    case file_type::char_device:
        return mode_chrdev;
    case file_type::block_device:
        return mode_blkdev;
    case file_type::fifo:
        return mode_fifo;
    case file_type::socket:
        return mode_socket;
    }
    return 0;
}

inline std::uint8_t dirent_type(file_type t) noexcept {
    switch (t) {
    case file_type::regular:
        return ft_regular;
    case file_type::directory:
        return ft_directory;
    case file_type::symlink:
        return ft_symlink;
    case file_type::char_device:
        return ft_chrdev;
    case file_type::block_device:
        return ft_blkdev;
    case file_type::fifo:
        return ft_fifo;
    case file_type::socket:
        return ft_socket;
    }
    return ft_unknown;
}

// Encodes seconds + nanoseconds as ext4 does (ext4_encode_extra_time): the low 32 bits of the
// seconds, and 2 epoch bits (bits 32-33) plus the nanoseconds in the extra field.
inline void encode_time(const timestamp& t, le<std::uint32_t>& lo, le<std::uint32_t>* extra) {
    std::int64_t sec = std::clamp<std::int64_t>(
        t.sec, -(std::int64_t(1) << 31), (std::int64_t(1) << 34) - (std::int64_t(1) << 31) - 1);
    auto low = std::int32_t(std::uint32_t(std::uint64_t(sec)));
    lo.set(std::uint32_t(low));
    if (extra) {
        std::uint32_t epoch = std::uint32_t(((sec - std::int64_t(low)) >> 32) & 3);
        extra->set(epoch | (std::min<std::uint32_t>(t.nsec, 999999999u) << 2));
    }
}

// Device numbers in i_block as the kernel keeps them (fs/ext4/inode.c): the old 8:8 encoding in
// word 0 when both fit, the new encoding (new_encode_dev) in word 1 otherwise.
inline void encode_device(std::byte* i_block, std::uint32_t major, std::uint32_t minor) {
    if (major < 256 && minor < 256) {
        store_le<std::uint32_t>(i_block, (major << 8) | minor);
    } else {
        store_le<std::uint32_t>(i_block + 4,
                                (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12));
    }
}

// The fields every inode has: type and mode, owner, times.
inline void set_inode_attributes(inode& ino, file_type type, const metadata& md) {
    ino.mode.set(std::uint16_t(type_bits(type) | (md.mode & 07777)));
    ino.uid.set(std::uint16_t(md.uid));
    ino.uid_high.set(std::uint16_t(md.uid >> 16));
    ino.gid.set(std::uint16_t(md.gid));
    ino.gid_high.set(std::uint16_t(md.gid >> 16));
    encode_time(md.atime, ino.atime, &ino.atime_extra);
    encode_time(md.mtime, ino.mtime, &ino.mtime_extra);
    encode_time(md.ctime, ino.ctime, &ino.ctime_extra);
    encode_time(md.crtime, ino.crtime, &ino.crtime_extra);
    ino.extra_isize.set(extra_isize);
}

inline void set_inode_usage(inode& ino, const inode_usage& u) {
    ino.size_lo.set(std::uint32_t(u.size));
    ino.size_high.set(std::uint32_t(u.size >> 32));
    ino.links_count.set(std::uint16_t(u.links));
    std::uint64_t sectors = u.blocks * (block_size / 512);
    ino.blocks_lo.set(std::uint32_t(sectors));
    ino.blocks_high.set(std::uint16_t(sectors >> 32));
    ino.flags.set(u.flags);
}

// A node's xattrs: as many as fit in the inode (`raw` is its inode_size bytes), the rest in one
// block appended to the metadata region.
inline std::error_code write_node_xattrs(const std::vector<xattr>& xattrs, std::byte* raw,
                                         inode& ino, appender& app, inode_usage& u) {
    if (xattrs.empty()) return {};
    auto xs = sort_xattrs(xattrs);
    xattr_plan plan;
    plan_xattrs(xs, plan);
    const packed_xattr* in_block = xs.data() + plan.in_inode;
    if (plan.in_inode > 0)
        write_inode_xattrs({raw + sizeof(inode), inode_xattr_space}, xs.data(), in_block);
    if (!plan.block) return {};
    byte_buffer blk(block_size);
    write_xattr_block(blk, in_block, xs.data() + xs.size());
    ino.file_acl_lo.set(std::uint32_t(app.block));
    u.blocks += 1;
    return app.put(blk.data(), 1);
}

// The inode tables, written a group at a time from one buffer as inodes come in ascending order.
class inode_table_writer {
public:
    inode_table_writer(int fd, const geometry& g) : fd_(fd), g_(g), table_(g.ipg * inode_size) {}

    // The zeroed inode_size bytes of inode `ino`; flushes the previous group's table first when
    // `ino` is in another group.
    std::error_code slot(std::uint32_t ino, std::byte*& raw) {
        std::uint64_t group = (ino - 1) / g_.ipg;
        if (group != group_) {
            if (auto e = flush()) return e;
            group_ = group;
        }
        std::size_t at = std::size_t((ino - 1) % g_.ipg) * inode_size;
        used_ = std::max<std::uint64_t>(used_, at + inode_size);
        // SAFETY: at + inode_size <= ipg * inode_size == table_.size().
        raw = table_.data() + at;
        return {};
    }

    std::error_code flush() {
        if (used_ == 0) return {};
        auto e =
            pwrite_all(fd_, table_.data(), used_, (g_.it_start + group_ * g_.itb) * block_size);
        std::fill(table_.begin(), table_.begin() + std::ptrdiff_t(used_), std::byte{0});
        used_ = 0;
        return e;
    }

private:
    int fd_;
    const geometry& g_;
    byte_buffer table_;
    std::uint64_t group_ = 0; // the group table_ holds
    std::uint64_t used_ = 0;  // bytes of table_ holding inodes
};

// Calls f(id) for the root, then for every node in inode order; stops at the first error.
template <class F>
std::error_code each_inode(const std::vector<node_id>& order, F&& f) {
    if (auto ec = f(formatter::root)) return ec;
    for (node_id id : order)
        if (auto ec = f(id)) return ec;
    return {};
}

} // namespace detail

inline void formatter::state::finish(std::error_code& ec) {
    if ((ec = flush_tail())) return;
    cur = no_node;
    ensure_lost_found();
    std::vector<node_id> order; // node of inode first_inode + i
    if ((ec = number_inodes(order))) return;
    const std::uint64_t last_ino = first_inode - 1 + order.size();
    std::uint64_t metadata_blocks = 0;
    if ((ec = count_metadata_blocks(order, metadata_blocks))) return;
    detail::geometry g;
    if ((ec = choose_geometry(last_ino, metadata_blocks, g))) return;
    if ((ec = write_inodes(order, g))) return;
    std::vector<detail::group_usage> usage;
    if ((ec = write_bitmaps(g, last_ino, usage))) return;
    if ((ec = write_group_descriptors(g, order, usage))) return;
    if ((ec = write_superblock(g, usage))) return;
    if (sys::ftruncate(fd.get(), off_t(g.blocks * block_size)) != 0) ec = last_system_error();
}

// lost+found: e2fsck wants it; recreate it if a layer removed it.
inline void formatter::state::ensure_lost_found() {
    if (nodes[root].children->count("lost+found") != 0) return;
    metadata lf;
    lf.mode = 0700;
    lf.atime = lf.mtime = lf.ctime = lf.crtime = opt.creation_time;
    insert(root, "lost+found", new_node(file_type::directory, lf));
}

// Phase 1: the root is inode 2, the rest from 11 in breadth-first order, so a directory's
// entries are numbered together. A hard-linked node keeps the number its first name gave it.
inline std::error_code formatter::state::number_inodes(std::vector<node_id>& order) {
    nodes[root].ino = root_inode;
    std::vector<node_id> queue{root};
    for (std::size_t q = 0; q < queue.size(); ++q) {
        for (const auto& [name, child] : *nodes[queue[q]].children) {
            auto& c = nodes[child];
            if (c.ino != 0) continue;
            if (order.size() + first_inode > 0xfffffff0u) return errc::no_space;
            c.ino = std::uint32_t(first_inode + order.size());
            order.push_back(child);
            if (c.type == file_type::directory) queue.push_back(child);
        }
    }
    return {};
}

// The entries of directory `id` (names sorted), numbered.
inline std::vector<detail::dentry> formatter::state::dir_entries(node_id id) const {
    std::vector<detail::dentry> es;
    es.reserve(nodes[id].children->size());
    for (const auto& [name, child] : *nodes[id].children)
        es.push_back({name, nodes[child].ino, detail::dirent_type(nodes[child].type), 0});
    return es;
}

// Phase 2: the blocks directories, extent trees and xattr blocks will take.
inline std::error_code formatter::state::count_metadata_blocks(const std::vector<node_id>& order,
                                                               std::uint64_t& blocks) {
    using namespace detail;
    blocks = 0;
    return each_inode(order, [&](node_id id) -> std::error_code {
        const auto& n = nodes[id];
        std::uint64_t nextents = n.extents.size();
        if (n.type == file_type::directory) {
            auto es = dir_entries(id);
            std::error_code ec;
            std::size_t nb = layout_directory(es, 0, 0, nullptr, ec);
            if (ec) return ec;
            blocks += nb;
            nextents = (nb + max_extent_len - 1) / max_extent_len;
        }
        blocks += extent_tree_blocks(nextents) + xattr_blocks(n.md.xattrs);
        return {};
    });
}

namespace detail {
// Inodes per group for `groups` groups to hold `inodes` inodes: a multiple of 16, at least 16.
inline std::uint64_t inodes_per_group(std::uint64_t inodes, std::uint64_t groups) noexcept {
    std::uint64_t need = (inodes + groups - 1) / groups;
    return std::max<std::uint64_t>(16, (need + 15) / 16 * 16);
}
inline std::uint64_t itable_blocks(std::uint64_t ipg) noexcept {
    return ipg * inode_size / block_size;
}
} // namespace detail

// Phase 3: the image's size, groups and inodes per group, then where everything goes. File
// data ends at next_block; the metadata follows it.
inline std::error_code formatter::state::choose_geometry(std::uint64_t inodes_used,
                                                         std::uint64_t metadata_blocks,
                                                         detail::geometry& g) const {
    g.meta_start = next_block;
    const std::uint64_t inodes_needed = inodes_used + opt.free_inodes;
    bool fits = opt.size != 0 ? size_fixed_image(inodes_needed, metadata_blocks, g)
                              : size_growing_image(inodes_needed, metadata_blocks, g);
    if (!fits) return errc::no_space;
    g.gdt_blocks = (g.groups * sizeof(group_desc) + block_size - 1) / block_size;
    if (g.groups * g.ipg > 0xffffffffu || g.gdt_blocks > gdt_reserved) return errc::no_space;
    g.itb = detail::itable_blocks(g.ipg);
    // The inode tables before the bitmaps, never last in the image: Linux's inode-table
    // readahead also reads the block after a table, and a guest whose disk is larger than the
    // image (a VM template's clone sees its placeholder's size) gets an I/O error for it.
    g.it_start = g.meta_start + metadata_blocks;
    g.bb_start = g.it_start + g.groups * g.itb;
    g.ib_start = g.bb_start + g.groups;
    g.meta_end = g.ib_start + g.groups;
    return {};
}

// A fixed size: as many groups as the blocks make, and room for inodes a later writer may add
// (mke2fs's one inode per 16 KiB) when it fits.
inline bool formatter::state::size_fixed_image(std::uint64_t inodes_needed,
                                               std::uint64_t metadata_blocks,
                                               detail::geometry& g) const {
    using namespace detail;
    g.blocks = limit_blocks;
    g.groups = (g.blocks + blocks_per_group - 1) / blocks_per_group;
    g.ipg = inodes_per_group(inodes_needed, g.groups);
    std::uint64_t roomy = std::min<std::uint64_t>(
        blocks_per_group / 2,
        ((g.blocks * block_size / 16384 + g.groups - 1) / g.groups + 15) / 16 * 16);
    std::uint64_t base = g.meta_start + metadata_blocks + g.groups * 2; // + the bitmaps
    if (roomy > g.ipg && base + g.groups * itable_blocks(roomy) <= g.blocks) g.ipg = roomy;
    return g.ipg <= blocks_per_group && base + g.groups * itable_blocks(g.ipg) <= g.blocks;
}

// A growing image: the fewest groups that hold the data, the metadata, the inodes and the free
// space asked for (more groups need more inode tables and bitmaps, so iterate until it settles).
inline bool formatter::state::size_growing_image(std::uint64_t inodes_needed,
                                                 std::uint64_t metadata_blocks,
                                                 detail::geometry& g) const {
    using namespace detail;
    const std::uint64_t free_blocks = (opt.free_bytes + block_size - 1) / block_size;
    g.groups = 1;
    for (;;) {
        g.ipg = inodes_per_group(inodes_needed, g.groups);
        if (g.ipg > blocks_per_group) { // an inode bitmap is one block: 32768 inodes at most
            ++g.groups;
            continue;
        }
        g.blocks =
            g.meta_start + metadata_blocks + g.groups * (2 + itable_blocks(g.ipg)) + free_blocks;
        std::uint64_t need = (g.blocks + blocks_per_group - 1) / blocks_per_group;
        if (need <= g.groups) break;
        g.groups = need;
    }
    // More groups than the blocks need (for their inodes): every group gets blocks, the last at
    // least 64.
    if (g.groups > 1)
        g.blocks = std::max<std::uint64_t>(g.blocks, (g.groups - 1) * blocks_per_group + 64);
    return g.blocks <= limit_blocks;
}

// Phase 4: every inode, with its directory, extent-tree and xattr blocks appended to the
// metadata region in inode order.
inline std::error_code formatter::state::write_inodes(const std::vector<node_id>& order,
                                                      const detail::geometry& g) {
    using namespace detail;
    appender app{fd.get(), g.meta_start, {}, 0};
    inode_table_writer tables(fd.get(), g);
    byte_buffer scratch;
    auto ec = each_inode(order, [&](node_id id) -> std::error_code {
        std::byte* raw = nullptr;
        if (auto e = tables.slot(nodes[id].ino, raw)) return e;
        return write_inode(id, raw, app, scratch);
    });
    if (!ec) ec = tables.flush();
    if (!ec) ec = app.flush();
    // Phase 2 and this one disagree: a bug, never silently corrupt.
    if (!ec && app.block != g.it_start) ec = cz::errc::invalid_argument;
    return ec;
}

// One inode into `raw` (its zeroed inode_size bytes in the table).
inline std::error_code formatter::state::write_inode(node_id id, std::byte* raw,
                                                     detail::appender& app, byte_buffer& scratch) {
    using namespace detail;
    const auto& n = nodes[id];
    // SAFETY: raw holds inode_size (256) bytes; struct inode is the first 160.
    auto& ino = *reinterpret_cast<inode*>(raw);
    set_inode_attributes(ino, n.type, n.md);
    inode_usage u{n.size, 0, 0, n.links};
    std::uint64_t tree = 0;
    std::error_code ec;
    switch (n.type) {
    case file_type::directory:
        ec = write_directory(id, ino, app, scratch, u);
        break;
    case file_type::regular:
        u.flags |= inode_flag_extents;
        for (const auto& r : n.extents)
            u.blocks += r.len;
        ec = write_extent_tree(n.extents, ino.block.data(), app, scratch, tree);
        break;
    case file_type::symlink:
        if (n.target.size() < 60) { // a fast symlink: the target in i_block
            std::memcpy(ino.block.data(), n.target.data(), n.target.size());
        } else {
            u.flags |= inode_flag_extents;
            u.blocks = 1;
            ec = write_extent_tree(n.extents, ino.block.data(), app, scratch, tree);
        }
        break;
    case file_type::char_device:
    case file_type::block_device:
        encode_device(ino.block.data(), n.major, n.minor);
        break;
    case file_type::fifo:
    case file_type::socket:
        break;
    }
    if (ec) return ec;
    u.blocks += tree;
    if ((ec = write_node_xattrs(n.md.xattrs, raw, ino, app, u))) return ec;
    set_inode_usage(ino, u);
    return {};
}

// A directory's blocks (linear or htree) and the extents that map them.
inline std::error_code formatter::state::write_directory(node_id id, inode& ino,
                                                         detail::appender& app,
                                                         byte_buffer& scratch,
                                                         detail::inode_usage& u) {
    using namespace detail;
    const auto& n = nodes[id];
    std::uint32_t subdirs = 0;
    for (const auto& [name, child] : *n.children)
        if (nodes[child].type == file_type::directory) ++subdirs;
    u.links = 2 + subdirs;
    if (u.links >= link_max) u.links = 1; // dir_nlink: "many"
    auto es = dir_entries(id);
    std::error_code ec;
    std::size_t nb = layout_directory(es, n.ino, nodes[n.parent].ino, &scratch, ec);
    if (ec) return ec;
    if (nb > 1) u.flags |= inode_flag_index;
    std::uint64_t first = app.block;
    if (auto e = app.put(scratch.data(), nb)) return e;
    std::vector<extent_run> runs;
    for (std::uint64_t done = 0; done < nb;) {
        std::uint32_t len = std::uint32_t(std::min<std::uint64_t>(nb - done, max_extent_len));
        runs.push_back({std::uint32_t(done), len, first + done});
        done += len;
    }
    u.size = nb * block_size;
    u.blocks = nb;
    u.flags |= inode_flag_extents;
    std::uint64_t tree = 0;
    if (auto e = write_extent_tree(runs, ino.block.data(), app, scratch, tree)) return e;
    u.blocks += tree;
    return {};
}

// Phase 5: each group's block bitmap and inode bitmap; `usage` gets what they leave free.
inline std::error_code formatter::state::write_bitmaps(const detail::geometry& g,
                                                       std::uint64_t last_ino,
                                                       std::vector<detail::group_usage>& usage) {
    using namespace detail;
    std::sort(freed.begin(), freed.end());
    usage.assign(g.groups, {});
    byte_buffer bitmap(block_size);
    std::size_t freed_at = 0; // first freed range that may touch the current group
    for (std::uint64_t group = 0; group < g.groups; ++group) {
        std::fill(bitmap.begin(), bitmap.end(), std::byte{0});
        usage[group].free_blocks = fill_block_bitmap(g, group, freed_at, bitmap.data());
        if (auto e =
                pwrite_all(fd.get(), bitmap.data(), block_size, (g.bb_start + group) * block_size))
            return e;

        // Inodes 1 .. last_ino are used (1 and 3..10 are reserved), the rest free.
        std::fill(bitmap.begin(), bitmap.end(), std::byte{0});
        std::uint64_t ifirst = group * g.ipg + 1;
        std::uint64_t ilast = ifirst + g.ipg; // exclusive
        std::uint64_t iused = last_ino >= ifirst ? std::min(last_ino + 1, ilast) - ifirst : 0;
        set_bits(bitmap.data(), 0, iused);
        set_bits(bitmap.data(), g.ipg, block_size * 8); // padding past the group's inodes
        if (auto e =
                pwrite_all(fd.get(), bitmap.data(), block_size, (g.ib_start + group) * block_size))
            return e;
        usage[group].free_inodes = g.ipg - iused;
    }
    return {};
}

// The block bitmap of `group` into the zeroed `bitmap`: superblock and descriptors, file data
// less the blocks of removed files (`freed`, sorted; `freed_at` moves along it), metadata.
// Returns the group's free blocks.
inline std::uint64_t formatter::state::fill_block_bitmap(const detail::geometry& g,
                                                         std::uint64_t group, std::size_t& freed_at,
                                                         std::byte* bitmap) const {
    using namespace detail;
    const std::uint64_t first = group * blocks_per_group;
    const std::uint64_t last = std::min<std::uint64_t>(first + blocks_per_group, g.blocks);
    auto mark = [&](std::uint64_t a, std::uint64_t b) { // used: [a, b)
        a = std::max(a, first);
        b = std::min(b, last);
        if (a < b) set_bits(bitmap, a - first, b - first);
    };
    mark(0, 1 + g.gdt_blocks);
    mark(data_start, g.meta_start);
    while (freed_at < freed.size() && freed[freed_at].first + freed[freed_at].second <= first)
        ++freed_at;
    for (std::size_t k = freed_at; k < freed.size() && freed[k].first < last; ++k) {
        std::uint64_t a = std::max(freed[k].first, first);
        std::uint64_t b = std::min(freed[k].first + freed[k].second, last);
        if (a < b) clear_bits(bitmap, a - first, b - first);
    }
    mark(g.meta_start, g.meta_end);
    std::uint64_t used = 0;
    for (std::uint64_t i = 0; i < last - first; ++i)
        used += (std::to_integer<unsigned>(bitmap[i / 8]) >> (i % 8)) & 1;
    set_bits(bitmap, last - first, blocks_per_group); // padding past the end of the image
    return (last - first) - used;
}

// Phase 6: the group descriptor table, from block 1.
inline std::error_code
formatter::state::write_group_descriptors(const detail::geometry& g,
                                          const std::vector<node_id>& order,
                                          const std::vector<detail::group_usage>& usage) {
    using namespace detail;
    std::vector<std::uint32_t> used_dirs(g.groups, 0);
    each_inode(order, [&](node_id id) -> std::error_code {
        if (nodes[id].type == file_type::directory) ++used_dirs[(nodes[id].ino - 1) / g.ipg];
        return {};
    });
    byte_buffer gdt(g.gdt_blocks * block_size);
    for (std::uint64_t group = 0; group < g.groups; ++group) {
        // SAFETY: group < groups and gdt holds at least groups * 32 bytes.
        auto* gd = reinterpret_cast<group_desc*>(gdt.data() + group * sizeof(group_desc));
        gd->block_bitmap_lo.set(std::uint32_t(g.bb_start + group));
        gd->inode_bitmap_lo.set(std::uint32_t(g.ib_start + group));
        gd->inode_table_lo.set(std::uint32_t(g.it_start + group * g.itb));
        gd->free_blocks_count_lo.set(std::uint16_t(usage[group].free_blocks));
        gd->free_inodes_count_lo.set(std::uint16_t(usage[group].free_inodes));
        gd->used_dirs_count_lo.set(std::uint16_t(used_dirs[group]));
    }
    return pwrite_all(fd.get(), gdt.data(), gdt.size(), block_size);
}

// Phase 7: the superblock, at byte 1024.
inline std::error_code
formatter::state::write_superblock(const detail::geometry& g,
                                   const std::vector<detail::group_usage>& usage) {
    std::uint64_t free_blocks = 0, free_inodes = 0;
    for (const auto& u : usage) {
        free_blocks += u.free_blocks;
        free_inodes += u.free_inodes;
    }
    byte_buffer sbb(1024);
    // SAFETY: sbb is exactly sizeof(superblock) bytes.
    auto& sb = *reinterpret_cast<superblock*>(sbb.data());
    sb.inodes_count.set(std::uint32_t(g.groups * g.ipg));
    sb.blocks_count_lo.set(std::uint32_t(g.blocks));
    sb.free_blocks_count_lo.set(std::uint32_t(free_blocks));
    sb.free_inodes_count.set(std::uint32_t(free_inodes));
    sb.first_data_block.set(0);
    sb.log_block_size.set(log_block_size);
    sb.log_cluster_size.set(log_block_size);
    sb.blocks_per_group.set(blocks_per_group);
    sb.clusters_per_group.set(blocks_per_group);
    sb.inodes_per_group.set(std::uint32_t(g.ipg));
    auto t32 = std::uint32_t(std::clamp<std::int64_t>(opt.creation_time.sec, 0, 0xffffffffLL));
    sb.wtime.set(t32);
    sb.mkfs_time.set(t32);
    sb.lastcheck.set(t32);
    sb.max_mnt_count.set(0xffff);
    sb.magic.set(super_magic);
    sb.state.set(1);  // cleanly unmounted
    sb.errors.set(1); // continue
    sb.rev_level.set(1);
    sb.first_ino.set(first_inode);
    sb.inode_size.set(inode_size);
    sb.feature_compat.set(compat_ext_attr | compat_dir_index | compat_sparse_super2);
    sb.feature_incompat.set(incompat_filetype | incompat_extents | incompat_flex_bg);
    sb.feature_ro_compat.set(ro_compat_large_file | ro_compat_huge_file | ro_compat_dir_nlink |
                             ro_compat_extra_isize);
    std::memcpy(sb.uuid.data(), opt.uuid.data(), 16);
    std::memcpy(sb.volume_name.data(), opt.label.data(),
                std::min<std::size_t>(opt.label.size(), 16));
    // A fixed hash seed keeps images reproducible; the legacy hash does not use it anyway.
    for (std::size_t i = 0; i < 4; ++i)
        sb.hash_seed[i].set(0x9e3779b9u * std::uint32_t(i + 1));
    sb.def_hash_version = std::byte(hash_legacy);
    sb.desc_size.set(0);
    sb.min_extra_isize.set(extra_isize);
    sb.want_extra_isize.set(extra_isize);
    sb.flags.set(sb_flags_unsigned_hash);
    sb.log_groups_per_flex = std::byte(31);
    // backup_bgs stay 0: sparse_super2 with no backup superblocks.
    return detail::pwrite_all(fd.get(), sbb.data(), sbb.size(), superblock_offset);
}

} // namespace cz::ext4
