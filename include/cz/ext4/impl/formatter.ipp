// Out-of-line definitions for cz/ext4/formatter.hpp.
//
// Layout of an image (blocks):
//   0                 superblock (at byte 1024)
//   1 .. gdt          group descriptor table (32-byte descriptors, no 64bit feature)
//   .. data_start     free: room for the descriptors of the largest image this may grow to
//   data_start ..     file data, slow symlinks, in the order it streamed in; blocks of files
//                     that a later layer removed stay free in the bitmap
//   meta_start ..     directory blocks, extent-tree blocks and xattr blocks, then every group's
//                     block bitmap, inode bitmap and inode table (flex_bg lets them live here)
//   .. blocks_count   free space
#pragma once

#include <cz/ext4/formatter.hpp>
#include <cz/ext4/layout.hpp>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace cz::ext4 {
namespace detail {

struct extent_run {
    std::uint32_t logical;
    std::uint32_t len;
    std::uint64_t physical;
};

struct fnode {
    file_type type = file_type::regular;
    bool live = true;
    std::uint32_t links = 0;     // names pointing here
    node_id parent = no_node;    // directories: the parent directory
    std::uint32_t ino = 0;       // assigned by finish()
    std::uint32_t major = 0, minor = 0;
    std::uint64_t size = 0;
    metadata md;
    std::string target;          // symlinks
    std::vector<extent_run> extents;
    std::unique_ptr<std::map<std::string, node_id, std::less<>>> children;
};

inline bool valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name || name == "." || name == "..") return false;
    return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

inline std::uint16_t type_bits(file_type t) noexcept {
    switch (t) {
    case file_type::regular: return mode_regular;
    case file_type::directory: return mode_directory;
    case file_type::symlink: return mode_symlink;
    case file_type::char_device: return mode_chrdev;
    case file_type::block_device: return mode_blkdev;
    case file_type::fifo: return mode_fifo;
    case file_type::socket: return mode_socket;
    }
    return 0;
}

inline std::uint8_t dirent_type(file_type t) noexcept {
    switch (t) {
    case file_type::regular: return ft_regular;
    case file_type::directory: return ft_directory;
    case file_type::symlink: return ft_symlink;
    case file_type::char_device: return ft_chrdev;
    case file_type::block_device: return ft_blkdev;
    case file_type::fifo: return ft_fifo;
    case file_type::socket: return ft_socket;
    }
    return ft_unknown;
}

inline std::uint32_t round4(std::size_t n) noexcept { return std::uint32_t((n + 3) & ~std::size_t(3)); }

inline bool all_zero(const std::byte* p, std::size_t n) noexcept {
    // Compare 8 bytes at a time; the compiler vectorises the loop.
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (std::size_t i = n & ~std::size_t(7); i < n; ++i) acc |= std::to_integer<std::uint64_t>(p[i]);
    return acc == 0;
}

inline std::error_code pwrite_all(int fd, const std::byte* p, std::size_t n, std::uint64_t off) {
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, off_t(off));
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

// Encodes seconds + nanoseconds as ext4 does (ext4_encode_extra_time): the low 32 bits of the
// seconds, and 2 epoch bits (bits 32-33) plus the nanoseconds in the extra field.
inline void encode_time(const timestamp& t, le<std::uint32_t>& lo, le<std::uint32_t>* extra) {
    std::int64_t sec = std::clamp<std::int64_t>(t.sec, -(std::int64_t(1) << 31),
                                                (std::int64_t(1) << 34) - (std::int64_t(1) << 31) - 1);
    auto low = std::int32_t(std::uint32_t(std::uint64_t(sec)));
    lo.set(std::uint32_t(low));
    if (extra) {
        std::uint32_t epoch = std::uint32_t(((sec - std::int64_t(low)) >> 32) & 3);
        extra->set(epoch | (std::min<std::uint32_t>(t.nsec, 999999999u) << 2));
    }
}

// A packed xattr: index, suffix, value.
struct packed_xattr {
    std::uint8_t index;
    std::string_view name;
    std::string_view value;
};

inline std::vector<packed_xattr> sort_xattrs(const std::vector<xattr>& xs) {
    std::vector<packed_xattr> out;
    out.reserve(xs.size());
    for (const auto& x : xs) {
        auto p = split_xattr_name(x.name);
        out.push_back({p.index, p.prefix, x.value});
    }
    // The order the kernel's sorted search in xattr blocks expects: index, name length, name.
    std::sort(out.begin(), out.end(), [](const packed_xattr& a, const packed_xattr& b) {
        if (a.index != b.index) return a.index < b.index;
        if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
        return a.name < b.name;
    });
    return out;
}

inline std::size_t xattr_entry_size(const packed_xattr& x) noexcept {
    return sizeof(xattr_entry) + round4(x.name.size());
}

