// Out-of-line definitions for cz/ext4/reader.hpp.
#pragma once

#include <cz/ext4/layout.hpp>
#include <cz/ext4/reader.hpp>
#include <cz/core/syscall.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_set>

namespace cz::ext4 {

CZ_DECL image_ref image_ref::memory(bytes_view data) noexcept {
    image_ref r(nullptr, nullptr, data.size());
    r.memory_ = data;
    return r;
}

CZ_DECL void image_ref::read(std::uint64_t offset, mutable_bytes buf, std::error_code& ec) const {
    if (offset > size_ || buf.size() > size_ - offset) {
        ec = errc::corrupt_image;
        return;
    }
    if (!read_) {
        // SAFETY: offset + buf.size() <= size_ == memory_.size(), checked above.
        std::memcpy(buf.data(), memory_.data() + offset, buf.size());
        return;
    }
    if (read_(object_, offset, buf, ec) != buf.size() && !ec) ec = errc::corrupt_image;
}

CZ_DECL fd_image::fd_image(int fd, std::error_code& ec) : fd_(fd) {
    struct stat st {};
    if (sys::fstat(fd, &st) != 0) {
        ec = last_system_error();
        return;
    }
    if (S_ISREG(st.st_mode)) {
        size_ = std::uint64_t(st.st_size);
    } else {
        off_t end = sys::lseek(fd, 0, SEEK_END);
        if (end < 0)
            ec = last_system_error();
        else
            size_ = std::uint64_t(end);
    }
}

CZ_DECL image_ref fd_image::ref() const noexcept {
    return image_ref(
        this,
        [](const void* o, std::uint64_t off, mutable_bytes buf,
           std::error_code& ec) -> std::size_t {
            int fd = static_cast<const fd_image*>(o)->fd_;
            std::size_t done = 0;
            while (done < buf.size()) {
                ssize_t r =
                    sys::pread_some(fd, buf.data() + done, buf.size() - done, off_t(off + done));
                if (r < 0) {
                    ec = last_system_error();
                    return done;
                }
                if (r == 0) break;
                done += std::size_t(r);
            }
            return done;
        },
        size_);
}

struct reader::owned_file {
    unique_fd fd;
    fd_image image;
    owned_file(unique_fd f, std::error_code& ec) : fd(std::move(f)), image(fd.get(), ec) {}
};

CZ_DECL reader reader::open(const std::string& path, std::error_code& ec) {
    ec = {};
    unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        ec = last_system_error();
        return reader();
    }
    std::shared_ptr<const owned_file> file = std::make_shared<owned_file>(std::move(fd), ec);
    if (ec) return reader();
    // The fd_image lives on the heap with the fd, so img_ stays valid when the reader moves.
    reader r(file->image.ref(), ec);
    if (ec) return reader(); // not a half-read superblock
    r.file_ = std::move(file);
    return r;
}

