// How the formatter lays out a directory's blocks: one linear block when every entry fits, an
// htree otherwise.
//
// Primer (Documentation/filesystems/ext4/directory.rst, fs/ext4/namei.c): a directory entry is
// (inode, rec_len, name_len, file type, name padded to 4 bytes); rec_len spans up to the next
// entry, and the last entry of a block spans to its end. A linear directory is one such block
// starting with "." and "..". An htree directory's block 0 (dx_root) holds "." (12 bytes) and a
// ".." whose rec_len spans the block, then dx_root_info (hash version, indirect levels) and a
// sorted array of (hash, block) pairs whose first slot holds the count and limit instead of a
// hash. The leaves are ordinary entry blocks, each holding the names whose hashes run from its
// index hash up to the next one's; with more leaves than dx_root holds (508), one level of index
// nodes (511 pairs each, looking like a block-long empty entry) sits between. An index hash with
// its low bit set says the previous leaf ends in the same hash (a collision run across leaves).
// cz uses the legacy hash, which needs no seed, so images are reproducible.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/ext4/error.hpp>
#include <cz/ext4/impl/write_helpers.ipp>
#include <cz/ext4/layout.hpp>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cz::ext4::detail {

// A directory entry to lay out.
struct dentry {
    std::string_view name;
    std::uint32_t ino;
    std::uint8_t type;
    std::uint32_t hash;
};

inline std::size_t dirent_size(std::size_t name_len) noexcept {
    return 8 + round4(name_len);
}

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

// Bytes of a linear block holding ".", ".." and `es`.
inline std::size_t linear_size(const std::vector<dentry>& es) noexcept {
    std::size_t size = dirent_size(1) + dirent_size(2);
    for (const auto& e : es)
        size += dirent_size(e.name.size());
    return size;
}

