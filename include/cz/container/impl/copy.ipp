// Out-of-line definitions for cz/container/copy.hpp.
#pragma once

#include <cz/container/copy.hpp>
#include <cz/container/impl/supervisor.ipp>
#include <cz/core/unique_fd.hpp>
#include <cz/tar/path.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace cz::container {

namespace detail {

// openat2(2)'s struct and flags (<linux/openat2.h>, which public headers do not include).
struct copy_open_how {
    std::uint64_t flags;
    std::uint64_t mode;
    std::uint64_t resolve;
};
inline constexpr std::uint64_t copy_resolve_no_magiclinks = 0x02;
inline constexpr std::uint64_t copy_resolve_beneath = 0x08;

// Thrown inside the copy code, turned into ec and detail at the entry points.
struct copy_failure {
    std::error_code ec;
    std::string what;
};

[[noreturn]] inline void copy_fail(std::error_code ec, std::string what) {
    throw copy_failure{ec, std::move(what)};
}
[[noreturn]] inline void copy_fail_errno(std::string what, int err = errno) {
    copy_fail(std::error_code(err, std::generic_category()), std::move(what));
}

inline timespec copy_timespec(std::int64_t ns) {
    std::int64_t s = ns / 1000000000, rest = ns % 1000000000;
    if (rest < 0) {
        rest += 1000000000;
        --s;
    }
    return {static_cast<time_t>(s), static_cast<long>(rest)};
}

inline std::pair<std::string, std::string> copy_split(const std::string& rel) {
    auto slash = rel.rfind('/');
    if (slash == std::string::npos) return {"", rel};
    return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// Unpacks an untrusted archive under one directory (see the banner of copy.hpp).
class untrusted_extractor {
public:
    untrusted_extractor(const std::filesystem::path& dir, copy_rename rename)
        : dir_(dir), rename_(std::move(rename)) {
        root_.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_) copy_fail_errno("open the directory " + dir.string());
    }

    void extract(tar::reader& r, const tar::entry& e) {
        std::string rel = place_of(e);
        if (rel.empty()) {
            // The destination itself, whose metadata stays as it is.
            if (e.type == tar::entry_type::directory) return;
            bad_member(e, "a " + std::string(tar::to_string(e.type)) +
                              " cannot replace the directory " + dir_.string());
        }
        auto [dir, base] = copy_split(rel);
        unique_fd parent = directory(dir, e);
        const int pfd = parent.get();
        // Set-id bits from an untrusted archive would run as the user who copied.
        const mode_t mode = static_cast<mode_t>(e.mode & 01777);
        switch (e.type) {
        case tar::entry_type::directory:
        case tar::entry_type::gnu_dumpdir: {
            struct stat st {};
            if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                !S_ISDIR(st.st_mode) && ::unlinkat(pfd, base.c_str(), 0) != 0)
                copy_fail_errno("unlink " + path_of(rel));
            if (::mkdirat(pfd, base.c_str(), 0700) != 0 && errno != EEXIST)
                copy_fail_errno("mkdir " + path_of(rel));
            // Modes and times once the contents are in: a read-only directory must not stop them.
            dirs_.push_back({rel, mode, e.mtime_ns});
            return;
        }
        case tar::entry_type::regular:
        case tar::entry_type::contiguous: {
            clear_place(pfd, base, rel);
            unique_fd f(::openat(pfd, base.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!f) copy_fail_errno("create " + path_of(rel));
            write_content(r, e, f.get(), rel);
            if (::fchmod(f.get(), mode) != 0) copy_fail_errno("chmod " + path_of(rel));
            timespec t[2] = {copy_timespec(e.atime_ns.value_or(e.mtime_ns)),
                             copy_timespec(e.mtime_ns)};
            if (::futimens(f.get(), t) != 0) copy_fail_errno("set the times of " + path_of(rel));
            return;
        }
        case tar::entry_type::symlink: {
            // Stored as it is: nothing is ever resolved through it (RESOLVE_BENEATH below).
            clear_place(pfd, base, rel);
            if (::symlinkat(e.linkname.c_str(), pfd, base.c_str()) != 0)
                copy_fail_errno("symlink " + path_of(rel) + " -> " + e.linkname);
            timespec t[2] = {copy_timespec(e.mtime_ns), copy_timespec(e.mtime_ns)};
            ::utimensat(pfd, base.c_str(), t, AT_SYMLINK_NOFOLLOW);
            return;
        }
        case tar::entry_type::hard_link: {
            tar::entry target_entry;
            target_entry.name = e.linkname;
            target_entry.offset = e.offset;
            std::string target = place_of(target_entry, "its link target '" + e.linkname + "'");
            if (target.empty()) bad_member(e, "a hard link to the destination directory");
            auto [tdir, tbase] = copy_split(target);
            unique_fd tparent = directory(tdir, e, false);
            struct stat st {};
            if (::fstatat(tparent.get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                S_ISDIR(st.st_mode))
                bad_member(e, "its link target '" + e.linkname + "' is no file extracted here");
            clear_place(pfd, base, rel);
            if (::linkat(tparent.get(), tbase.c_str(), pfd, base.c_str(), 0) != 0)
                copy_fail_errno("hard link " + path_of(rel) + " to " + path_of(target));
            return;
        }
        case tar::entry_type::fifo:
            clear_place(pfd, base, rel);
            if (::mkfifoat(pfd, base.c_str(), mode) != 0) copy_fail_errno("mkfifo " + path_of(rel));
            return;
        case tar::entry_type::char_device:
        case tar::entry_type::block_device:
        case tar::entry_type::gnu_volume:
            return; // see the banner
        case tar::entry_type::gnu_multivol:
            break;
        }
        bad_member(e, "a " + std::string(tar::to_string(e.type)) + " member cannot be extracted");
    }

    // Directories' modes and times, deepest first (their contents changed their times).
    void finish() {
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
            unique_fd d(open_beneath(it->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            if (!d) copy_fail_errno("open " + path_of(it->rel));
            timespec t[2] = {copy_timespec(it->mtime_ns), copy_timespec(it->mtime_ns)};
            if (::fchmod(d.get(), it->mode) != 0 || ::futimens(d.get(), t) != 0)
                copy_fail_errno("set the mode and times of " + path_of(it->rel));
        }
    }

private:
    struct dir_meta {
        std::string rel;
        mode_t mode;
        std::int64_t mtime_ns;
    };

    [[noreturn]] void bad_member(const tar::entry& e, const std::string& why) {
        copy_fail(make_error_code(errc::copy_failed),
                  "tar member '" + e.name + "' at offset " + std::to_string(e.offset) + ": " + why);
    }

    std::string path_of(const std::string& rel) const { return (dir_ / rel).string(); }

    // The member's place under the directory: normalised (".." out of it is an error), then
    // renamed. "" is the directory itself.
    std::string place_of(const tar::entry& e, const std::string& what = "its path") {
        std::error_code ec;
        std::string n = tar::normalize_path(e.name, tar::dotdot_policy::refuse, ec);
        if (ec) bad_member(e, what + " leaves the destination (" + ec.message() + ")");
        std::string rest;
        if (rename_.from.empty()) {
            rest = n.empty() ? "" : "/" + n;
        } else if (n == rename_.from) {
            rest = "";
        } else if (n.size() > rename_.from.size() &&
                   n.compare(0, rename_.from.size(), rename_.from) == 0 &&
                   n[rename_.from.size()] == '/') {
            rest = n.substr(rename_.from.size());
        } else {
            bad_member(e, what + " is not under '" + rename_.from + "', the path asked for");
        }
        std::string out = rename_.to + rest;
        if (!out.empty() && out.front() == '/') out.erase(0, 1);
        return out;
    }

    int open_beneath(const std::string& rel, int flags) {
        copy_open_how how{};
        how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
        how.resolve = copy_resolve_beneath | copy_resolve_no_magiclinks;
        const char* p = rel.empty() ? "." : rel.c_str();
        return static_cast<int>(::syscall(SYS_openat2, root_.get(), p, &how, sizeof how));
    }

    // The directory `rel` under the destination, made (0755) where missing when `create`. A
    // path through a symlink that leads out of the destination is refused (EXDEV).
    unique_fd directory(const std::string& rel, const tar::entry& e, bool create = true) {
        unique_fd fd(open_beneath(rel, O_PATH | O_DIRECTORY));
        if (fd) return fd;
        if (errno == EXDEV || errno == ELOOP)
            bad_member(e, "its directory " + path_of(rel) +
                              " is reached through a symlink that leads out of the destination");
        if (errno != ENOENT || rel.empty() || !create)
            copy_fail_errno("open the directory " + path_of(rel));
        auto [dir, base] = copy_split(rel);
        unique_fd parent = directory(dir, e, create);
        if (::mkdirat(parent.get(), base.c_str(), 0755) != 0 && errno != EEXIST)
            copy_fail_errno("mkdir " + path_of(rel));
        fd.reset(open_beneath(rel, O_PATH | O_DIRECTORY));
        if (!fd) copy_fail_errno("open the directory " + path_of(rel));
        return fd;
    }

    // Room for a new non-directory: what is there is unlinked (never written through); a
    // directory is an error.
    void clear_place(int parent, const std::string& base, const std::string& rel) {
        struct stat st {};
        if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return;
            copy_fail_errno("stat " + path_of(rel));
        }
        if (S_ISDIR(st.st_mode)) copy_fail_errno("replace the directory " + path_of(rel), EISDIR);
        if (::unlinkat(parent, base.c_str(), 0) != 0) copy_fail_errno("unlink " + path_of(rel));
    }

    void write_all(int fd, bytes_view data, std::uint64_t at, const std::string& rel) {
        while (!data.empty()) {
            ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) copy_fail_errno("write " + path_of(rel), n < 0 ? errno : EIO);
            data = data.subspan(static_cast<std::size_t>(n));
            at += static_cast<std::uint64_t>(n);
        }
    }

    // The member's data; a sparse member's holes stay holes.
    void write_content(tar::reader& r, const tar::entry& e, int fd, const std::string& rel) {
        std::error_code ec;
        auto read_fail = [&] {
            copy_fail(ec, "tar member '" + e.name + "' at offset " + std::to_string(e.offset) +
                              ": " + to_string(r.error_detail()));
        };
        if (!e.is_sparse()) {
            std::uint64_t at = 0;
            for (;;) {
                auto piece = r.read_view(1 << 20, ec);
                if (ec) read_fail();
                if (piece.empty()) break;
                write_all(fd, piece, at, rel);
                at += piece.size();
            }
            return;
        }
        for (const auto& seg : e.sparse_map) {
            std::uint64_t at = seg.offset, left = seg.length;
            while (left > 0) {
                auto piece = r.read_stored_view(
                    static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 20)), ec);
                if (ec) read_fail();
                if (piece.empty()) {
                    ec = make_error_code(tar::errc::truncated);
                    read_fail();
                }
                write_all(fd, piece, at, rel);
                at += piece.size();
                left -= piece.size();
            }
        }
        if (::ftruncate(fd, static_cast<off_t>(e.size)) != 0)
            copy_fail_errno("set the size of " + path_of(rel));
    }

    std::filesystem::path dir_;
    copy_rename rename_;
    unique_fd root_;
    std::vector<dir_meta> dirs_;
};

