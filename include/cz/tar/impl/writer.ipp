// Out-of-line definitions for cz/tar/writer.hpp.
#pragma once

#include <cz/tar/writer.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

namespace cz::tar {

namespace detail {

// Appends a pax record "<len> <key>=<value>\n"; <len> counts itself.
inline void append_pax_record(std::string& out, std::string_view key, std::string_view value) {
    std::size_t body = 1 + key.size() + 1 + value.size() + 1;
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
    out += std::to_string(len);
    out += ' ';
    out += key;
    out += '=';
    out += value;
    out += '\n';
}

// Nanoseconds as "[-]seconds[.fraction]" without trailing zeros in the fraction.
inline std::string format_pax_time(std::int64_t ns) {
    bool negative = ns < 0;
    auto mag = negative ? std::uint64_t(0) - std::uint64_t(ns) : std::uint64_t(ns);
    std::string s = (negative ? "-" : "") + std::to_string(mag / 1'000'000'000);
    if (auto frac = mag % 1'000'000'000) {
        auto f = std::to_string(frac);
        f.insert(0, 9 - f.size(), '0');
        while (f.back() == '0') f.pop_back();
        s += '.';
        s += f;
    }
    return s;
}

inline char typeflag_of(const entry& e) noexcept {
    switch (e.type) {
    case entry_type::regular: return '0';
    case entry_type::hard_link: return '1';
    case entry_type::symlink: return '2';
    case entry_type::char_device: return '3';
    case entry_type::block_device: return '4';
    case entry_type::directory: return '5';
    case entry_type::fifo: return '6';
    case entry_type::contiguous: return '7';
    default: return e.typeflag;
    }
}

// Puts `value` in a numeric field: octal when it fits, else base-256 plus a pax record (when a
// key is given). False when neither can hold it.
inline bool put_number(char* field, std::size_t width, std::int64_t value, std::string_view key,
                       std::string& pax) {
    if (format_octal(field, width, value)) return true;
    if (key.empty()) return false;
    append_pax_record(pax, key, std::to_string(value));
    return format_base256(field, width, value);
}

inline void put_string(char* field, std::size_t width, std::string_view s) noexcept {
    // SAFETY: callers pass s.size() <= width.
    std::memcpy(field, s.data(), std::min(width, s.size()));
}

} // namespace detail

CZ_DECL writer::writer(sink_ref sink, writer_options options) : sink_(sink), opt_(options) {}

CZ_DECL void writer::put(bytes_view data, std::error_code& ec) {
    sink_.write(data, ec);
    if (!ec) written_ += data.size();
}

CZ_DECL void writer::add(const entry& e, std::error_code& ec) {
    ec.clear();
    if (finished_ || remaining_ > 0) {
        ec = errc::bad_writer_state;
        return;
    }
    if (e.name.find('\0') != std::string::npos || e.linkname.find('\0') != std::string::npos ||
        e.name.empty()) {
        ec = errc::unrepresentable;
        return;
    }
    header_block h;
    std::memset(&h, 0, sizeof h);
    std::string pax;
    const bool det = opt_.deterministic;
    h.typeflag = detail::typeflag_of(e);
    std::uint64_t data_size = e.is_file() ? e.size : 0;

    // Name: the 100-byte field, else split at a '/' into prefix (155) and name (100), else pax.
    if (e.name.size() <= sizeof h.name) {
        detail::put_string(h.name, sizeof h.name, e.name);
    } else {
        bool split = false;
        for (auto cut = e.name.find('/'); cut != std::string::npos; cut = e.name.find('/', cut + 1)) {
            if (cut > sizeof h.prefix) break;
            if (e.name.size() - cut - 1 <= sizeof h.name && cut > 0 && cut + 1 < e.name.size()) {
                detail::put_string(h.prefix, sizeof h.prefix, std::string_view(e.name).substr(0, cut));
                detail::put_string(h.name, sizeof h.name, std::string_view(e.name).substr(cut + 1));
                split = true;
                break;
            }
        }
        if (!split) {
            detail::append_pax_record(pax, "path", e.name);
            detail::put_string(h.name, sizeof h.name, std::string_view(e.name).substr(0, sizeof h.name));
        }
    }
    if (e.linkname.size() > sizeof h.linkname) {
        detail::append_pax_record(pax, "linkpath", e.linkname);
        detail::put_string(h.linkname, sizeof h.linkname,
                           std::string_view(e.linkname).substr(0, sizeof h.linkname));
    } else {
        detail::put_string(h.linkname, sizeof h.linkname, e.linkname);
    }

    format_octal(h.mode, sizeof h.mode, e.mode & 07777);
    auto id = [&](char* field, std::size_t width, std::uint64_t v, std::string_view key) {
        if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ||
            !detail::put_number(field, width, std::int64_t(v), key, pax))
            ec = errc::unrepresentable;
    };
    id(h.uid, sizeof h.uid, det ? 0 : e.uid, "uid");
    id(h.gid, sizeof h.gid, det ? 0 : e.gid, "gid");
    id(h.size, sizeof h.size, data_size, "size");
    if (ec) return;

