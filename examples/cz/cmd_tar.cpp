// cz tar list, cz tar create — cz/tar from the command line.
//
// `cz tar list` prints names exactly as GNU tar's `tar -tf` does: GNU's "escape" quoting style
// (backslash escapes for \\ \a \b \f \n \r \t \v, three-digit octal for other bytes that are not
// printable characters in the current locale), so the two outputs can be compared byte for byte.
#include "cli.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/stream.hpp>
#include <cz/tar.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cwchar>
#include <cwctype>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace cz::cli {

namespace {

// GNU quotearg's escape style, as GNU tar uses for listings.
std::string gnu_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::mbstate_t state{};
    auto octal = [&](unsigned char c) { out += fmt::format("\\{:03o}", c); };
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '\\':
            out += "\\\\";
            ++i;
            continue;
        case '\a':
            out += "\\a";
            ++i;
            continue;
        case '\b':
            out += "\\b";
            ++i;
            continue;
        case '\f':
            out += "\\f";
            ++i;
            continue;
        case '\n':
            out += "\\n";
            ++i;
            continue;
        case '\r':
            out += "\\r";
            ++i;
            continue;
        case '\t':
            out += "\\t";
            ++i;
            continue;
        case '\v':
            out += "\\v";
            ++i;
            continue;
        default:
            break;
        }
        if (c < 0x80) {
            if (c >= 0x20 && c < 0x7f)
                out += char(c);
            else
                octal(c);
            ++i;
            continue;
        }
        wchar_t wc = 0;
        auto r = std::mbrtowc(&wc, s.data() + i, s.size() - i, &state);
        if (r == std::size_t(-1) || r == std::size_t(-2) || r == 0) {
            state = {};
            octal(c);
            ++i;
            continue;
        }
        if (std::iswprint(wint_t(wc)))
            out.append(s.substr(i, r));
        else
            for (std::size_t k = 0; k < r; ++k)
                octal(static_cast<unsigned char>(s[i + k]));
        i += r;
    }
    return out;
}

std::string base64(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        auto v = (unsigned(static_cast<unsigned char>(in[i])) << 16) |
                 (unsigned(static_cast<unsigned char>(in[i + 1])) << 8) |
                 unsigned(static_cast<unsigned char>(in[i + 2]));
        for (int k = 3; k >= 0; --k)
            out += alphabet[(v >> (6 * k)) & 63];
    }
    if (i < in.size()) {
        auto v = unsigned(static_cast<unsigned char>(in[i])) << 16;
        if (i + 1 < in.size()) v |= unsigned(static_cast<unsigned char>(in[i + 1])) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

nlohmann::json entry_json(const tar::entry& e) {
    nlohmann::json j;
    j["name"] = e.name;
    j["type"] = std::string(tar::to_string(e.type));
    j["size"] = e.size;
    j["mode"] = e.mode;
    j["uid"] = e.uid;
    j["gid"] = e.gid;
    j["uname"] = e.uname;
    j["gname"] = e.gname;
    auto seconds = e.mtime_ns / 1'000'000'000 - (e.mtime_ns % 1'000'000'000 < 0 ? 1 : 0);
    j["mtime"] = seconds;
    j["mtime_ns"] = e.mtime_ns;
    if (e.type == tar::entry_type::hard_link || e.type == tar::entry_type::symlink)
        j["linkname"] = e.linkname;
    if (e.type == tar::entry_type::char_device || e.type == tar::entry_type::block_device) {
        j["devmajor"] = e.devmajor;
        j["devminor"] = e.devminor;
    }
    // Values are bytes (security.capability is binary): base64.
    auto xattrs = nlohmann::json::object();
    for (const auto& x : e.xattrs)
        xattrs[x.name] = base64(x.value);
    j["xattrs"] = xattrs;
    if (e.is_sparse()) {
        auto map = nlohmann::json::array();
        for (const auto& s : e.sparse_map)
            map.push_back({s.offset, s.length});
        j["sparse_map"] = map;
        j["stored_size"] = e.stored_size;
    }
    return j;
}