// Writes entries [first, last) into `area` (entries from `entries_at`, values packed downward from
// the end; offsets relative to `base`). The caller checked that they fit.
inline void write_xattrs(std::span<std::byte> area, std::size_t entries_at, std::size_t base,
                         const packed_xattr* first, const packed_xattr* last) {
    std::size_t e = entries_at;
    std::size_t v = area.size();
    for (const auto* x = first; x != last; ++x) {
        std::size_t offs = 0;
        if (!x->value.empty()) {
            v -= round4(x->value.size());
            std::memcpy(area.data() + v, x->value.data(), x->value.size());
            offs = v - base;
        }
        // SAFETY: the caller's size check puts e + entry size below v.
        auto* ent = reinterpret_cast<xattr_entry*>(area.data() + e);
        ent->name_len = std::byte(x->name.size());
        ent->name_index = std::byte(x->index);
        ent->value_offs.set(std::uint16_t(offs));
        ent->value_inum.set(0);
        ent->value_size.set(std::uint32_t(x->value.size()));
        ent->hash.set(xattr_entry_hash(x->name, as_bytes(x->value)));
        std::memcpy(area.data() + e + sizeof(xattr_entry), x->name.data(), x->name.size());
        e += xattr_entry_size(*x);
    }
}

inline constexpr std::size_t inode_xattr_space = inode_size - sizeof(inode); // 96 bytes

// How many of the sorted xattrs go in the inode (the rest go to the block), and whether the
// block is needed and big enough.
struct xattr_plan {
    std::size_t in_inode = 0;
    bool block = false;
};

inline bool plan_xattrs(const std::vector<packed_xattr>& xs, xattr_plan& plan) {
    std::size_t used = 4 + 4; // magic + terminator
    std::size_t i = 0;
    for (; i < xs.size(); ++i) {
        std::size_t need = xattr_entry_size(xs[i]) + round4(xs[i].value.size());
        if (used + need > inode_xattr_space) break;
        used += need;
    }
    plan.in_inode = i;
    plan.block = i < xs.size();
    if (!plan.block) return true;
    std::size_t bused = sizeof(xattr_block_header) + 4;
    for (; i < xs.size(); ++i) bused += xattr_entry_size(xs[i]) + round4(xs[i].value.size());
    return bused <= block_size;
}

inline std::error_code check_xattrs(const std::vector<xattr>& xs) {
    for (const auto& x : xs) {
        auto p = split_xattr_name(x.name);
        // system.* holds POSIX ACLs and inline data, whose on-disk forms differ from their
        // xattr values; cz does not write them.
        if (p.index == 0 || p.index == 7 || p.prefix.empty() || p.prefix.size() > max_name)
            return errc::invalid_xattr;
        if (x.value.size() > block_size) return errc::invalid_xattr;
    }
    for (std::size_t i = 0; i < xs.size(); ++i)
        for (std::size_t j = i + 1; j < xs.size(); ++j)
            if (xs[i].name == xs[j].name) return errc::invalid_xattr;
    auto sorted = sort_xattrs(xs);
    xattr_plan plan;
    if (!plan_xattrs(sorted, plan)) return errc::invalid_xattr;
    return {};
}

// A directory entry to lay out.
struct dentry {
    std::string_view name;
    std::uint32_t ino;
    std::uint8_t type;
    std::uint32_t hash;
};

inline std::size_t dirent_size(std::size_t name_len) noexcept { return 8 + round4(name_len); }

inline void put_dirent(std::byte* blk, std::size_t at, std::uint32_t ino, std::size_t rec_len,
                       std::string_view name, std::uint8_t type) {
    // SAFETY: callers keep at + rec_len <= block_size and 8 + name.size() <= rec_len.
    auto* d = reinterpret_cast<dirent_header*>(blk + at);
    d->inode.set(ino);
    d->rec_len.set(std::uint16_t(rec_len));
    d->name_len = std::byte(name.size());
    d->file_type = std::byte(type);
    std::memcpy(blk + at + 8, name.data(), name.size());
}

// Packs entries into leaf blocks (ordinary directory blocks). Returns each block's first entry
// index; with `keep_hash_groups`, names with equal hashes stay in one block when they can.
inline std::vector<std::size_t> pack_leaves(const std::vector<dentry>& es, bool keep_hash_groups) {
    std::vector<std::size_t> starts;
    std::size_t used = block_size;
    for (std::size_t i = 0; i < es.size(); ++i) {
        std::size_t need = dirent_size(es[i].name.size());
        if (used + need > block_size) {
            std::size_t start = i;
            if (keep_hash_groups && !starts.empty()) {
                // Move the run of equal hashes that ends the previous block into this one, as
                // long as the previous block keeps at least one entry.
                std::size_t j = i;
                while (j > starts.back() + 1 && es[j - 1].hash == es[i].hash) --j;
                if (j != i && es[j - 1].hash != es[i].hash) start = j;
                used = 0;
                for (std::size_t k = start; k < i; ++k) used += dirent_size(es[k].name.size());
                if (used + need > block_size) { // a group larger than a block: let it straddle
                    start = i;
                    used = 0;
                }
            } else {
                used = 0;
            }
            starts.push_back(start);
        }
        used += need;
    }
    return starts;
}

