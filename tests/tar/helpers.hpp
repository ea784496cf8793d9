// What the tar tests share: archives built in memory, a reader that collects every entry with
// its content, a trickling source, temporary directories and shell commands.
#pragma once

#include <cz/tar.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
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
    out.error_offset = r.error_offset();
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

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/cz-tar-test.XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~temp_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

inline bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs a shell command; returns its exit status and fills `out` with its standard output.
inline int sh(const std::string& cmd, std::string* out = nullptr) {
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string text;
    char buf[65536];
    while (auto n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
    int status = ::pclose(p);
    if (out) *out = std::move(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

inline void write_file(const std::string& path, std::string_view data) {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
}

inline std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q += "'\\''"; else q += c;
    }
    return q + "'";
}

} // namespace cz_tar_test