// The archive to read: a regular file is mapped into memory (no read(2) copy through the
// kernel, the biggest cost of reading an archive of small files); anything else (a pipe,
// standard input, a device) is read with read(2).
class archive_input {
public:
    explicit archive_input(const std::string& path) : fd_(open_input(path)), file_(fd_.get()) {
        struct stat st {};
        if (::fstat(fd_.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            void* p = ::mmap(nullptr, std::size_t(st.st_size), PROT_READ,
                             MAP_PRIVATE | MAP_POPULATE, fd_.get(), 0);
            if (p != MAP_FAILED) {
                ::madvise(p, std::size_t(st.st_size), MADV_SEQUENTIAL);
                map_ = {static_cast<const std::byte*>(p), std::size_t(st.st_size)};
                mem_.emplace(map_);
            }
        }
    }
    ~archive_input() {
        if (!map_.empty()) ::munmap(const_cast<std::byte*>(map_.data()), map_.size());
    }
    archive_input(const archive_input&) = delete;
    archive_input& operator=(const archive_input&) = delete;

    source_ref source() noexcept { return mem_ ? source_ref(*mem_) : source_ref(file_); }
    // The whole file when it is mapped and not compressed: read it with no copy at all.
    bytes_view plain_mapping() const noexcept {
        return detect_compression(map_) == compression::none ? map_ : bytes_view();
    }

private:
    unique_fd fd_;
    fd_source file_;
    bytes_view map_;
    std::optional<memory_source> mem_;
};

// Collects views and writes them with writev(2), IOV_MAX at a time.
class gather_writer {
public:
    explicit gather_writer(int fd) : fd_(fd) {}
    void add(bytes_view v, std::error_code& ec) {
        // SAFETY: writev only reads the iovecs; the views outlive the flush.
        iov_.push_back({const_cast<std::byte*>(v.data()), v.size()});
        if (iov_.size() == 1024) flush(ec);
    }
    void flush(std::error_code& ec) {
        std::size_t first = 0;
        while (first < iov_.size()) {
            auto n = ::writev(fd_, iov_.data() + first, int(iov_.size() - first));
            if (n < 0) {
                if (errno == EINTR) continue;
                ec = last_system_error();
                return;
            }
            auto done = std::size_t(n);
            while (first < iov_.size() && done >= iov_[first].iov_len)
                done -= iov_[first++].iov_len;
            if (first < iov_.size()) {
                iov_[first].iov_base = static_cast<char*>(iov_[first].iov_base) + done;
                iov_[first].iov_len -= done;
            }
        }
        iov_.clear();
    }

private:
    int fd_;
    std::vector<iovec> iov_;
};

[[noreturn]] void report(std::error_code ec, const std::string& file, const tar::reader& r) {
    if (ec.category() == tar::tar_category())
        throw_error(ec, "{}: {}", file, to_string(r.error_detail()));
    throw_error(ec, "{}: at archive offset {}", file, r.offset());
}

// Walks DIR for `cz tar create`: sorted by byte order, directories before their contents.
struct tree_writer {
    tar::writer& w;
    std::map<std::pair<dev_t, ino_t>, std::string> links;

    void add_xattrs(const std::string& path, tar::entry& e) {
        auto n = ::llistxattr(path.c_str(), nullptr, 0);
        if (n <= 0) return;
        std::string names(std::size_t(n), '\0');
        n = ::llistxattr(path.c_str(), names.data(), names.size());
        if (n < 0) throw_error(last_system_error(), "{}: listxattr", path);
        names.resize(std::size_t(n));
        for (std::size_t pos = 0; pos < names.size();) {
            std::string name = names.c_str() + pos;
            pos += name.size() + 1;
            auto len = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
            if (len < 0) continue;
            std::string value(std::size_t(len), '\0');
            len = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
            if (len < 0) continue;
            value.resize(std::size_t(len));
            e.xattrs.push_back({name, value});
        }
    }

    void walk(const std::string& dir, const std::string& prefix) {
        std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
        if (!d) throw_error(last_system_error(), "{}", dir);
        std::vector<std::string> names;
        errno = 0;
        while (auto* ent = ::readdir(d.get())) {
            std::string n = ent->d_name;
            if (n != "." && n != "..") names.push_back(n);
        }
        std::sort(names.begin(), names.end());
        for (const auto& n : names)
            add(dir + "/" + n, prefix + n);
    }