inline constexpr std::size_t dx_root_limit = (block_size - dx_root_entries_offset) / 8; // 508
inline constexpr std::size_t dx_node_limit = (block_size - dx_node_entries_offset) / 8; // 511

// The blocks of a directory: a single linear block, or an htree (dx_root, optional index level,
// leaves). `es` is sorted by name on entry. Returns the number of blocks; with `out`, also writes
// them (out->size() becomes blocks * block_size).
inline std::size_t layout_directory(std::vector<dentry>& es, std::uint32_t self,
                                    std::uint32_t parent, byte_buffer* out, std::error_code& ec) {
    std::size_t linear = dirent_size(1) + dirent_size(2);
    for (const auto& e : es) linear += dirent_size(e.name.size());
    if (linear <= block_size) {
        if (out) {
            out->assign(block_size, std::byte{0});
            std::byte* b = out->data();
            put_dirent(b, 0, self, 12, ".", ft_directory);
            std::size_t at = 12;
            std::size_t rec = es.empty() ? block_size - at : 12;
            put_dirent(b, at, parent, rec, "..", ft_directory);
            at += rec;
            for (std::size_t i = 0; i < es.size(); ++i) {
                std::size_t r = i + 1 == es.size() ? block_size - at : dirent_size(es[i].name.size());
                put_dirent(b, at, es[i].ino, r, es[i].name, es[i].type);
                at += r;
            }
        }
        return 1;
    }
    for (auto& e : es) e.hash = dx_legacy_hash(e.name);
    std::stable_sort(es.begin(), es.end(),
                     [](const dentry& a, const dentry& b) { return a.hash < b.hash; });
    auto starts = pack_leaves(es, true);
    std::size_t leaves = starts.size();
    std::size_t nodes = 0;
    if (leaves > dx_root_limit) {
        nodes = (leaves + dx_node_limit - 1) / dx_node_limit;
        if (nodes > dx_root_limit) { // would need the largedir feature (3 levels)
            ec = errc::no_space;
            return 0;
        }
    }
    std::size_t total = 1 + nodes + leaves;
    if (!out) return total;
    out->assign(total * block_size, std::byte{0});
    std::byte* base = out->data();
    // Leaf i is directory block 1 + nodes + i; its index hash is its first name's hash, with the
    // low (collision) bit set when the previous leaf ends in the same hash.
    auto leaf_hash = [&](std::size_t i) -> std::uint32_t {
        std::uint32_t h = es[starts[i]].hash;
        if (i > 0 && es[starts[i] - 1].hash == h) h |= 1;
        return h;
    };
    for (std::size_t i = 0; i < leaves; ++i) {
        std::byte* b = base + (1 + nodes + i) * block_size;
        std::size_t end = i + 1 < leaves ? starts[i + 1] : es.size();
        std::size_t at = 0;
        for (std::size_t k = starts[i]; k < end; ++k) {
            std::size_t r = k + 1 == end ? block_size - at : dirent_size(es[k].name.size());
            put_dirent(b, at, es[k].ino, r, es[k].name, es[k].type);
            at += r;
        }
    }
    // dx_root: ".", ".." spanning the block, dx_root_info, then the count/limit and entries.
    std::byte* root = base;
    put_dirent(root, 0, self, 12, ".", ft_directory);
    put_dirent(root, 12, parent, block_size - 12, "..", ft_directory);
    // SAFETY: 24 + 8 + 4 bytes lie inside the 4096-byte block.
    auto* info = reinterpret_cast<dx_root_info*>(root + 24);
    info->hash_version = std::byte(hash_legacy);
    info->info_length = std::byte(8);
    info->indirect_levels = std::byte(nodes ? 1 : 0);
    auto fill = [](std::byte* at, std::size_t limit, std::size_t count, auto&& entry) {
        // SAFETY: count <= limit entries of 8 bytes fit after `at` in the block.
        auto* cl = reinterpret_cast<dx_countlimit*>(at);
        cl->limit.set(std::uint16_t(limit));
        cl->count.set(std::uint16_t(count));
        for (std::size_t i = 0; i < count; ++i) {
            auto [hash, block] = entry(i);
            auto* de = reinterpret_cast<dx_entry*>(at + 8 * i);
            if (i > 0) de->hash.set(hash);
            de->block.set(block);
        }
    };
    if (nodes == 0) {
        fill(root + dx_root_entries_offset, dx_root_limit, leaves, [&](std::size_t i) {
            return std::pair{leaf_hash(i), std::uint32_t(1 + i)};
        });
    } else {
        fill(root + dx_root_entries_offset, dx_root_limit, nodes, [&](std::size_t n) {
            return std::pair{leaf_hash(n * dx_node_limit), std::uint32_t(1 + n)};
        });
        for (std::size_t n = 0; n < nodes; ++n) {
            std::byte* b = base + (1 + n) * block_size;
            put_dirent(b, 0, 0, block_size, "", 0);
            std::size_t first = n * dx_node_limit;
            std::size_t count = std::min(dx_node_limit, leaves - first);
            fill(b + dx_node_entries_offset, dx_node_limit, count, [&](std::size_t i) {
                return std::pair{leaf_hash(first + i), std::uint32_t(1 + nodes + first + i)};
            });
        }
    }
    return total;
}