namespace detail {

inline constexpr std::uint32_t reader_incompat_supported =
    incompat_filetype | incompat_recover | incompat_extents | incompat_64bit | incompat_mmp |
    incompat_flex_bg | incompat_csum_seed | incompat_largedir | incompat_inline_data |
    incompat_ea_inode;

// Largest directory, symlink target or xattr block the reader loads into memory.
inline constexpr std::uint64_t max_dir_bytes = std::uint64_t(1) << 30;

inline timestamp decode_time(std::uint32_t lo, const std::byte* extra) {
    timestamp t;
    t.sec = std::int64_t(std::int32_t(lo));
    if (extra) {
        std::uint32_t x = load_le<std::uint32_t>(extra);
        t.sec += std::int64_t(x & 3) << 32;
        t.nsec = x >> 2;
    }
    return t;
}

inline file_type type_of(std::uint16_t mode, bool& ok) {
    ok = true;
    switch (mode & mode_type_mask) {
    case mode_regular:
        return file_type::regular;
    case mode_directory:
        return file_type::directory;
    case mode_symlink:
        return file_type::symlink;
    case mode_chrdev:
        return file_type::char_device;
    case mode_blkdev:
        return file_type::block_device;
    case mode_fifo:
        return file_type::fifo;
    case mode_socket:
        return file_type::socket;
    }
    ok = false;
    return file_type::regular;
}

// Converts an ext4 on-disk ACL (struct ext4_acl_header version 1, short entries for the
// USER_OBJ/GROUP_OBJ/MASK/OTHER tags) to the VFS posix_acl_xattr format (version 2).
inline bool acl_to_vfs(std::string_view disk, std::string& out) {
    if (disk.size() < 4 || load_le<std::uint32_t>(as_bytes(disk).data()) != 1) return false;
    out.assign(4, '\0');
    store_le<std::uint32_t>(reinterpret_cast<std::byte*>(out.data()), 2);
    std::size_t at = 4;
    while (at < disk.size()) {
        if (disk.size() - at < 4) return false;
        const std::byte* p = as_bytes(disk).data() + at;
        std::uint16_t tag = load_le<std::uint16_t>(p);
        std::uint16_t perm = load_le<std::uint16_t>(p + 2);
        std::uint32_t id = 0xffffffffu;
        if (tag == 0x02 || tag == 0x08) { // ACL_USER, ACL_GROUP
            if (disk.size() - at < 8) return false;
            id = load_le<std::uint32_t>(p + 4);
            at += 8;
        } else {
            at += 4;
        }
        std::byte e[8];
        store_le<std::uint16_t>(e, tag);
        store_le<std::uint16_t>(e + 2, perm);
        store_le<std::uint32_t>(e + 4, id);
        out.append(reinterpret_cast<const char*>(e), 8);
    }
    return true;
}

// Parses xattr entries in [begin, end) of `area`; values at `value_base + e_value_offs`.
inline std::error_code parse_xattrs(bytes_view area, std::size_t begin, std::size_t value_base,
                                    std::vector<xattr>& out) {
    std::size_t at = begin;
    for (;;) {
        if (area.size() < at + 4) return errc::corrupt_image;
        if (load_le<std::uint32_t>(area.data() + at) == 0) return {}; // end of entries
        if (area.size() - at < sizeof(xattr_entry)) return errc::corrupt_image;
        // SAFETY: sizeof(xattr_entry) bytes at `at` are inside `area` (checked above).
        const auto* e = reinterpret_cast<const xattr_entry*>(area.data() + at);
        std::size_t name_len = std::to_integer<std::size_t>(e->name_len);
        if (area.size() - at - sizeof(xattr_entry) < name_len) return errc::corrupt_image;
        std::string_view name(reinterpret_cast<const char*>(area.data() + at + sizeof(xattr_entry)),
                              name_len);
        std::uint32_t size = e->value_size.get();
        std::uint32_t offs = e->value_offs.get();
        std::uint8_t index = std::to_integer<std::uint8_t>(e->name_index);
        at += (sizeof(xattr_entry) + name_len + 3) & ~std::size_t(3);
        if (e->value_inum.get() != 0) continue; // value in an EA inode: not read
        if (value_base + offs > area.size() || size > area.size() - value_base - offs)
            return errc::corrupt_image;
        std::string value(reinterpret_cast<const char*>(area.data() + value_base + offs), size);
        std::string full;
        switch (index) {
        case 1:
            full = "user.";
            break;
        case 2:
            full = "system.posix_acl_access";
            break;
        case 3:
            full = "system.posix_acl_default";
            break;
        case 4:
            full = "trusted.";
            break;
        case 6:
            full = "security.";
            break;
        case 7:
            full = "system.";
            break;
        case 8:
            full = "system.richacl";
            break;
        default:
            continue; // unknown namespace
        }
        if (index == 2 || index == 3) {
            std::string vfs;
            if (!acl_to_vfs(value, vfs)) return errc::corrupt_image;
            value = std::move(vfs);
        } else {
            full.append(name);
        }
        out.push_back({std::move(full), std::move(value)});
    }
}

} // namespace detail