    void add(const std::string& path, const std::string& name) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) throw_error(last_system_error(), "{}", path);
        tar::entry e;
        e.name = name;
        e.mode = st.st_mode & 07777;
        add_xattrs(path, e);
        if (S_ISDIR(st.st_mode)) {
            e.type = tar::entry_type::directory;
            e.name += '/';
            w.add(e);
            walk(path, e.name);
            return;
        }
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            auto [it, fresh] = links.try_emplace({st.st_dev, st.st_ino}, name);
            if (!fresh) {
                e.type = tar::entry_type::hard_link;
                e.linkname = it->second;
                w.add(e);
                return;
            }
        }
        if (S_ISREG(st.st_mode)) {
            e.type = tar::entry_type::regular;
            e.size = std::uint64_t(st.st_size);
            unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) throw_error(last_system_error(), "{}", path);
            fd_source src(fd.get());
            std::error_code ec;
            w.add(e, src, ec);
            if (ec) throw_error(ec, "{}", path);
        } else if (S_ISLNK(st.st_mode)) {
            e.type = tar::entry_type::symlink;
            std::string target(std::size_t(st.st_size) + 1, '\0');
            auto n = ::readlink(path.c_str(), target.data(), target.size());
            if (n < 0) throw_error(last_system_error(), "{}", path);
            target.resize(std::size_t(n));
            e.linkname = target;
            w.add(e);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            e.type =
                S_ISCHR(st.st_mode) ? tar::entry_type::char_device : tar::entry_type::block_device;
            e.devmajor = ::major(st.st_rdev);
            e.devminor = ::minor(st.st_rdev);
            w.add(e);
        } else if (S_ISFIFO(st.st_mode)) {
            e.type = tar::entry_type::fifo;
            w.add(e);
        } else {
            // Sockets cannot be archived; GNU tar skips them too ("socket ignored").
            fmt::print(stderr, "cz: {}: socket ignored\n", path);
        }
    }
};

} // namespace

struct tar_list_options {
    std::string file = "-";
    bool json = false;
    bool ignore_zeros = false;
};