// Extent tree blocks needed for n extents (0 when they fit in the inode).
inline std::uint64_t extent_tree_blocks(std::uint64_t n) noexcept {
    std::uint64_t total = 0;
    while (n > extents_in_inode) {
        n = (n + extents_per_block - 1) / extents_per_block;
        total += n;
    }
    return total;
}

} // namespace detail

struct formatter::state {
    unique_fd fd;
    format_options opt;
    std::vector<detail::fnode> nodes;
    std::vector<node_id> free_ids;
    std::size_t live = 0;
    std::uint64_t limit_blocks = 0;  // blocks the image may have
    std::uint64_t gdt_reserved = 0;  // blocks reserved for group descriptors
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

    detail::fnode& at(node_id n) { return nodes[n]; }

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
        for (const auto& e : n.extents) freed.emplace_back(e.physical, e.len);
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
            for (auto& [name, child] : *kids) unlink(child);
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
        if (failed || finished) return errc::bad_state;
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
                    std::uint32_t add = std::uint32_t(std::min<std::uint64_t>(count, max_extent_len - last.len));
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
        if (lb >= e.logical && lb < std::uint64_t(e.logical) + e.len) return e.physical + (lb - e.logical);
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
            ssize_t r = ::pread(fd.get(), tail.data(), block_size, off_t(phys * block_size));
            if (r != ssize_t(block_size)) return r < 0 ? last_system_error() : make_error_code(errc::corrupt_image);
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
            while (j < nblocks && !detail::all_zero(p + j * block_size, block_size)) ++j;
            std::uint64_t phys = mapped(n, lb + i);
            std::size_t count = j - i;
            if (phys != 0) count = 1; // rewriting the previously flushed tail block
            else if (auto ec = map_new(n, std::uint32_t(lb + i), count, phys)) return ec;
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
        if (length > max_file_size() || offset > max_file_size() - length) return errc::file_too_large;
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
            std::size_t k = std::size_t(std::min<std::uint64_t>((end - pos) / block_size * block_size, buf.size()));
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

    void finish(std::error_code& ec);
};

CZ_DECL formatter::formatter(unique_fd out, format_options options) : s_(std::make_unique<state>()) {
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
    if (!s.init_error && (!s.fd || ::ftruncate(s.fd.get(), 0) != 0))
        s.init_error = s.fd ? last_system_error() : std::make_error_code(std::errc::bad_file_descriptor);
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

CZ_DECL file_type formatter::type(node_id n) const noexcept { return s_->nodes[n].type; }

CZ_DECL node_id formatter::parent(node_id dir) const noexcept { return s_->nodes[dir].parent; }

CZ_DECL std::string formatter::symlink_target(node_id n) const { return s_->nodes[n].target; }

CZ_DECL const metadata& formatter::get_metadata(node_id n) const noexcept { return s_->nodes[n].md; }

CZ_DECL std::uint64_t formatter::file_size(node_id n) const noexcept { return s_->nodes[n].size; }

CZ_DECL std::vector<std::string> formatter::children(node_id dir) const {
    std::vector<std::string> out;
    if (!s_->usable(dir) || !s_->nodes[dir].children) return out;
    for (const auto& [name, id] : *s_->nodes[dir].children) out.push_back(name);
    return out;
}

CZ_DECL node_id formatter::make_directory(node_id parent, std::string_view name,
                                          const metadata& md, std::error_code& ec) {
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
        ec = errc::bad_state;
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
    if (!s_->usable(n) || s_->nodes[n].type != file_type::regular) ec = errc::not_found;
    else if (size > state::max_file_size()) ec = errc::file_too_large;
    else if (size < s_->nodes[n].size) ec = errc::bad_state;
    else s_->nodes[n].size = size;
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
                                       const metadata& md, std::uint32_t major,
                                       std::uint32_t minor, std::error_code& ec) {
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
    for (auto& [name, child] : kids) s_->unlink(child);
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

CZ_DECL std::size_t formatter::node_count() const noexcept { return s_->live; }

CZ_DECL void formatter::finish(std::error_code& ec) {
    ec = {};
    if (s_->failed || s_->finished) {
        ec = s_->init_error ? s_->init_error : make_error_code(errc::bad_state);
        return;
    }
    s_->finish(ec);
    if (ec) s_->failed = true;
    s_->finished = true;
}

// A sequential writer for the metadata region: buffers and writes in large pwrites.
namespace detail {
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

inline void set_bits(std::byte* bitmap, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i) bitmap[i / 8] |= std::byte(1u << (i % 8));
}
inline void clear_bits(std::byte* bitmap, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i) bitmap[i / 8] &= ~std::byte(1u << (i % 8));
}
} // namespace detail