CZ_DECL void reader::init(std::error_code& ec) {
    ec = {};
    byte_buffer sbb(sizeof(superblock));
    img_.read(superblock_offset, sbb, ec);
    if (ec) return;
    // SAFETY: sbb holds exactly sizeof(superblock) bytes.
    const auto& sb = *reinterpret_cast<const superblock*>(sbb.data());
    if (sb.magic.get() != super_magic || sb.log_block_size.get() > 6) {
        ec = errc::unsupported_image;
        return;
    }
    info_.block_size = 1024u << sb.log_block_size.get();
    info_.feature_compat = sb.feature_compat.get();
    info_.feature_incompat = sb.feature_incompat.get();
    info_.feature_ro_compat = sb.feature_ro_compat.get();
    if ((info_.feature_incompat & ~detail::reader_incompat_supported) != 0) {
        ec = errc::unsupported_image;
        return;
    }
    sixty_four_ = info_.feature_incompat & incompat_64bit;
    filetype_ = info_.feature_incompat & incompat_filetype;
    unsigned_hash_ = sb.flags.get() & sb_flags_unsigned_hash;
    info_.inode_size = sb.rev_level.get() == 0 ? 128 : sb.inode_size.get();
    info_.blocks_count = sb.blocks_count_lo.get();
    info_.free_blocks = sb.free_blocks_count_lo.get();
    if (sixty_four_) {
        info_.blocks_count |= std::uint64_t(sb.blocks_count_hi.get()) << 32;
        info_.free_blocks |= std::uint64_t(sb.free_blocks_count_hi.get()) << 32;
    }
    info_.inodes_count = sb.inodes_count.get();
    info_.free_inodes = sb.free_inodes_count.get();
    blocks_per_group_ = sb.blocks_per_group.get();
    inodes_per_group_ = sb.inodes_per_group.get();
    first_data_block_ = sb.first_data_block.get();
    desc_size_ = sixty_four_ ? sb.desc_size.get() : 32;
    if (info_.inode_size < 128 || info_.inode_size > info_.block_size ||
        (info_.inode_size & (info_.inode_size - 1)) != 0 || blocks_per_group_ == 0 ||
        inodes_per_group_ == 0 || desc_size_ < 32 || desc_size_ > 1024 ||
        first_data_block_ >= info_.blocks_count) {
        ec = errc::corrupt_image;
        return;
    }
    std::uint64_t groups =
        (info_.blocks_count - first_data_block_ + blocks_per_group_ - 1) / blocks_per_group_;
    std::uint64_t gdt_offset = std::uint64_t(first_data_block_ + 1) * info_.block_size;
    if (groups * desc_size_ > img_.size() || gdt_offset + groups * desc_size_ > img_.size() ||
        std::uint64_t(inodes_per_group_) * groups < info_.inodes_count) {
        ec = errc::corrupt_image;
        return;
    }
    byte_buffer gdt(std::size_t(groups * desc_size_));
    img_.read(gdt_offset, gdt, ec);
    if (ec) return;
    inode_tables_.resize(std::size_t(groups));
    for (std::size_t g = 0; g < groups; ++g) {
        // SAFETY: g * desc_size_ + desc_size_ <= gdt.size(); desc_size_ >= 32.
        const std::byte* d = gdt.data() + g * desc_size_;
        std::uint64_t t = load_le<std::uint32_t>(d + offsetof(group_desc, inode_table_lo));
        if (sixty_four_ && desc_size_ >= 64)
            t |= std::uint64_t(load_le<std::uint32_t>(d + group_desc_inode_table_hi)) << 32;
        inode_tables_[g] = t;
    }
}

CZ_DECL void reader::load_inode(std::uint32_t ino, byte_buffer& raw, std::error_code& ec) const {
    // inodes_per_group_ is 0 when the constructor failed and its error was ignored: every inode
    // is then out of range, never a division by zero.
    if (ino == 0 || ino > info_.inodes_count || inodes_per_group_ == 0) {
        ec = errc::corrupt_image;
        return;
    }
    std::uint64_t g = (ino - 1) / inodes_per_group_;
    std::uint64_t idx = (ino - 1) % inodes_per_group_;
    if (g >= inode_tables_.size()) {
        ec = errc::corrupt_image;
        return;
    }
    raw.resize(info_.inode_size);
    img_.read(inode_tables_[g] * info_.block_size + idx * info_.inode_size, raw, ec);
}