// The next entry, or nullptr at the archive's end; a bad archive is a copy_failure.
inline const tar::entry* next_member(tar::reader& r) {
    std::error_code ec;
    const tar::entry* e = r.next(ec);
    if (ec) copy_fail(ec, "tar stream: " + to_string(r.error_detail()));
    return e;
}

inline void extract_rest(tar::reader& r, untrusted_extractor& x, const tar::entry* e) {
    for (; e; e = next_member(r))
        x.extract(r, *e);
    x.finish();
}

// Runs `f`, turning a copy_failure into ec and `*detail`.
template <class F>
void catch_copy(std::error_code& ec, std::string* detail, F f) {
    ec.clear();
    try {
        f();
    } catch (copy_failure& e) {
        ec = e.ec;
        if (detail) *detail = std::move(e.what);
    } catch (const std::exception& e) {
        ec = make_error_code(errc::copy_failed);
        if (detail) *detail = e.what();
    }
}

// Packs host files (see archive_host_path).
class host_archiver {
public:
    host_archiver(sink_ref out, const host_archive_options& o) : w_(out), o_(o) {}

    void add(int dirfd, const std::string& name, const std::string& member, bool follow) {
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
            copy_fail_errno("stat " + shown(member, name));
        tar::entry e;
        e.name = member;
        e.mode = st.st_mode & 07777;
        e.uid = o_.keep_owner ? st.st_uid : 0;
        e.gid = o_.keep_owner ? st.st_gid : 0;
        e.mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        if (S_ISREG(st.st_mode)) {
            if (st.st_nlink > 1 && !member.empty()) {
                auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, member);
                if (!first) {
                    e.type = tar::entry_type::hard_link;
                    e.typeflag = '1';
                    e.linkname = it->second;
                    put(e);
                    return;
                }
            }
            unique_fd f(
                ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
            if (!f) copy_fail_errno("open " + shown(member, name));
            e.size = static_cast<std::uint64_t>(st.st_size);
            put(e);
            copy_file(f.get(), e.size, shown(member, name));
        } else if (S_ISDIR(st.st_mode)) {
            e.type = tar::entry_type::directory;
            e.typeflag = '5';
            if (!member.empty()) {
                e.name += '/';
                put(e);
            }
            unique_fd d(::openat(dirfd, name.c_str(),
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
            if (!d) copy_fail_errno("open " + shown(member, name));
            for (const auto& child : list(d.get(), shown(member, name)))
                add(d.get(), child, member.empty() ? child : member + "/" + child, false);
        } else if (S_ISLNK(st.st_mode)) {
            e.type = tar::entry_type::symlink;
            e.typeflag = '2';
            std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
            for (;;) {
                ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
                if (n < 0) copy_fail_errno("readlink " + shown(member, name));
                if (static_cast<std::size_t>(n) < target.size()) {
                    target.resize(static_cast<std::size_t>(n));
                    break;
                }
                target.resize(target.size() * 2);
            }
            e.linkname = std::move(target);
            put(e);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
            bool chr = S_ISCHR(st.st_mode), blk = S_ISBLK(st.st_mode);
            e.type = chr   ? tar::entry_type::char_device
                     : blk ? tar::entry_type::block_device
                           : tar::entry_type::fifo;
            e.typeflag = chr ? '3' : blk ? '4' : '6';
            if (chr || blk) {
                e.devmajor = ::major(st.st_rdev);
                e.devminor = ::minor(st.st_rdev);
            }
            put(e);
        }
        // Sockets have no archive form.
    }

    void finish() {
        std::error_code ec;
        w_.finish(ec);
        if (ec) copy_fail(ec, "writing the archive");
    }

    // The name to show in errors: the member, or the host path for the top.
    std::string top;

private:
    std::string shown(const std::string& member, const std::string& name) const {
        return member.empty() ? (top.empty() ? name : top) : top + " (" + member + ")";
    }

    void put(const tar::entry& e) {
        std::error_code ec;
        w_.add(e, ec);
        if (ec) copy_fail(ec, "writing the archive at " + e.name);
    }

    void copy_file(int fd, std::uint64_t size, const std::string& what) {
        std::vector<std::byte> buf(1 << 16);
        std::error_code ec;
        while (size > 0) {
            auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, buf.size()));
            ssize_t n = ::read(fd, buf.data(), want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) copy_fail_errno("read " + what);
            if (n == 0) { // shrank: pad
                std::fill(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(want),
                          std::byte{0});
                n = static_cast<ssize_t>(want);
            }
            w_.write(bytes_view(buf.data(), static_cast<std::size_t>(n)), ec);
            if (ec) copy_fail(ec, "writing the archive at " + what);
            size -= static_cast<std::uint64_t>(n);
        }
    }

