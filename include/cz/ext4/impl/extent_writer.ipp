// How the formatter writes a file's extent tree.
//
// Primer (Documentation/filesystems/ext4/ifork.rst, fs/ext4/ext4_extents.h): the tree's root is
// the inode's 60-byte i_block: a 12-byte header (magic, entries, max, depth) and 4 entries. At
// depth 0 the entries are extents (logical block, length up to 32768, physical start); above,
// index entries (first logical block, child block) point at blocks holding a header and up to
// 340 entries of the level below. cz builds the tree bottom-up: while a level has more entries
// than the inode holds, it packs them into full blocks, and the blocks' first entries become the
// next level up.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/ext4/impl/write_helpers.ipp>
#include <cz/ext4/layout.hpp>

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <vector>

namespace cz::ext4::detail {

// Consecutive blocks of a file: logical blocks [logical, logical + len) at physical blocks from
// `physical` on.
struct extent_run {
    std::uint32_t logical;
    std::uint32_t len;
    std::uint64_t physical;
};

// Extent tree blocks needed for n extents (0 when they fit in the inode).
inline std::uint64_t extent_tree_blocks(std::uint64_t n) noexcept {
    std::uint64_t total = 0;
    while (n > extents_in_inode) {
        n = (n + extents_per_block - 1) / extents_per_block;
        total += n;
    }
    return total;
}

// One entry of a tree level: an extent (depth 0) or an index entry (above).
struct extent_entry {
    std::uint32_t logical;
    std::uint64_t target; // physical start (extents) or child block (index entries)
    std::uint32_t len;
};

inline void put_extent_header(std::byte* at, std::size_t entries, std::uint16_t max,
                              std::uint16_t depth) {
    // SAFETY: `at` starts a block or i_block; both hold the 12-byte header.
    auto* h = reinterpret_cast<extent_header*>(at);
    h->magic.set(extent_magic);
    h->entries.set(std::uint16_t(entries));
    h->max.set(max);
    h->depth.set(depth);
}

inline void put_extent_entry(std::byte* at, const extent_entry& e, std::uint16_t depth) {
    // SAFETY: `at` is one of the entry slots after a header, inside the block or i_block.
    if (depth == 0) {
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
}

// Writes the extent tree of `runs` into `i_block` (the inode's 60 bytes) and, for more than 4
// extents, into tree blocks appended through `app` (`scratch` is their buffer). `tree_blocks`
// becomes the number of tree blocks written.
inline std::error_code write_extent_tree(const std::vector<extent_run>& runs, std::byte* i_block,
                                         appender& app, byte_buffer& scratch,
                                         std::uint64_t& tree_blocks) {
    tree_blocks = 0;
    std::vector<extent_entry> level;
    level.reserve(runs.size());
    for (const auto& r : runs)
        level.push_back({r.logical, r.physical, r.len});
    std::uint16_t depth = 0;
    while (level.size() > extents_in_inode) {
        std::vector<extent_entry> up;
        std::size_t nblocks = (level.size() + extents_per_block - 1) / extents_per_block;
        scratch.assign(nblocks * block_size, std::byte{0});
        for (std::size_t b = 0; b < nblocks; ++b) {
            std::byte* blk = scratch.data() + b * block_size;
            std::size_t first = b * extents_per_block;
            std::size_t count = std::min<std::size_t>(extents_per_block, level.size() - first);
            put_extent_header(blk, count, extents_per_block, depth);
            for (std::size_t i = 0; i < count; ++i)
                put_extent_entry(blk + 12 + 12 * i, level[first + i], depth);
            up.push_back({level[first].logical, app.block + b, 0});
        }
        if (auto e = app.put(scratch.data(), nblocks)) return e;
        tree_blocks += nblocks;
        level = std::move(up);
        ++depth;
    }
    put_extent_header(i_block, level.size(), extents_in_inode, depth);
    for (std::size_t i = 0; i < level.size(); ++i)
        put_extent_entry(i_block + 12 + 12 * i, level[i], depth);
    return {};
}

} // namespace cz::ext4::detail