CZ_DECL inode_info reader::stat(std::uint32_t ino, std::error_code& ec) const {
    inode_info out;
    byte_buffer raw;
    load_inode(ino, raw, ec);
    if (ec) return out;
    // SAFETY: raw holds inode_size >= 128 bytes; the fields past 128 are read only when
    // i_extra_isize says they exist and they lie inside raw.
    const auto* in = reinterpret_cast<const inode*>(raw.data());
    std::uint16_t extra = 0;
    if (info_.inode_size > 128) {
        extra = load_le<std::uint16_t>(raw.data() + 128);
        if (128u + extra > info_.inode_size) extra = 0;
    }
    auto has = [&](std::size_t field_end) { return extra >= field_end - 128; };
    out.ino = ino;
    std::uint16_t mode = in->mode.get();
    bool ok = false;
    out.type = detail::type_of(mode, ok);
    if (!ok) {
        ec = errc::corrupt_image;
        return out;
    }
    out.mode = mode & 07777;
    out.uid = in->uid.get() | (std::uint32_t(in->uid_high.get()) << 16);
    out.gid = in->gid.get() | (std::uint32_t(in->gid_high.get()) << 16);
    out.size = in->size_lo.get() | (std::uint64_t(in->size_high.get()) << 32);
    out.links = in->links_count.get();
    out.flags = in->flags.get();
    out.atime = detail::decode_time(in->atime.get(), has(0x90) ? raw.data() + 0x8C : nullptr);
    out.mtime = detail::decode_time(in->mtime.get(), has(0x8C) ? raw.data() + 0x88 : nullptr);
    out.ctime = detail::decode_time(in->ctime.get(), has(0x88) ? raw.data() + 0x84 : nullptr);
    if (has(0x94))
        out.crtime = detail::decode_time(in->crtime.get(), has(0x98) ? raw.data() + 0x94 : nullptr);
    if (out.type == file_type::char_device || out.type == file_type::block_device) {
        std::uint32_t old = load_le<std::uint32_t>(in->block.data());
        if (old != 0) {
            out.major = (old >> 8) & 0xff;
            out.minor = old & 0xff;
        } else {
            std::uint32_t dev = load_le<std::uint32_t>(in->block.data() + 4);
            out.major = (dev & 0xfff00) >> 8;
            out.minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
        }
    }
    return out;
}