    // Sorted: the archive does not depend on readdir's order.
    static std::vector<std::string> list(int dirfd, const std::string& what) {
        int copy = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
        DIR* d = copy < 0 ? nullptr : ::fdopendir(copy);
        if (!d) {
            int err = errno;
            if (copy >= 0) ::close(copy);
            copy_fail_errno("list " + what, err);
        }
        std::vector<std::string> names;
        while (dirent* ent = ::readdir(d)) {
            std::string_view n = ent->d_name;
            if (n != "." && n != "..") names.emplace_back(n);
        }
        ::closedir(d);
        std::sort(names.begin(), names.end());
        return names;
    }

    tar::writer w_;
    host_archive_options o_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// The archive a copy_out sends, as a byte source over the control connection: its stdout_data
// frames, ended by ok (the end) or error (a failure naming the container's path).
class copy_out_source {
public:
    explicit copy_out_source(int fd) : fd_(fd) {}

    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        while (pending_.empty()) {
            if (failed_) return fail(ec, failed_, failure_);
            if (done_) return 0;
            std::string why;
            auto f = receive_frame(fd_, reader_, ec, &why);
            if (ec) return fail(ec, ec, why);
            if (!f)
                return fail(ec, make_error_code(errc::bad_frame),
                            "the supervisor's connection ended inside the archive");
            if (f->type == control_type::stdout_data) {
                frame_.assign(as_chars(f->payload));
                pending_ = as_bytes(frame_);
            } else if (f->type == control_type::ok) {
                done_ = true;
            } else if (f->type == control_type::error) {
                auto e = decode_control_error(f->payload, ec);
                if (ec) return fail(ec, ec, "an error frame that does not decode");
                return fail(ec, make_error_code(errc::copy_failed), e.message);
            } else {
                return fail(ec, make_error_code(errc::bad_frame),
                            "answer of type " + std::to_string(int(f->type)) + " to a copy");
            }
        }
        std::size_t n = std::min(buf.size(), pending_.size());
        std::copy_n(pending_.begin(), n, buf.begin());
        pending_ = pending_.subspan(n);
        return n;
    }

