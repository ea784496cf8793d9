// How the formatter lays out a node's extended attributes: in the inode first, the rest in one
// xattr block.
//
// Primer (fs/ext4/xattr.h, Documentation/filesystems/ext4/attributes.rst): an xattr area holds
// entries growing up from its start (name index and length, value offset and size, hash, then
// the name without its prefix, padded to 4 bytes), ended by 4 zero bytes, and the values packed
// downward from its end. The in-inode area is the 96 bytes after the inode's fixed fields and
// starts with a 4-byte magic; value offsets count from the first entry. An xattr block starts
// with a 32-byte header (magic, refcount, block count, a hash over its entries' hashes); value
// offsets count from the block's start. Entries are sorted by (name index, name length, name),
// the order the kernel's search expects.
#pragma once

#include <cz/ext4/formatter.hpp>
#include <cz/ext4/impl/write_helpers.ipp>
#include <cz/ext4/layout.hpp>

#include <algorithm>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace cz::ext4::detail {

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
    for (; i < xs.size(); ++i)
        bused += xattr_entry_size(xs[i]) + round4(xs[i].value.size());
    return bused <= block_size;
}

// Whether a node may carry `xs`: known namespaces, sizes that fit, no name twice.
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

// Blocks the xattrs `xs` (checked by check_xattrs) take outside the inode: 0 or 1.
inline std::uint64_t xattr_blocks(const std::vector<xattr>& xs) {
    if (xs.empty()) return 0;
    xattr_plan plan;
    plan_xattrs(sort_xattrs(xs), plan);
    return plan.block ? 1 : 0;
}

// The in-inode area: `area` is the inode_xattr_space bytes after the inode's fixed fields.
inline void write_inode_xattrs(std::span<std::byte> area, const packed_xattr* first,
                               const packed_xattr* last) {
    store_le<std::uint32_t>(area.data(), xattr_magic);
    write_xattrs(area, 4, 4, first, last);
}

// An xattr block holding [first, last): `block` is block_size bytes, all zero.
inline void write_xattr_block(std::span<std::byte> block, const packed_xattr* first,
                              const packed_xattr* last) {
    // SAFETY: the 32-byte header at the start of the block.
    auto* h = reinterpret_cast<xattr_block_header*>(block.data());
    h->magic.set(xattr_magic);
    h->refcount.set(1);
    h->blocks.set(1);
    write_xattrs(block, sizeof(xattr_block_header), 0, first, last);
    std::uint32_t hash = 0;
    for (auto* x = first; x != last; ++x)
        hash = (hash << 16) ^ (hash >> 16) ^ xattr_entry_hash(x->name, as_bytes(x->value));
    h->hash.set(hash);
}

} // namespace cz::ext4::detail
