// Out-of-line definitions for cz/vm/cpio.hpp.
#pragma once

#include <cz/vm/cpio.hpp>

#include <array>
#include <vector>

namespace cz::vm {

CZ_DECL std::string normalize_archive_path(std::string_view path, std::error_code& ec) {
    std::string out;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        auto end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        auto part = path.substr(pos, end - pos);
        pos = end + 1;
        if (part.empty() || part == ".") continue;
        if (part == ".." || part.find('\0') != std::string_view::npos) {
            ec = errc::bad_archive_path;
            return {};
        }
        if (!out.empty()) out += '/';
        out += part;
    }
    if (out.empty() || out.size() >= 4096) {
        ec = errc::bad_archive_path;
        return {};
    }
    return out;
}

CZ_DECL void cpio_writer::write(bytes_view data, std::error_code& ec) {
    out_.write(data, ec);
    if (!ec) offset_ += data.size();
}

CZ_DECL void cpio_writer::pad(std::error_code& ec) {
    static constexpr std::array<std::byte, 4> zeros{};
    auto rem = static_cast<std::size_t>(offset_ % 4);
    if (rem != 0) write(bytes_view(zeros).first(4 - rem), ec);
}

CZ_DECL void cpio_writer::write_header(const std::string& name, std::uint32_t mode,
                                       const cpio_entry& e, std::uint64_t size,
                                       std::error_code& ec) {
    if (size > cpio_max_file_size) {
        ec = errc::archive_entry_too_large;
        return;
    }
    bool dir = (mode & 0170000u) == static_cast<std::uint32_t>(cpio_type::directory);
    bool trailer = name == "TRAILER!!!";
    std::uint32_t fields[13] = {
        trailer ? 0u : next_ino_++,
        mode,
        e.uid,
        e.gid,
        dir ? 2u : 1u,
        e.mtime,
        static_cast<std::uint32_t>(size),
        0, // devmajor: every entry on the same (notional) device
        0,
        e.rdev_major,
        e.rdev_minor,
        static_cast<std::uint32_t>(name.size() + 1),
        0, // check: only used by the "070702" CRC variant
    };
    std::string header = "070701";
    header.reserve(cpio_header_size + name.size() + 4);
    static constexpr char hex[] = "0123456789ABCDEF";
    for (auto v : fields)
        for (int shift = 28; shift >= 0; shift -= 4) header += hex[(v >> shift) & 0xf];
    header += name;
    header += '\0';
    write(as_bytes(header), ec);
    if (!ec) pad(ec);
}

CZ_DECL void cpio_writer::add(const cpio_entry& entry, std::error_code& ec) {
    if (entry.type == cpio_type::regular || entry.type == cpio_type::symlink) {
        // Regular files and links carry data: use add_file/add_symlink.
        ec = cz::errc::invalid_argument;
        return;
    }
    auto name = normalize_archive_path(entry.path, ec);
    if (ec) return;
    write_header(name, static_cast<std::uint32_t>(entry.type) | (entry.permissions & 07777), entry,
                 0, ec);
}

CZ_DECL void cpio_writer::add_file(const cpio_entry& entry, bytes_view data, std::error_code& ec) {
    memory_source src(data);
    add_file(entry, data.size(), src, ec);
}

CZ_DECL void cpio_writer::add_file(const cpio_entry& entry, std::uint64_t size, source_ref data,
                                   std::error_code& ec) {
    auto name = normalize_archive_path(entry.path, ec);
    if (ec) return;
    write_header(name, static_cast<std::uint32_t>(cpio_type::regular) | (entry.permissions & 07777),
                 entry, size, ec);
    if (ec) return;
    std::vector<std::byte> buf(64 * 1024);
    std::uint64_t left = size;
    while (left > 0) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
        auto n = data.read_some(mutable_bytes(buf).first(want), ec);
        if (ec) return;
        if (n == 0) {
            ec = errc::file_changed;
            return;
        }
        write(bytes_view(buf).first(n), ec);
        if (ec) return;
        left -= n;
    }
    // One more byte would mean the file grew: the archive would silently hold a prefix.
    std::byte probe[1];
    if (data.read_some(probe, ec) != 0) ec = errc::file_changed;
    if (ec) return;
    pad(ec);
}

CZ_DECL void cpio_writer::add_symlink(const cpio_entry& entry, std::string_view target,
                                      std::error_code& ec) {
    auto name = normalize_archive_path(entry.path, ec);
    if (ec) return;
    if (target.empty() || target.find('\0') != std::string_view::npos) {
        ec = errc::bad_archive_path;
        return;
    }
    write_header(name, static_cast<std::uint32_t>(cpio_type::symlink) | 0777, entry, target.size(),
                 ec);
    if (!ec) write(as_bytes(target), ec);
    if (!ec) pad(ec);
}

CZ_DECL void cpio_writer::finish(std::error_code& ec) {
    cpio_entry trailer;
    write_header("TRAILER!!!", 0, trailer, 0, ec);
    if (!ec) out_.finish(ec);
}

} // namespace cz::vm