inline void formatter::state::finish(std::error_code& ec) {
    using namespace detail;
    if ((ec = flush_tail())) return;
    cur = no_node;
    const std::uint64_t data_end = next_block;

    // lost+found: e2fsck wants it; recreate it if a layer removed it.
    if (auto it = nodes[0].children->find("lost+found"); it == nodes[0].children->end()) {
        metadata lf;
        lf.mode = 0700;
        lf.atime = lf.mtime = lf.ctime = lf.crtime = opt.creation_time;
        insert(0, "lost+found", new_node(file_type::directory, lf));
    }

    // Inode numbers: the root is 2, the rest from 11 in breadth-first order, so a directory's
    // entries are numbered together.
    std::vector<node_id> order; // inode 11 + i
    nodes[0].ino = root_inode;
    {
        std::vector<node_id> queue{0};
        for (std::size_t q = 0; q < queue.size(); ++q) {
            for (const auto& [name, child] : *nodes[queue[q]].children) {
                auto& c = nodes[child];
                if (c.ino != 0) continue;
                if (order.size() + first_inode > 0xfffffff0u) {
                    ec = errc::no_space;
                    return;
                }
                c.ino = std::uint32_t(first_inode + order.size());
                order.push_back(child);
                if (c.type == file_type::directory) queue.push_back(child);
            }
        }
    }
    const std::uint64_t last_ino = first_inode - 1 + order.size();

    // Pass 1: count the blocks directories, extent trees and xattr blocks need.
    auto dir_entries = [&](node_id id) {
        std::vector<dentry> es;
        es.reserve(nodes[id].children->size());
        for (const auto& [name, child] : *nodes[id].children)
            es.push_back({name, nodes[child].ino, dirent_type(nodes[child].type), 0});
        return es;
    };
    std::uint64_t var_blocks = 0;
    std::uint64_t dirs = 0;
    auto count_node = [&](node_id id) -> bool {
        auto& n = nodes[id];
        std::uint64_t nextents = n.extents.size();
        if (n.type == file_type::directory) {
            ++dirs;
            auto es = dir_entries(id);
            std::size_t nb = layout_directory(es, 0, 0, nullptr, ec);
            if (ec) return false;
            var_blocks += nb;
            nextents = (nb + max_extent_len - 1) / max_extent_len;
        }
        var_blocks += extent_tree_blocks(nextents);
        if (!n.md.xattrs.empty()) {
            auto xs = sort_xattrs(n.md.xattrs);
            xattr_plan plan;
            plan_xattrs(xs, plan);
            var_blocks += plan.block ? 1 : 0;
        }
        return true;
    };
    if (!count_node(0)) return;
    for (node_id id : order)
        if (!count_node(id)) return;

    // Geometry: groups and inodes per group, so that everything fits.
    const std::uint64_t inodes_needed = last_ino + opt.free_inodes;
    std::uint64_t groups = 0, ipg = 0, blocks = 0;
    auto itable_blocks = [](std::uint64_t ipg_) { return ipg_ * inode_size / block_size; };
    auto ipg_for = [&](std::uint64_t g) {
        std::uint64_t need = (inodes_needed + g - 1) / g;
        return std::max<std::uint64_t>(16, (need + 15) / 16 * 16);
    };
    const std::uint64_t meta_start = data_end;
    if (opt.size != 0) {
        blocks = limit_blocks;
        groups = (blocks + blocks_per_group - 1) / blocks_per_group;
        ipg = ipg_for(groups);
        // Leave room for inodes a later writer may add (mke2fs's one inode per 16 KiB), when it
        // fits.
        std::uint64_t roomy = std::min<std::uint64_t>(
            blocks_per_group / 2, ((blocks * block_size / 16384 + groups - 1) / groups + 15) / 16 * 16);
        std::uint64_t base = meta_start + var_blocks + groups * 2;
        if (roomy > ipg && base + groups * itable_blocks(roomy) <= blocks) ipg = roomy;
        if (ipg > blocks_per_group || base + groups * itable_blocks(ipg) > blocks) {
            ec = errc::no_space;
            return;
        }
    } else {
        groups = 1;
        for (;;) {
            ipg = ipg_for(groups);
            if (ipg > blocks_per_group) {
                ++groups;
                continue;
            }
            std::uint64_t free_blocks = (opt.free_bytes + block_size - 1) / block_size;
            blocks = meta_start + var_blocks + groups * (2 + itable_blocks(ipg)) + free_blocks;
            std::uint64_t need = (blocks + blocks_per_group - 1) / blocks_per_group;
            if (need <= groups) break;
            groups = need;
        }
        // More groups than the blocks need (for their inodes): every group gets blocks, the last
        // at least 64.
        if (groups > 1) blocks = std::max<std::uint64_t>(blocks, (groups - 1) * blocks_per_group + 64);
        if (blocks > limit_blocks) {
            ec = errc::no_space;
            return;
        }
    }
    if (groups * ipg > 0xffffffffu || (groups * sizeof(group_desc) + block_size - 1) / block_size > gdt_reserved) {
        ec = errc::no_space;
        return;
    }
    const std::uint64_t gdt_blocks = (groups * sizeof(group_desc) + block_size - 1) / block_size;
    const std::uint64_t itb = itable_blocks(ipg);
    const std::uint64_t bb_start = meta_start + var_blocks;
    const std::uint64_t ib_start = bb_start + groups;
    const std::uint64_t it_start = ib_start + groups;
    const std::uint64_t meta_end = it_start + groups * itb;

    // Pass 2: write the variable metadata and the inode tables.
    appender app{fd.get(), meta_start, {}, 0};
    byte_buffer table(ipg * inode_size);
    std::uint64_t table_group = 0;
    std::uint64_t table_used = 0; // bytes of `table` holding inodes
    std::vector<std::uint32_t> used_dirs(groups, 0);
    byte_buffer scratch;

    auto flush_table = [&]() -> std::error_code {
        if (table_used == 0) return {};
        auto e = pwrite_all(fd.get(), table.data(), table_used,
                            (it_start + table_group * itb) * block_size);
        std::fill(table.begin(), table.begin() + std::ptrdiff_t(table_used), std::byte{0});
        table_used = 0;
        return e;
    };

    // Writes the extent tree of `runs` into the inode's i_block and, for more than 4 extents,
    // into tree blocks appended to the metadata region. Returns the tree blocks written.
    auto write_extents = [&](const std::vector<extent_run>& runs, inode& ino,
                             std::uint64_t& tree_blocks) -> std::error_code {
        tree_blocks = 0;
        // Level 0: the extents themselves, as 12-byte entries; each level up indexes the one below.
        struct entry {
            std::uint32_t logical;
            std::uint64_t target; // physical start (leaves) or child block (index)
            std::uint32_t len;
        };
        std::vector<entry> level;
        level.reserve(runs.size());
        for (const auto& r : runs) level.push_back({r.logical, r.physical, r.len});
        std::uint16_t depth = 0;
        auto put_entry = [&](std::byte* at, const entry& e) {
            if (depth == 0) {
                // SAFETY: `at` is one of the entry slots after a header, inside the block.
                auto* l = reinterpret_cast<extent_leaf*>(at);
                l->logical.set(e.logical);
                l->len.set(std::uint16_t(e.len));
                l->start_hi.set(std::uint16_t(e.target >> 32));
                l->start_lo.set(std::uint32_t(e.target));
            } else {
                auto* x = reinterpret_cast<extent_index*>(at);
                x->logical.set(e.logical);
                x->leaf_lo.set(std::uint32_t(e.target));
                x->leaf_hi.set(std::uint16_t(e.target >> 32));
            }
        };
        while (level.size() > extents_in_inode) {
            std::vector<entry> up;
            std::size_t nblocks = (level.size() + extents_per_block - 1) / extents_per_block;
            scratch.assign(nblocks * block_size, std::byte{0});
            for (std::size_t b = 0; b < nblocks; ++b) {
                std::byte* blk = scratch.data() + b * block_size;
                std::size_t first = b * extents_per_block;
                std::size_t count = std::min<std::size_t>(extents_per_block, level.size() - first);
                // SAFETY: the header is the first 12 bytes of the block.
                auto* h = reinterpret_cast<extent_header*>(blk);
                h->magic.set(extent_magic);
                h->entries.set(std::uint16_t(count));
                h->max.set(extents_per_block);
                h->depth.set(depth);
                for (std::size_t i = 0; i < count; ++i) put_entry(blk + 12 + 12 * i, level[first + i]);
                up.push_back({level[first].logical, app.block + b, 0});
            }
            if (auto e = app.put(scratch.data(), nblocks)) return e;
            tree_blocks += nblocks;
            level = std::move(up);
            ++depth;
        }
        // SAFETY: i_block is 60 bytes: a 12-byte header and 4 entries.
        auto* h = reinterpret_cast<extent_header*>(ino.block.data());
        h->magic.set(extent_magic);
        h->entries.set(std::uint16_t(level.size()));
        h->max.set(extents_in_inode);
        h->depth.set(depth);
        for (std::size_t i = 0; i < level.size(); ++i) put_entry(ino.block.data() + 12 + 12 * i, level[i]);
        return {};
    };

    auto emit = [&](node_id id) -> std::error_code {
        auto& n = nodes[id];
        std::uint64_t group = (n.ino - 1) / ipg;
        if (group != table_group) {
            if (auto e = flush_table()) return e;
            table_group = group;
        }
        std::size_t slot = std::size_t((n.ino - 1) % ipg) * inode_size;
        table_used = std::max<std::uint64_t>(table_used, slot + inode_size);
        std::byte* raw = table.data() + slot;
        // SAFETY: slot + 256 <= table.size() (ino - 1 < groups * ipg); inode is 160 bytes.
        auto& ino = *reinterpret_cast<inode*>(raw);
        const auto& md = n.md;
        ino.mode.set(std::uint16_t(type_bits(n.type) | (md.mode & 07777)));
        ino.uid.set(std::uint16_t(md.uid));
        ino.uid_high.set(std::uint16_t(md.uid >> 16));
        ino.gid.set(std::uint16_t(md.gid));
        ino.gid_high.set(std::uint16_t(md.gid >> 16));
        encode_time(md.atime, ino.atime, &ino.atime_extra);
        encode_time(md.mtime, ino.mtime, &ino.mtime_extra);
        encode_time(md.ctime, ino.ctime, &ino.ctime_extra);
        encode_time(md.crtime, ino.crtime, &ino.crtime_extra);
        ino.extra_isize.set(extra_isize);
        std::uint64_t blocks_used = 0;
        std::uint64_t size = n.size;
        std::uint32_t flags = 0;
        std::uint32_t links = n.links;
        std::uint64_t tree = 0;
        switch (n.type) {
        case file_type::directory: {
            ++used_dirs[group];
            std::uint32_t subdirs = 0;
            for (const auto& [name, child] : *n.children)
                if (nodes[child].type == file_type::directory) ++subdirs;
            links = 2 + subdirs;
            if (links >= link_max) links = 1; // dir_nlink: "many"
            auto es = dir_entries(id);
            std::uint32_t parent_ino = nodes[n.parent].ino;
            std::error_code lec;
            std::size_t nb = layout_directory(es, n.ino, parent_ino, &scratch, lec);
            if (lec) return lec;
            if (nb > 1) flags |= inode_flag_index;
            std::uint64_t first = app.block;
            byte_buffer dirblocks = std::move(scratch);
            if (auto e = app.put(dirblocks.data(), nb)) return e;
            std::vector<extent_run> runs;
            for (std::uint64_t done = 0; done < nb;) {
                std::uint32_t len = std::uint32_t(std::min<std::uint64_t>(nb - done, max_extent_len));
                runs.push_back({std::uint32_t(done), len, first + done});
                done += len;
            }
            size = nb * block_size;
            blocks_used = nb;
            flags |= inode_flag_extents;
            if (auto e = write_extents(runs, ino, tree)) return e;
            break;
        }
        case file_type::regular:
            flags |= inode_flag_extents;
            for (const auto& r : n.extents) blocks_used += r.len;
            if (auto e = write_extents(n.extents, ino, tree)) return e;
            break;
        case file_type::symlink:
            if (n.target.size() < 60) {
                std::memcpy(ino.block.data(), n.target.data(), n.target.size());
            } else {
                flags |= inode_flag_extents;
                blocks_used = 1;
                if (auto e = write_extents(n.extents, ino, tree)) return e;
            }
            break;
        case file_type::char_device:
        case file_type::block_device:
            if (n.major < 256 && n.minor < 256) {
                store_le<std::uint32_t>(ino.block.data(), (n.major << 8) | n.minor);
            } else {
                store_le<std::uint32_t>(ino.block.data() + 4,
                                        (n.minor & 0xff) | (n.major << 8) | ((n.minor & ~0xffu) << 12));
            }
            break;
        case file_type::fifo:
        case file_type::socket: break;
        }
        blocks_used += tree;
        // Xattrs: as many as fit in the inode, the rest in one block.
        if (!md.xattrs.empty()) {
            auto xs = sort_xattrs(md.xattrs);
            xattr_plan plan;
            plan_xattrs(xs, plan);
            if (plan.in_inode > 0) {
                std::span<std::byte> area(raw + sizeof(inode), inode_xattr_space);
                store_le<std::uint32_t>(area.data(), xattr_magic);
                write_xattrs(area, 4, 4, xs.data(), xs.data() + plan.in_inode);
            }
            if (plan.block) {
                byte_buffer blk(block_size);
                // SAFETY: the 32-byte header at the start of the block.
                auto* h = reinterpret_cast<xattr_block_header*>(blk.data());
                h->magic.set(xattr_magic);
                h->refcount.set(1);
                h->blocks.set(1);
                write_xattrs(blk, sizeof(xattr_block_header), 0, xs.data() + plan.in_inode,
                             xs.data() + xs.size());
                std::uint32_t hash = 0;
                for (auto* x = xs.data() + plan.in_inode; x != xs.data() + xs.size(); ++x)
                    hash = (hash << 16) ^ (hash >> 16) ^ xattr_entry_hash(x->name, as_bytes(x->value));
                h->hash.set(hash);
                ino.file_acl_lo.set(std::uint32_t(app.block));
                if (auto e = app.put(blk.data(), 1)) return e;
                blocks_used += 1;
            }
        }
        ino.size_lo.set(std::uint32_t(size));
        ino.size_high.set(std::uint32_t(size >> 32));
        ino.links_count.set(std::uint16_t(links));
        std::uint64_t sectors = blocks_used * (block_size / 512);
        ino.blocks_lo.set(std::uint32_t(sectors));
        ino.blocks_high.set(std::uint16_t(sectors >> 32));
        ino.flags.set(flags);
        return {};
    };

    if ((ec = emit(0))) return;
    for (node_id id : order)
        if ((ec = emit(id))) return;
    if ((ec = flush_table())) return;
    if ((ec = app.flush())) return;
    if (app.block != bb_start) { // pass 1 and pass 2 disagree: a bug, never silently corrupt
        ec = cz::errc::invalid_argument;
        return;
    }

    // Bitmaps and group descriptors.
    std::sort(freed.begin(), freed.end());
    byte_buffer gdt(gdt_blocks * block_size);
    byte_buffer bitmap(block_size);
    std::uint64_t total_free_blocks = 0, total_free_inodes = 0;
    std::size_t fi = 0; // first freed range that may touch the current group
    for (std::uint64_t g = 0; g < groups; ++g) {
        std::uint64_t first = g * blocks_per_group;
        std::uint64_t last = std::min<std::uint64_t>(first + blocks_per_group, blocks);
        std::fill(bitmap.begin(), bitmap.end(), std::byte{0});
        auto mark = [&](std::uint64_t a, std::uint64_t b) { // used: [a, b)
            a = std::max(a, first);
            b = std::min(b, last);
            if (a < b) set_bits(bitmap.data(), a - first, b - first);
        };
        mark(0, 1 + gdt_blocks);
        mark(data_start, data_end);
        while (fi < freed.size() && freed[fi].first + freed[fi].second <= first) ++fi;
        for (std::size_t k = fi; k < freed.size() && freed[k].first < last; ++k) {
            std::uint64_t a = std::max(freed[k].first, first);
            std::uint64_t b = std::min(freed[k].first + freed[k].second, last);
            if (a < b) clear_bits(bitmap.data(), a - first, b - first);
        }
        mark(meta_start, meta_end);
        std::uint64_t used = 0;
        for (std::uint64_t i = 0; i < last - first; ++i)
            used += (std::to_integer<unsigned>(bitmap[i / 8]) >> (i % 8)) & 1;
        std::uint64_t free_b = (last - first) - used;
        set_bits(bitmap.data(), last - first, blocks_per_group); // padding past the end
        if ((ec = pwrite_all(fd.get(), bitmap.data(), block_size, (bb_start + g) * block_size))) return;

        std::fill(bitmap.begin(), bitmap.end(), std::byte{0});
        std::uint64_t ifirst = g * ipg + 1;
        std::uint64_t ilast = ifirst + ipg; // exclusive
        std::uint64_t iused = last_ino >= ifirst ? std::min(last_ino + 1, ilast) - ifirst : 0;
        set_bits(bitmap.data(), 0, iused);
        set_bits(bitmap.data(), ipg, block_size * 8);
        if ((ec = pwrite_all(fd.get(), bitmap.data(), block_size, (ib_start + g) * block_size))) return;

        // SAFETY: g < groups and gdt holds groups * 32 bytes.
        auto* gd = reinterpret_cast<group_desc*>(gdt.data() + g * sizeof(group_desc));
        gd->block_bitmap_lo.set(std::uint32_t(bb_start + g));
        gd->inode_bitmap_lo.set(std::uint32_t(ib_start + g));
        gd->inode_table_lo.set(std::uint32_t(it_start + g * itb));
        gd->free_blocks_count_lo.set(std::uint16_t(free_b));
        gd->free_inodes_count_lo.set(std::uint16_t(ipg - iused));
        gd->used_dirs_count_lo.set(std::uint16_t(used_dirs[g]));
        total_free_blocks += free_b;
        total_free_inodes += ipg - iused;
    }
    if ((ec = pwrite_all(fd.get(), gdt.data(), gdt.size(), block_size))) return;

    byte_buffer sbb(1024);
    // SAFETY: sbb is exactly sizeof(superblock) bytes.
    auto& sb = *reinterpret_cast<superblock*>(sbb.data());
    sb.inodes_count.set(std::uint32_t(groups * ipg));
    sb.blocks_count_lo.set(std::uint32_t(blocks));
    sb.free_blocks_count_lo.set(std::uint32_t(total_free_blocks));
    sb.free_inodes_count.set(std::uint32_t(total_free_inodes));
    sb.first_data_block.set(0);
    sb.log_block_size.set(log_block_size);
    sb.log_cluster_size.set(log_block_size);
    sb.blocks_per_group.set(blocks_per_group);
    sb.clusters_per_group.set(blocks_per_group);
    sb.inodes_per_group.set(std::uint32_t(ipg));
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
    std::memcpy(sb.volume_name.data(), opt.label.data(), std::min<std::size_t>(opt.label.size(), 16));
    // A fixed hash seed keeps images reproducible; the legacy hash does not use it anyway.
    for (std::size_t i = 0; i < 4; ++i) sb.hash_seed[i].set(0x9e3779b9u * std::uint32_t(i + 1));
    sb.def_hash_version = std::byte(hash_legacy);
    sb.desc_size.set(0);
    sb.min_extra_isize.set(extra_isize);
    sb.want_extra_isize.set(extra_isize);
    sb.flags.set(sb_flags_unsigned_hash);
    sb.log_groups_per_flex = std::byte(31);
    // backup_bgs stay 0: sparse_super2 with no backup superblocks.
    if ((ec = pwrite_all(fd.get(), sbb.data(), sbb.size(), superblock_offset))) return;
    if (::ftruncate(fd.get(), off_t(blocks * block_size)) != 0) ec = last_system_error();
}

} // namespace cz::ext4