    // Reads to the supervisor's last word (after the tar reader has stopped at the archive's end
    // marker): a failure reported after the archive is still one.
    void drain() {
        std::vector<std::byte> buf(1 << 16);
        std::error_code ec;
        while (read_some(buf, ec) > 0) {
        }
    }

    // Why the supervisor's stream failed ("" while it has not).
    const std::string& failure() const noexcept { return failure_; }

private:
    std::size_t fail(std::error_code& out, std::error_code e, std::string why) {
        out = e;
        failed_ = e;
        failure_ = std::move(why);
        return 0;
    }

    int fd_;
    control_reader reader_{true};
    std::string frame_;
    bytes_view pending_;
    bool done_ = false;
    std::error_code failed_;
    std::string failure_;
};

// A sink of stdin_data frames to the supervisor (a copy_in's archive).
class copy_in_sink {
public:
    explicit copy_in_sink(int fd) : fd_(fd) {}
    void write(bytes_view data, std::error_code& ec) {
        while (!data.empty()) {
            auto n = std::min<std::size_t>(data.size(), 1 << 16);
            send_all(fd_, encode_control_frame(control_type::stdin_data, data.first(n)), ec);
            if (ec) return;
            data = data.subspan(n);
        }
    }
    void finish(std::error_code&) {}

private:
    int fd_;
};