    auto mtime = det ? opt_.fixed_mtime_ns : e.mtime_ns;
    auto seconds = mtime / 1'000'000'000 - (mtime % 1'000'000'000 < 0 ? 1 : 0);
    if (mtime % 1'000'000'000 != 0 || !format_octal(h.mtime, sizeof h.mtime, seconds)) {
        detail::append_pax_record(pax, "mtime", detail::format_pax_time(mtime));
        format_base256(h.mtime, sizeof h.mtime, seconds);
    }
    if (!det) {
        if (e.atime_ns) detail::append_pax_record(pax, "atime", detail::format_pax_time(*e.atime_ns));
        if (e.ctime_ns) detail::append_pax_record(pax, "ctime", detail::format_pax_time(*e.ctime_ns));
        auto owner = [&](char* field, std::size_t width, const std::string& s, std::string_view key) {
            if (s.size() > width) detail::append_pax_record(pax, key, s);
            else detail::put_string(field, width, s);
        };
        owner(h.uname, sizeof h.uname, e.uname, "uname");
        owner(h.gname, sizeof h.gname, e.gname, "gname");
    }
    if (e.type == entry_type::char_device || e.type == entry_type::block_device) {
        if (!detail::put_number(h.devmajor, sizeof h.devmajor, e.devmajor, "SCHILY.devmajor", pax) ||
            !detail::put_number(h.devminor, sizeof h.devminor, e.devminor, "SCHILY.devminor", pax)) {
            ec = errc::unrepresentable;
            return;
        }
    }
    std::vector<const xattr*> xattrs;
    for (auto& x : e.xattrs) {
        if (x.name.empty() || x.name.find('=') != std::string::npos ||
            x.name.find('\0') != std::string::npos) {
            ec = errc::unrepresentable;
            return;
        }
        xattrs.push_back(&x);
    }
    if (det)
        std::stable_sort(xattrs.begin(), xattrs.end(),
                         [](const xattr* a, const xattr* b) { return a->name < b->name; });
    for (auto* x : xattrs) detail::append_pax_record(pax, "SCHILY.xattr." + x->name, x->value);

    std::memcpy(h.magic, "ustar", 6);
    std::memcpy(h.version, "00", 2);

    if (!pax.empty()) {
        header_block x;
        std::memset(&x, 0, sizeof x);
        // "<dir>/PaxHeaders/<base>", cut to the name field, as GNU tar's default without the pid.
        std::string_view full = e.name;
        while (full.size() > 1 && full.back() == '/') full.remove_suffix(1);
        auto slash = full.rfind('/');
        std::string xname = slash == std::string_view::npos
                                ? "PaxHeaders/" + std::string(full)
                                : std::string(full.substr(0, slash)) + "/PaxHeaders/" +
                                      std::string(full.substr(slash + 1));
        detail::put_string(x.name, sizeof x.name, std::string_view(xname).substr(0, sizeof x.name));
        format_octal(x.mode, sizeof x.mode, 0644);
        format_octal(x.uid, sizeof x.uid, 0);
        format_octal(x.gid, sizeof x.gid, 0);
        format_octal(x.size, sizeof x.size, std::int64_t(pax.size()));
        std::memcpy(x.mtime, h.mtime, sizeof x.mtime);
        x.typeflag = 'x';
        std::memcpy(x.magic, "ustar", 6);
        std::memcpy(x.version, "00", 2);
        x.set_checksum();
        // SAFETY: header_block is exactly block_size bytes.
        put({reinterpret_cast<const std::byte*>(&x), block_size}, ec);
        if (ec) return;
        put(as_bytes(pax), ec);
        if (ec) return;
        std::array<std::byte, block_size> zeros{};
        put(bytes_view(zeros).first(std::size_t(padded(pax.size()) - pax.size())), ec);
        if (ec) return;
    }
    h.set_checksum();
    // SAFETY: header_block is exactly block_size bytes.
    put({reinterpret_cast<const std::byte*>(&h), block_size}, ec);
    if (ec) return;
    remaining_ = data_size;
    pad_ = padded(data_size) - data_size;
    if (remaining_ == 0) close_entry(ec);
}

CZ_DECL void writer::close_entry(std::error_code& ec) {
    std::array<std::byte, block_size> zeros{};
    if (pad_) put(bytes_view(zeros).first(std::size_t(pad_)), ec);
    pad_ = 0;
}

CZ_DECL void writer::write(bytes_view data, std::error_code& ec) {
    ec.clear();
    if (finished_) {
        ec = errc::bad_writer_state;
        return;
    }
    if (data.size() > remaining_) {
        ec = errc::unrepresentable;
        return;
    }
    put(data, ec);
    if (ec) return;
    remaining_ -= data.size();
    if (remaining_ == 0) close_entry(ec);
}

CZ_DECL void writer::add(const entry& e, source_ref data, std::error_code& ec) {
    add(e, ec);
    if (ec) return;
    auto buf = std::make_unique_for_overwrite<std::byte[]>(std::size_t(256) << 10);
    for (;;) {
        auto n = data.read_some({buf.get(), std::size_t(256) << 10}, ec);
        if (ec) return;
        if (n == 0) break;
        write({buf.get(), n}, ec);
        if (ec) return;
    }
    if (remaining_ != 0) ec = errc::unrepresentable; // the source ended before e.size bytes
}

CZ_DECL void writer::finish(std::error_code& ec) {
    ec.clear();
    if (finished_ || remaining_ > 0) {
        ec = errc::bad_writer_state;
        return;
    }
    std::array<std::byte, 2 * block_size> zeros{};
    put(zeros, ec);
    if (ec) return;
    finished_ = true;
    sink_.finish(ec);
}

CZ_DECL void writer::add(const entry& e) {
    std::error_code ec;
    add(e, ec);
    if (ec) throw_error(ec, "tar writer: entry '{}'", e.name);
}

CZ_DECL void writer::write(bytes_view data) {
    std::error_code ec;
    write(data, ec);
    if (ec) throw_error(ec, "tar writer: data");
}

CZ_DECL void writer::finish() {
    std::error_code ec;
    finish(ec);
    if (ec) throw_error(ec, "tar writer: finish");
}

} // namespace cz::tar