CZ_DECL void reader::for_each_run(std::uint32_t ino, const std::function<bool(const run&)>& f,
                                  std::error_code& ec) const {
    byte_buffer raw;
    load_inode(ino, raw, ec);
    if (ec) return;
    // SAFETY: raw holds at least 128 bytes, the fixed inode fields.
    const auto* in = reinterpret_cast<const inode*>(raw.data());
    const std::uint32_t bs = info_.block_size;
    const std::uint64_t nblocks = info_.blocks_count;
    std::uint32_t flags = in->flags.get();
    if (flags & inode_flag_inline_data) {
        ec = errc::unsupported_image;
        return;
    }
    bool stop = false;
    std::uint64_t next_logical = 0; // runs must come in increasing logical order
    // Tree and indirect blocks read for this file: a file cannot own more blocks than the
    // image has, so a tree whose pointers repeat one block is caught before it multiplies.
    std::uint64_t budget = nblocks;
    auto spend = [&]() -> bool {
        if (budget == 0) return ec = errc::corrupt_image, false;
        --budget;
        return true;
    };
    auto emit = [&](std::uint64_t logical, std::uint64_t physical, std::uint64_t len) -> bool {
        if (len == 0) return true;
        if (logical < next_logical ||
            (physical != 0 && (physical >= nblocks || len > nblocks - physical))) {
            ec = errc::corrupt_image;
            return false;
        }
        next_logical = logical + len;
        if (!f({logical, physical, len})) stop = true;
        return !stop;
    };
    if (flags & inode_flag_extents) {
        // Depth-first over the tree; each level's depth must be one less than its parent's, so
        // the walk ends (at most 5 levels, EXT4_MAX_EXTENT_DEPTH).
        std::function<bool(bytes_view, int)> node = [&](bytes_view b, int expect_depth) -> bool {
            if (b.size() < sizeof(extent_header)) return ec = errc::corrupt_image, false;
            // SAFETY: the header's 12 bytes are inside b (checked above).
            const auto* h = reinterpret_cast<const extent_header*>(b.data());
            std::uint16_t n = h->entries.get();
            int depth = h->depth.get();
            if (h->magic.get() != extent_magic || depth > 5 ||
                (expect_depth >= 0 && depth != expect_depth) || n > (b.size() - 12) / 12)
                return ec = errc::corrupt_image, false;
            for (std::uint16_t i = 0; i < n; ++i) {
                // SAFETY: entry i lies at 12 + 12 * i < b.size() (n bounded above).
                const std::byte* e = b.data() + 12 + 12 * std::size_t(i);
                if (depth == 0) {
                    const auto* l = reinterpret_cast<const extent_leaf*>(e);
                    std::uint32_t len = l->len.get();
                    bool unwritten = len > max_extent_len;
                    if (unwritten) len -= max_extent_len;
                    std::uint64_t p = l->start_lo.get() | (std::uint64_t(l->start_hi.get()) << 32);
                    if (!unwritten && p == 0) return ec = errc::corrupt_image, false;
                    if (!emit(l->logical.get(), unwritten ? 0 : p, len)) return false;
                } else {
                    const auto* x = reinterpret_cast<const extent_index*>(e);
                    std::uint64_t p = x->leaf_lo.get() | (std::uint64_t(x->leaf_hi.get()) << 32);
                    if (p == 0 || p >= nblocks || !spend()) return ec = errc::corrupt_image, false;
                    byte_buffer child(bs);
                    img_.read(p * bs, child, ec);
                    if (ec) return false;
                    if (!node(child, depth - 1)) return false;
                }
            }
            return true;
        };
        node(bytes_view(in->block.data(), in->block.size()), -1);
        return;
    }
    // ext2/3 block map: 12 direct blocks, then single, double and triple indirect.
    std::uint64_t size = in->size_lo.get() | (std::uint64_t(in->size_high.get()) << 32);
    const std::uint64_t file_blocks = (size + bs - 1) / bs;
    const std::uint64_t per = bs / 4;
    std::uint64_t run_l = 0, run_p = 0, run_n = 0;
    auto add = [&](std::uint64_t logical, std::uint64_t physical) -> bool {
        if (run_n && run_l + run_n == logical && run_p + run_n == physical) {
            ++run_n;
            return true;
        }
        if (run_n && !emit(run_l, run_p, run_n)) return false;
        run_l = logical;
        run_p = physical;
        run_n = 1;
        return true;
    };
    std::function<bool(std::uint64_t, int, std::uint64_t)> indirect =
        [&](std::uint64_t blk, int level, std::uint64_t logical) -> bool {
        if (blk == 0 || logical >= file_blocks) return true;
        if (blk >= nblocks) return ec = errc::corrupt_image, false;
        if (level == 0) return add(logical, blk);
        if (!spend()) return false;
        byte_buffer b(bs);
        img_.read(blk * bs, b, ec);
        if (ec) return false;
        std::uint64_t span = 1;
        for (int i = 1; i < level; ++i)
            span *= per;
        for (std::uint64_t i = 0; i < per; ++i) {
            // SAFETY: i < bs / 4, so 4 * i + 4 <= b.size().
            std::uint64_t child = load_le<std::uint32_t>(b.data() + 4 * i);
            if (!indirect(child, level - 1, logical + i * span)) return false;
        }
        return true;
    };
    for (std::uint64_t i = 0; i < 12; ++i)
        if (!indirect(load_le<std::uint32_t>(in->block.data() + 4 * i), 0, i)) return;
    std::uint64_t base = 12;
    for (int level = 1; level <= 3; ++level) {
        if (!indirect(load_le<std::uint32_t>(in->block.data() + 4 * (11 + level)), level, base))
            return;
        std::uint64_t span = 1;
        for (int i = 0; i < level; ++i)
            span *= per;
        base += span;
    }
    if (run_n) emit(run_l, run_p, run_n);
}

CZ_DECL void reader::read_file(std::uint32_t ino, sink_ref sink, std::error_code& ec) const {
    inode_info st = stat(ino, ec);
    if (ec) return;
    if (st.type == file_type::symlink) {
        std::string t = read_link(ino, ec);
        if (!ec) sink.write(as_bytes(t), ec);
        return;
    }
    if (st.type != file_type::regular && st.type != file_type::directory) return;
    if (st.size == 0) return;
    const std::uint32_t bs = info_.block_size;
    // No larger than the file: most files are small, and zeroing a 256 KiB buffer for each one
    // costs more than reading it.
    byte_buffer buf(std::size_t(std::min<std::uint64_t>(st.size, 256 * 1024)));
    std::uint64_t pos = 0; // bytes emitted
    auto zeros = [&](std::uint64_t n) -> bool {
        std::fill(buf.begin(), buf.end(), std::byte{0});
        while (n > 0) {
            std::size_t k = std::size_t(std::min<std::uint64_t>(n, buf.size()));
            sink.write(bytes_view(buf.data(), k), ec);
            if (ec) return false;
            n -= k;
            pos += k;
        }
        return true;
    };
    for_each_run(
        ino,
        [&](const run& r) {
            if (r.logical * bs >= st.size) return false;
            if (r.logical * bs > pos && !zeros(r.logical * bs - pos)) return false;
            std::uint64_t bytes = std::min<std::uint64_t>(r.len * bs, st.size - r.logical * bs);
            if (r.physical == 0) return zeros(bytes);
            std::uint64_t off = r.physical * bs;
            while (bytes > 0) {
                std::size_t k = std::size_t(std::min<std::uint64_t>(bytes, buf.size()));
                img_.read(off, mutable_bytes(buf.data(), k), ec);
                if (ec) return false;
                sink.write(bytes_view(buf.data(), k), ec);
                if (ec) return false;
                off += k;
                bytes -= k;
                pos += k;
            }
            return true;
        },
        ec);
    if (!ec && pos < st.size) zeros(st.size - pos);
}