// Connects to the running container's supervisor and sends one request; `shown` is the
// container as errors name it.
inline unique_fd copy_request(const std::filesystem::path& root, std::string_view ref,
                              control_type type, const std::string& path, std::string& shown) {
    std::error_code ec;
    std::string why;
    auto s = running_container(root, ref, ec, &why);
    if (ec) copy_fail(ec, why.empty() ? std::string(ref) : why);
    shown = s.name.empty() ? s.id.substr(0, 12) : s.name;
    auto c = connect_control(container_dir(root, s.id), ec);
    if (ec) copy_fail(ec, shown);
    send_all(c.get(), encode_control_frame(type, as_bytes(path)), ec);
    if (ec) copy_fail(ec, shown);
    return c;
}

// The supervisor's ok, or its error as a copy_failure naming the container.
inline void copy_answer(int fd, const std::string& shown) {
    control_reader reader(true);
    std::error_code ec;
    std::string why;
    auto f = receive_frame(fd, reader, ec, &why);
    if (ec) copy_fail(ec, shown + ": " + why);
    if (!f) copy_fail(make_error_code(errc::not_running), shown);
    if (f->type == control_type::ok) return;
    if (f->type == control_type::error) {
        auto e = decode_control_error(f->payload, ec);
        if (ec) copy_fail(ec, shown + ": an error frame that does not decode");
        copy_fail(make_error_code(errc::copy_failed), shown + ": " + e.message);
    }
    copy_fail(make_error_code(errc::bad_frame),
              shown + ": answer of type " + std::to_string(int(f->type)) + " to a copy");
}