int run_tar_list(const tar_list_options& o) {
    std::setlocale(LC_ALL, "");
    archive_input input(o.file);
    decompressing_source plain(input.source());
    tar::parser_options options{.ignore_zeros = o.ignore_zeros};
    auto mapped = input.plain_mapping();
    auto r = mapped.empty() ? tar::reader(plain, options) : tar::reader(mapped, options);
    std::error_code ec;
    std::string out;
    while (const tar::entry* e = r.next(ec)) {
        if (o.json) {
            out += entry_json(*e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        } else {
            out += gnu_escape(e->name);
        }
        out += '\n';
        if (out.size() >= (64u << 10)) {
            std::fwrite(out.data(), 1, out.size(), stdout);
            out.clear();
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (ec) report(ec, o.file, r);
    return exit_ok;
}

struct tar_cat_options {
    std::string file = "-";
    bool ignore_zeros = false;
};

int run_tar_cat(const tar_cat_options& o) {
    archive_input input(o.file);
    decompressing_source plain(input.source());
    tar::parser_options options{.ignore_zeros = o.ignore_zeros};
    auto mapped = input.plain_mapping();
    std::error_code ec;
    if (!mapped.empty()) {
        // A mapped plain archive: contents go from the mapping to standard output with
        // writev(2), never copied (views of a reader over memory live as long as it).
        tar::reader r(mapped, options);
        gather_writer out(1);
        while (const tar::entry* e = r.next(ec)) {
            if (!e->is_file()) continue;
            for (;;) {
                auto v = r.read_view(std::size_t(1) << 30, ec);
                if (v.empty()) break;
                out.add(v, ec);
                if (ec) break;
            }
            if (ec) break;
        }
        if (!ec) out.flush(ec);
        if (ec) report(ec, o.file, r);
        return exit_ok;
    }
    // Otherwise contents are gathered in a buffer small enough to stay in cache: archives of
    // small files would cost a write(2) per file.
    tar::reader r(plain, options);
    fd_sink out(1);
    std::vector<std::byte> buf(std::size_t(128) << 10);
    std::size_t fill = 0;
    while (const tar::entry* e = r.next(ec)) {
        if (!e->is_file()) continue;
        for (;;) {
            if (fill == buf.size()) {
                out.write(buf, ec);
                fill = 0;
                if (ec) break;
            }
            auto n = r.read_some(std::span(buf).subspan(fill), ec);
            if (n == 0) break;
            fill += n;
        }
        if (ec) break;
    }
    if (!ec && fill) out.write(std::span(buf).first(fill), ec);
    if (ec) report(ec, o.file, r);
    return exit_ok;
}

struct tar_create_options {
    std::string dir;
    std::string output = "-";
    std::int64_t mtime = 0;
    std::string compress = "none"; // none, gzip or zstd (CLI11 checks)
};

int run_tar_create(const tar_create_options& o) {
    unique_fd fd;
    if (o.output == "-") {
        fd = unique_fd(::fcntl(1, F_DUPFD_CLOEXEC, 3));
    } else {
        fd = unique_fd(::open(o.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
        if (!fd) throw_error(last_system_error(), "{}", o.output);
    }
    fd_sink raw(fd.get());
    auto format = o.compress == "gzip"   ? compression::gzip
                  : o.compress == "zstd" ? compression::zstd
                                         : compression::none;
    std::unique_ptr<compressing_sink> packed;
    if (format != compression::none) packed = std::make_unique<compressing_sink>(raw, format);
    auto sink = packed ? sink_ref(*packed) : sink_ref(raw);
    tar::writer w(sink, {.deterministic = true, .fixed_mtime_ns = o.mtime * 1'000'000'000});
    tree_writer tree{w, {}};
    tree.walk(o.dir, "");
    w.finish();
    return exit_ok;
}

void register_tar_commands(context ctx) {
    auto* tar_cmd = ctx.app.add_subcommand("tar", "Read and write tar archives (cz/tar)");
    tar_cmd->require_subcommand(1);

    // cz tar list FILE
    add_command<tar_list_options>(
        ctx, *tar_cmd, "list",
        "Print the member names of a tar archive (plain, gzip or zstd) as `tar -tf` does",
        [](CLI::App& cmd, tar_list_options& o) {
            cmd.add_option("FILE", o.file, "Archive; - for standard input (the default)");
            cmd.add_flag("--json", o.json,
                         "One JSON object per entry: type, size, mode, ids, times, "
                         "link name, xattrs (base64 values), sparse map");
            cmd.add_flag("-i,--ignore-zeros", o.ignore_zeros,
                         "Read past zero blocks (concatenated archives), as tar -i does");
        },
        run_tar_list);

    // cz tar cat FILE: all regular files' contents, in order, as `tar -xOf` writes them.
    add_command<tar_cat_options>(
        ctx, *tar_cmd, "cat",
        "Write the contents of every regular file to standard output, as `tar -xOf` does",
        [](CLI::App& cmd, tar_cat_options& o) {
            cmd.add_option("FILE", o.file, "Archive; - for standard input (the default)");
            cmd.add_flag("-i,--ignore-zeros", o.ignore_zeros,
                         "Read past zero blocks (concatenated archives), as tar -i does");
        },
        run_tar_cat);

    // cz tar create DIR
    add_command<tar_create_options>(
        ctx, *tar_cmd, "create",
        "Write a deterministic pax archive of DIR's contents (names relative to DIR)",
        [](CLI::App& cmd, tar_create_options& o) {
            cmd.add_option("DIR", o.dir, "Directory to archive")->required();
            cmd.add_option("-o,--output", o.output,
                           "Output file; - for standard output (the default)");
            cmd.add_option("--mtime", o.mtime,
                           "The mtime of every entry, seconds since the epoch (0)");
            cmd.add_option("--compress", o.compress, "none, gzip or zstd")
                ->check(CLI::IsMember({"none", "gzip", "zstd"}));
        },
        run_tar_create);
}

} // namespace cz::cli