CZ_DECL std::string reader::read_link(std::uint32_t ino, std::error_code& ec) const {
    byte_buffer raw;
    load_inode(ino, raw, ec);
    if (ec) return {};
    // SAFETY: raw holds at least the 128 fixed bytes.
    const auto* in = reinterpret_cast<const inode*>(raw.data());
    std::uint64_t size = in->size_lo.get() | (std::uint64_t(in->size_high.get()) << 32);
    if (size >= 65536) {
        ec = errc::corrupt_image;
        return {};
    }
    std::uint32_t flags = in->flags.get();
    bool has_blocks = in->blocks_lo.get() != 0 && !(in->file_acl_lo.get() != 0 &&
                                                    in->blocks_lo.get() == info_.block_size / 512);
    if (!(flags & inode_flag_extents) && !has_blocks && size < 60) // fast symlink
        return std::string(reinterpret_cast<const char*>(in->block.data()), std::size_t(size));
    if (flags & inode_flag_inline_data) {
        ec = errc::unsupported_image;
        return {};
    }
    byte_buffer data;
    buffer_sink out(data);
    // Read the data blocks directly (read_file would recurse into read_link).
    const std::uint32_t bs = info_.block_size;
    for_each_run(
        ino,
        [&](const run& r) {
            for (std::uint64_t i = 0; i < r.len && data.size() < size; ++i) {
                byte_buffer b(bs);
                if (r.physical) img_.read((r.physical + i) * bs, b, ec);
                if (ec) return false;
                data.resize(std::size_t((r.logical + i) * bs));
                data.insert(data.end(), b.begin(), b.end());
            }
            return data.size() < size;
        },
        ec);
    if (ec) return {};
    data.resize(std::size_t(size));
    return std::string(as_chars(data));
}

CZ_DECL std::vector<dir_entry> reader::read_dir(std::uint32_t ino, std::error_code& ec) const {
    std::vector<dir_entry> out;
    inode_info st = stat(ino, ec);
    if (ec) return out;
    if (st.type != file_type::directory) {
        ec = errc::not_a_directory;
        return out;
    }
    if (st.flags & inode_flag_inline_data) {
        ec = errc::unsupported_image;
        return out;
    }
    // A directory's blocks are in the image: it cannot be larger.
    if (st.size > detail::max_dir_bytes || st.size > img_.size() ||
        st.size % info_.block_size != 0) {
        ec = errc::corrupt_image;
        return out;
    }
    byte_buffer data;
    data.reserve(std::size_t(st.size));
    buffer_sink sink(data);
    read_file(ino, sink, ec);
    if (ec) return out;
    const std::size_t bs = info_.block_size;
    for (std::size_t blk = 0; blk < data.size(); blk += bs) {
        std::size_t at = 0;
        while (at < bs) {
            if (bs - at < 8) {
                ec = errc::corrupt_image;
                return out;
            }
            // SAFETY: the 8-byte entry header lies inside the block (checked above).
            const auto* d = reinterpret_cast<const dirent_header*>(data.data() + blk + at);
            std::size_t rec = d->rec_len.get();
            if (rec == 0 && bs == 65536) rec = 65536; // rec_len encoding for 64 KiB blocks
            std::size_t name_len = std::to_integer<std::size_t>(d->name_len);
            if (rec < 8 || rec % 4 != 0 || rec > bs - at || name_len + 8 > rec) {
                ec = errc::corrupt_image;
                return out;
            }
            std::uint32_t child = d->inode.get();
            if (child != 0) {
                std::string name(reinterpret_cast<const char*>(data.data() + blk + at + 8),
                                 name_len);
                if (name != "." && name != "..") {
                    if (child > info_.inodes_count || name.empty() ||
                        name.find('/') != std::string::npos ||
                        name.find('\0') != std::string::npos) {
                        ec = errc::corrupt_image;
                        return out;
                    }
                    out.push_back({std::move(name), child,
                                   filetype_ ? std::to_integer<std::uint8_t>(d->file_type)
                                             : std::uint8_t(0)});
                }
            }
            at += rec;
        }
    }
    return out;
}