inline path_info stat_path_in(const std::filesystem::path& root, std::string_view ref,
                              const std::string& path, std::string& shown) {
    auto c = copy_request(root, ref, control_type::path_stat, path, shown);
    control_reader reader(true);
    std::error_code ec;
    std::string why;
    auto f = receive_frame(c.get(), reader, ec, &why);
    if (ec) copy_fail(ec, shown + ": " + why);
    if (!f) copy_fail(make_error_code(errc::not_running), shown);
    if (f->type == control_type::error) {
        auto e = decode_control_error(f->payload, ec);
        if (ec) copy_fail(ec, shown + ": an error frame that does not decode");
        copy_fail(make_error_code(errc::copy_failed), shown + ":" + path + ": " + e.message);
    }
    if (f->type != control_type::path_info)
        copy_fail(make_error_code(errc::bad_frame),
                  shown + ": answer of type " + std::to_string(int(f->type)) + " to a stat");
    auto info = path_info_from_json(as_chars(f->payload), ec, &why);
    if (ec) copy_fail(ec, shown + ": " + why);
    return info;
}

// A container path as docker cp reads it: absolute (a relative one is taken from "/", as docker
// takes it from the container's working directory, which cz's supervisor does not keep).
inline std::string container_path(const std::string& p) {
    if (p.empty()) return "/";
    return p.front() == '/' ? p : "/" + p;
}

inline bool ends_with_dot(std::string_view p) {
    return p == "." || (p.size() >= 2 && p.substr(p.size() - 2) == "/.");
}

// The last component of a path without trailing "/" and "/." ("" for the root).
inline std::string last_component(std::string p) {
    for (;;) {
        if (p.size() > 1 && p.back() == '/')
            p.pop_back();
        else if (p.size() >= 2 && p.substr(p.size() - 2) == "/.")
            p.resize(p.size() - 2);
        else
            break;
    }
    if (p.empty() || p == "/" || p == ".") return "";
    return p.substr(p.rfind('/') + 1);
}

// The directory a path is in ("/" for the root's children; "." for a bare relative name).
inline std::string parent_path(std::string p, bool absolute) {
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return absolute ? "/" : ".";
    return slash == 0 ? "/" : p.substr(0, slash);
}

} // namespace detail

CZ_DECL void extract_untrusted(source_ref archive, const std::filesystem::path& dir,
                               const copy_rename& rename, std::error_code& ec,
                               std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        tar::reader r(archive);
        detail::untrusted_extractor x(dir, rename);
        detail::extract_rest(r, x, detail::next_member(r));
    });
}

CZ_DECL void archive_host_path(const std::filesystem::path& path, std::string_view name,
                               sink_ref out, const host_archive_options& options,
                               std::error_code& ec, std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        detail::host_archiver a(out, options);
        a.top = path.string();
        a.add(AT_FDCWD, path.string(), std::string(name), options.follow);
        a.finish();
    });
}

CZ_DECL path_info stat_in_container(const std::filesystem::path& root, std::string_view ref,
                                    const std::string& path, std::error_code& ec,
                                    std::string* detail) {
    path_info info;
    detail::catch_copy(ec, detail, [&] {
        std::string shown;
        info = detail::stat_path_in(root, ref, detail::container_path(path), shown);
    });
    return info;
}