// The single block of a small directory: ".", "..", then `es` in order; the last entry spans
// to the end of the block.
inline void write_linear_block(std::byte* b, const std::vector<dentry>& es, std::uint32_t self,
                               std::uint32_t parent) {
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
                while (j > starts.back() + 1 && es[j - 1].hash == es[i].hash)
                    --j;
                if (j != i && es[j - 1].hash != es[i].hash) start = j;
                used = 0;
                for (std::size_t k = start; k < i; ++k)
                    used += dirent_size(es[k].name.size());
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

// The shape of an htree: where each leaf starts in the hash-sorted entries, and how many index
// nodes sit between dx_root and the leaves (0 when dx_root indexes the leaves itself). Block 0 is
// dx_root, blocks 1..nodes the index nodes, then the leaves in hash order.
struct htree_shape {
    std::vector<std::size_t> starts;
    std::size_t nodes = 0;
    std::size_t leaves() const noexcept { return starts.size(); }
    std::size_t blocks() const noexcept { return 1 + nodes + starts.size(); }
};

// Sorts `es` by hash (names with equal hashes keep their order) and packs them into leaves.
inline htree_shape plan_htree(std::vector<dentry>& es, std::error_code& ec) {
    for (auto& e : es)
        e.hash = dx_legacy_hash(e.name);
    std::stable_sort(es.begin(), es.end(),
                     [](const dentry& a, const dentry& b) { return a.hash < b.hash; });
    htree_shape shape;
    shape.starts = pack_leaves(es, true);
    if (shape.leaves() > dx_root_limit) {
        shape.nodes = (shape.leaves() + dx_node_limit - 1) / dx_node_limit;
        if (shape.nodes > dx_root_limit) // would need the largedir feature (3 levels)
            ec = errc::no_space;
    }
    return shape;
}

// Leaf i's index hash: its first name's hash, with the low (collision) bit set when the previous
// leaf ends in the same hash.
inline std::uint32_t leaf_hash(const std::vector<dentry>& es, const htree_shape& shape,
                               std::size_t i) noexcept {
    std::uint32_t h = es[shape.starts[i]].hash;
    if (i > 0 && es[shape.starts[i] - 1].hash == h) h |= 1;
    return h;
}

// Writes `count` index entries after a count/limit header at `at`; entry(i) gives (hash,
// block). Entry 0's hash slot is the count/limit header itself.
template <class Entry>
void write_dx_entries(std::byte* at, std::size_t limit, std::size_t count, Entry&& entry) {
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
}

// The leaf blocks, from `first_leaf` on.
inline void write_htree_leaves(std::byte* first_leaf, const std::vector<dentry>& es,
                               const htree_shape& shape) {
    for (std::size_t i = 0; i < shape.leaves(); ++i) {
        std::byte* b = first_leaf + i * block_size;
        std::size_t end = i + 1 < shape.leaves() ? shape.starts[i + 1] : es.size();
        std::size_t at = 0;
        for (std::size_t k = shape.starts[i]; k < end; ++k) {
            std::size_t r = k + 1 == end ? block_size - at : dirent_size(es[k].name.size());
            put_dirent(b, at, es[k].ino, r, es[k].name, es[k].type);
            at += r;
        }
    }
}

// dx_root (block 0) and the index nodes (blocks 1..nodes) that point at the leaves.
inline void write_htree_index(std::byte* base, const std::vector<dentry>& es,
                              const htree_shape& shape, std::uint32_t self, std::uint32_t parent) {
    std::byte* root = base;
    put_dirent(root, 0, self, 12, ".", ft_directory);
    put_dirent(root, 12, parent, block_size - 12, "..", ft_directory);
    // SAFETY: 24 + 8 + 4 bytes lie inside the 4096-byte block.
    auto* info = reinterpret_cast<dx_root_info*>(root + 24);
    info->hash_version = std::byte(hash_legacy);
    info->info_length = std::byte(8);
    info->indirect_levels = std::byte(shape.nodes ? 1 : 0);
    const std::size_t leaves = shape.leaves();
    const std::size_t nodes = shape.nodes;
    if (nodes == 0) {
        write_dx_entries(root + dx_root_entries_offset, dx_root_limit, leaves, [&](std::size_t i) {
            return std::pair{leaf_hash(es, shape, i), std::uint32_t(1 + i)};
        });
        return;
    }
    write_dx_entries(root + dx_root_entries_offset, dx_root_limit, nodes, [&](std::size_t n) {
        return std::pair{leaf_hash(es, shape, n * dx_node_limit), std::uint32_t(1 + n)};
    });
    for (std::size_t n = 0; n < nodes; ++n) {
        std::byte* b = base + (1 + n) * block_size;
        put_dirent(b, 0, 0, block_size, "", 0);
        std::size_t first = n * dx_node_limit;
        std::size_t count = std::min(dx_node_limit, leaves - first);
        write_dx_entries(b + dx_node_entries_offset, dx_node_limit, count, [&](std::size_t i) {
            return std::pair{leaf_hash(es, shape, first + i), std::uint32_t(1 + nodes + first + i)};
        });
    }
}

// The blocks of a directory: a single linear block, or an htree (dx_root, optional index level,
// leaves). `es` is sorted by name on entry. Returns the number of blocks; with `out`, also writes
// them (out->size() becomes blocks * block_size).
inline std::size_t layout_directory(std::vector<dentry>& es, std::uint32_t self,
                                    std::uint32_t parent, byte_buffer* out, std::error_code& ec) {
    if (linear_size(es) <= block_size) {
        if (out) {
            out->assign(block_size, std::byte{0});
            write_linear_block(out->data(), es, self, parent);
        }
        return 1;
    }
    htree_shape shape = plan_htree(es, ec);
    if (ec) return 0;
    if (!out) return shape.blocks();
    out->assign(shape.blocks() * block_size, std::byte{0});
    write_htree_leaves(out->data() + (1 + shape.nodes) * block_size, es, shape);
    write_htree_index(out->data(), es, shape, self, parent);
    return shape.blocks();
}

} // namespace cz::ext4::detail