CZ_DECL std::vector<xattr> reader::read_xattrs(std::uint32_t ino, std::error_code& ec) const {
    std::vector<xattr> out;
    byte_buffer raw;
    load_inode(ino, raw, ec);
    if (ec) return out;
    if (info_.inode_size > 128) {
        std::size_t extra = load_le<std::uint16_t>(raw.data() + 128);
        std::size_t start = 128 + extra;
        if (start + 4 <= raw.size() && load_le<std::uint32_t>(raw.data() + start) == xattr_magic) {
            bytes_view area(raw.data() + start + 4, raw.size() - start - 4);
            if ((ec = detail::parse_xattrs(area, 0, 0, out))) return out;
        }
    }
    // SAFETY: raw holds at least the 128 fixed bytes.
    const auto* in = reinterpret_cast<const inode*>(raw.data());
    std::uint64_t blk = in->file_acl_lo.get();
    if (sixty_four_) blk |= std::uint64_t(in->file_acl_high.get()) << 32;
    if (blk != 0) {
        if (blk >= info_.blocks_count) {
            ec = errc::corrupt_image;
            return out;
        }
        byte_buffer b(info_.block_size);
        img_.read(blk * info_.block_size, b, ec);
        if (ec) return out;
        if (load_le<std::uint32_t>(b.data()) != xattr_magic) {
            ec = errc::corrupt_image;
            return out;
        }
        if ((ec = detail::parse_xattrs(b, sizeof(xattr_block_header), 0, out))) return out;
    }
    return out;
}

CZ_DECL std::uint32_t reader::lookup(std::string_view path, std::error_code& ec) const {
    std::uint32_t cur = root_inode;
    std::size_t at = 0;
    while (at < path.size()) {
        std::size_t slash = path.find('/', at);
        std::string_view part = path.substr(at, slash == path.npos ? path.npos : slash - at);
        at = slash == path.npos ? path.size() : slash + 1;
        if (part.empty() || part == ".") continue;
        auto entries = read_dir(cur, ec);
        if (ec) return 0;
        std::uint32_t next = 0;
        if (part == "..") {
            // ".." is in the directory's first block; read_dir hides it, so look it up directly.
            byte_buffer first;
            buffer_sink s(first);
            read_file(cur, s, ec);
            if (ec) return 0;
            if (first.size() >= 24) next = load_le<std::uint32_t>(first.data() + 12);
        } else {
            for (const auto& e : entries)
                if (e.name == part) next = e.ino;
        }
        if (next == 0) {
            ec = errc::not_found;
            return 0;
        }
        cur = next;
    }
    return cur;
}

CZ_DECL void reader::walk(std::uint32_t ino,
                          const std::function<bool(const std::string&, const dir_entry&)>& visit,
                          std::error_code& ec) const {
    // Iterative, with a depth bound: a corrupt image can make a directory its own descendant.
    struct frame {
        std::string prefix;
        std::vector<dir_entry> entries;
        std::size_t next = 0;
    };
    std::vector<frame> stack;
    std::unordered_set<std::uint32_t> seen{ino};
    stack.push_back({"", read_dir(ino, ec), 0});
    if (ec) return;
    while (!stack.empty()) {
        auto& f = stack.back();
        if (f.next == f.entries.size()) {
            stack.pop_back();
            continue;
        }
        dir_entry e = f.entries[f.next++];
        std::string path = f.prefix.empty() ? e.name : f.prefix + "/" + e.name;
        if (!visit(path, e)) return;
        bool is_dir = e.type == ft_directory;
        if (e.type == ft_unknown) {
            auto st = stat(e.ino, ec);
            if (ec) return;
            is_dir = st.type == file_type::directory;
        }
        if (is_dir) {
            if (!seen.insert(e.ino).second || stack.size() > 4096) {
                ec = errc::corrupt_image;
                return;
            }
            auto kids = read_dir(e.ino, ec);
            if (ec) return;
            stack.push_back({std::move(path), std::move(kids), 0});
        }
    }
}

} // namespace cz::ext4