CZ_DECL void copy_out_archive(const std::filesystem::path& root, std::string_view ref,
                              const std::string& path, sink_ref out, std::error_code& ec,
                              std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        std::string shown;
        auto c = detail::copy_request(root, ref, control_type::copy_out,
                                      detail::container_path(path), shown);
        detail::copy_out_source src(c.get());
        std::error_code cec;
        cz::copy(src, out, cec);
        if (!src.failure().empty())
            detail::copy_fail(make_error_code(errc::copy_failed),
                              shown + ":" + path + ": " + src.failure());
        if (cec) detail::copy_fail(cec, "writing the archive of " + shown + ":" + path);
    });
}

CZ_DECL void copy_in_archive(const std::filesystem::path& root, std::string_view ref,
                             const std::string& dir, source_ref archive, std::error_code& ec,
                             std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        std::string shown;
        auto path = detail::container_path(dir);
        auto info = detail::stat_path_in(root, ref, path, shown);
        if (!info.exists || !info.is_dir())
            detail::copy_fail(make_error_code(errc::copy_failed),
                              shown + ":" + dir + ": " +
                                  (info.exists ? "not a directory" : "no such directory"));
        auto c = detail::copy_request(root, ref, control_type::copy_in, path, shown);
        detail::copy_in_sink sink(c.get());
        std::error_code cec;
        cz::copy(archive, sink, cec);
        if (cec) detail::copy_fail(cec, "sending the archive to " + shown + ":" + dir);
        detail::send_all(c.get(), encode_control_frame(control_type::stdin_eof), cec);
        if (cec) detail::copy_fail(cec, shown);
        detail::copy_answer(c.get(), shown);
    });
}

CZ_DECL void copy_from_container(const std::filesystem::path& root, std::string_view ref,
                                 const std::string& src, const std::filesystem::path& dest,
                                 const copy_options& options, std::error_code& ec,
                                 std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        const std::string path = detail::container_path(src);
        const std::string name = detail::last_component(path);
        const bool contents = detail::ends_with_dot(path);
        // A trailing "/" (or -L) follows the source: archiving "SRC/." does, members "./...".
        const bool through = contents || path.back() == '/' || options.follow_link || name.empty();
        std::string ask = path;
        if (through && !contents) {
            while (ask.size() > 1 && ask.back() == '/')
                ask.pop_back();
            ask += ask == "/" ? "." : "/.";
        }
        // With -L on a file, "FILE/." fails: the file is asked for itself then (below).
        std::string shown;
        if (options.follow_link && !contents && path.back() != '/') {
            auto info = detail::stat_path_in(root, ref, path, shown);
            if (info.exists && !info.is_dir()) ask = path;
        }
        auto c = detail::copy_request(root, ref, control_type::copy_out, ask, shown);
        detail::copy_out_source source(c.get());
        tar::reader r(source);
        auto failed = [&](const std::string& why) {
            detail::copy_fail(make_error_code(errc::copy_failed), shown + ":" + src + ": " + why);
        };
        std::error_code rec;
        const tar::entry* first = r.next(rec);
        if (!source.failure().empty()) failed(source.failure());
        if (rec)
            detail::copy_fail(rec,
                              shown + ":" + src + ": tar stream: " + to_string(r.error_detail()));
        // Members: "NAME..." for a path asked for itself, "./..." for one asked through.
        const bool dot_members = detail::ends_with_dot(ask);
        const std::string top = dot_members ? "" : name;
        const bool is_dir = dot_members || (first && first->type == tar::entry_type::directory);
        if (!first && !dot_members) failed("the container sent no archive");

        std::error_code sec;
        auto st = std::filesystem::status(dest, sec);
        const bool exists = std::filesystem::exists(st);
        std::filesystem::path into;
        copy_rename rn{top, ""};
        const std::string dest_text = dest.string();
        const std::string dest_name = detail::last_component(dest_text);
        if (exists && std::filesystem::is_directory(st)) {
            into = dest;
            rn.to = is_dir && contents ? "" : name;
        } else if (exists) {
            if (is_dir)
                detail::copy_fail(make_error_code(errc::copy_failed),
                                  dest_text + ": cannot copy a directory to a file");
            into = detail::parent_path(dest_text, dest.is_absolute());
            rn.to = dest_name;
        } else {
            if (!is_dir && !dest_text.empty() && dest_text.back() == '/')
                detail::copy_fail(make_error_code(errc::copy_failed),
                                  dest_text + ": the destination directory must exist");
            into = detail::parent_path(dest_text, dest.is_absolute());
            if (!std::filesystem::is_directory(into, sec))
                detail::copy_fail(make_error_code(errc::copy_failed),
                                  dest_text + ": its directory " + into.string() +
                                      " does not exist");
            rn.to = dest_name;
        }
        detail::untrusted_extractor x(into, rn);
        try {
            detail::extract_rest(r, x, first);
        } catch (detail::copy_failure& e) {
            if (!source.failure().empty()) failed(source.failure());
            e.what = shown + ":" + src + " to " + dest_text + ": " + e.what;
            throw;
        }
        source.drain();
        if (!source.failure().empty()) failed(source.failure());
    });
}

