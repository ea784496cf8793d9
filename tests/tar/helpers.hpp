// What the tar tests share: archives built in memory (by the writer, or header by header for
// what the writer would never write), a reader that collects every entry with its content, a
// trickling source. Temporary directories, tools and shell commands: tests/support/support.hpp.
#pragma once

#include <cz/tar.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cz_tar_test {

// Hands out at most `step` bytes per read: headers and records straddle reads.
struct trickle_source {
    cz::bytes_view data;
    std::size_t step = 1;
    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        auto n = std::min({buf.size(), step, data.size()});
        std::copy_n(data.begin(), n, buf.begin());
        data = data.subspan(n);
        return n;
    }
};

struct member {
    cz::tar::entry e;
    std::string content;
};

// Reads a whole archive: every entry and its (logical) content. `ec` holds the error, if any;
// `error_offset` its header offset.
struct read_result {
    std::vector<member> members;
    std::error_code ec;
    std::uint64_t error_offset = 0;
};

inline read_result read_archive(cz::source_ref src, cz::tar::parser_options opt = {}) {
    read_result out;
    cz::tar::reader r(src, opt);
    while (const cz::tar::entry* e = r.next(out.ec)) {
        member m{*e, {}};
        cz::byte_buffer buf;
        cz::buffer_sink sink(buf);
        cz::copy(r, sink, out.ec);
        m.content = cz::to_string(buf);
        out.members.push_back(std::move(m));
        if (out.ec) break;
    }
    if (out.ec) out.error_offset = r.error_detail().offset.value_or(~0ull);
    return out;
}

inline read_result read_archive(std::string_view bytes, cz::tar::parser_options opt = {}) {
    cz::memory_source src(cz::as_bytes(bytes));
    return read_archive(src, opt);
}

inline cz::tar::entry file_entry(std::string name, std::uint64_t size, std::uint32_t mode = 0644) {
    cz::tar::entry e;
    e.name = std::move(name);
    e.size = size;
    e.mode = mode;
    return e;
}

// Builds an archive in memory: each (entry, data) pair in order.
inline std::string write_archive(const std::vector<member>& members,
                                 cz::tar::writer_options opt = {}) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::tar::writer w(sink, opt);
    for (const auto& m : members) {
        w.add(m.e);
        if (m.e.is_file()) w.write(cz::as_bytes(m.content));
    }
    w.finish();
    return cz::to_string(out);
}

// A header block: ustar magic unless `edit` changes it; `edit` may change any field, the
// checksum is computed after it.
inline std::string header(std::string_view name, char type, std::uint64_t size,
                          const std::function<void(cz::tar::header_block&)>& edit = {}) {
    cz::tar::header_block h;
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.name, name.data(), std::min(name.size(), sizeof h.name));
    cz::tar::format_octal(h.mode, 8, 0644);
    cz::tar::format_octal(h.uid, 8, 1000);
    cz::tar::format_octal(h.gid, 8, 1000);
    if (!cz::tar::format_octal(h.size, 12, std::int64_t(size)))
        cz::tar::format_base256(h.size, 12, std::int64_t(size));
    cz::tar::format_octal(h.mtime, 12, 1700000000);
    h.typeflag = type;
    std::memcpy(h.magic, "ustar", 6);
    std::memcpy(h.version, "00", 2);
    if (edit) edit(h);
    h.set_checksum();
    return {reinterpret_cast<const char*>(&h), sizeof h};
}

// `data` with NULs up to a whole number of blocks.
inline std::string padded(std::string data) {
    data.resize(std::size_t(cz::tar::padded(data.size())), '\0');
    return data;
}

// One pax record, "<length> <key>=<value>\n".
inline std::string record(std::string_view key, std::string_view value) {
    auto body = std::string(" ") + std::string(key) + "=" + std::string(value) + "\n";
    auto len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len)
        ++len;
    return std::to_string(len) + body;
}

// A pax `x` (or `g`) header holding `records`.
inline std::string pax(std::string_view records, char type = 'x') {
    return header("PaxHeader/x", type, records.size()) + padded(std::string(records));
}

// An entry with its data.
inline std::string file(std::string_view name, std::string_view content, char type = '0') {
    return header(name, type, content.size()) + padded(std::string(content));
}

inline const std::string end_blocks(1024, '\0');

} // namespace cz_tar_test