CZ_DECL void copy_to_container(const std::filesystem::path& root, std::string_view ref,
                               const std::filesystem::path& src, const std::string& dest,
                               const copy_options& options, std::error_code& ec,
                               std::string* detail) {
    detail::catch_copy(ec, detail, [&] {
        const std::string src_text = src.string();
        const bool contents = detail::ends_with_dot(src_text);
        const bool trailing = !src_text.empty() && src_text.back() == '/';
        const bool follow = options.follow_link || contents || trailing;
        struct stat st {};
        if ((follow ? ::stat(src_text.c_str(), &st) : ::lstat(src_text.c_str(), &st)) != 0)
            detail::copy_fail(make_error_code(errc::copy_failed),
                              src_text + ": " + std::generic_category().message(errno));
        const bool is_dir = S_ISDIR(st.st_mode);
        if ((contents || trailing) && !is_dir)
            detail::copy_fail(make_error_code(errc::copy_failed), src_text + ": not a directory");
        std::string name = detail::last_component(src_text);
        if (name.empty() || name == "..") {
            // "/" or ".." name no member: their contents go in.
            name.clear();
        }

        const std::string path = detail::container_path(dest);
        std::string shown;
        auto info = detail::stat_path_in(root, ref, path, shown);
        auto failed = [&](const std::string& why) {
            detail::copy_fail(make_error_code(errc::copy_failed), shown + ":" + dest + ": " + why);
        };
        std::string into, member;
        if (info.exists && info.is_dir()) {
            into = path;
            member = is_dir && contents ? "" : name;
        } else if (info.exists) {
            if (is_dir) failed("cannot copy a directory to a file");
            into = detail::parent_path(path, true);
            member = detail::last_component(path);
        } else {
            if (!is_dir && path.back() == '/') failed("the destination directory must exist");
            into = detail::parent_path(path, true);
            auto parent = detail::stat_path_in(root, ref, into, shown);
            if (!parent.exists || !parent.is_dir())
                failed("its directory " + into + " does not exist");
            member = detail::last_component(path);
        }
        if (member.empty() && !is_dir) failed("not a name for a file");

        auto c = detail::copy_request(root, ref, control_type::copy_in, into, shown);
        detail::copy_in_sink sink(c.get());
        host_archive_options ho;
        ho.follow = follow;
        ho.keep_owner = options.archive;
        std::error_code aec;
        std::string why;
        archive_host_path(src, member, sink, ho, aec, &why);
        if (aec) {
            // The supervisor still needs the stream's end; the guest then reports a cut archive,
            // which the host's error explains better.
            std::error_code ignored;
            detail::send_all(c.get(), encode_control_frame(control_type::stdin_eof), ignored);
            detail::copy_fail(aec, why);
        }
        detail::send_all(c.get(), encode_control_frame(control_type::stdin_eof), aec);
        if (aec) detail::copy_fail(aec, shown);
        detail::copy_answer(c.get(), shown);
    });
}

} // namespace cz::container
