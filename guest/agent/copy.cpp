#include "copy.hpp"

#include <cz/core/unique_fd.hpp>
#include <cz/tar/path.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

namespace cz::guest {

namespace {

// Thrown inside this file, caught at the two entry points.
[[noreturn]] void fail(cz_agent_ErrorCode code, int err, std::string message) {
    throw copy_error{code, err, std::move(message)};
}

[[noreturn]] void fail_errno(const std::string& what, int err = errno) {
    fail(err == ENOENT ? cz_agent_ErrorCode_ERROR_NOT_FOUND : cz_agent_ErrorCode_ERROR_SYSTEM, err,
         what + ": " + std::generic_category().message(err));
}

timespec to_timespec(std::int64_t ns) {
    std::int64_t s = ns / 1000000000, rest = ns % 1000000000;
    if (rest < 0) {
        rest += 1000000000;
        --s;
    }
    return {static_cast<time_t>(s), static_cast<long>(rest)};
}

std::pair<std::string, std::string> split_last(const std::string& rel) {
    auto slash = rel.rfind('/');
    if (slash == std::string::npos) return {"", rel};
    return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// --- extraction --------------------------------------------------------------------------------

class extractor {
public:
    // `target` is made (with its parents) inside `root`, resolved there as if `root` were "/".
    extractor(const std::string& target, const std::string& root) : target_(target) {
        root_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_) fail_errno("open the root " + root);
        std::error_code ec;
        std::string rel = tar::normalize_path(target, tar::dotdot_policy::clamp, ec);
        if (ec)
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "the target " + target + ": " + ec.message());
        // From here on, the target is the root that members resolve in.
        root_ = directory(rel);
    }

    void run(source_ref archive) {
        tar::reader r(archive);
        for (;;) {
            std::error_code ec;
            const tar::entry* e = r.next(ec);
            if (ec) bad_archive(r, ec);
            if (!e) break;
            extract(r, *e);
        }
        // Directories get their times last: creating their contents changed them.
        for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
            unique_fd dir(open_in_root(it->first, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            timespec t[2] = {to_timespec(it->second), to_timespec(it->second)};
            if (!dir || ::futimens(dir.get(), t) != 0) fail_errno("set the times of " + it->first);
        }
        // The archive may end before the stream does (GNU tar pads to a 10 KiB record): read the
        // rest, so that the host's writes complete.
        std::byte sink[16384];
        std::error_code ec;
        while (archive.read_some(sink, ec) > 0) {
        }
    }

private:
    [[noreturn]] void bad_archive(tar::reader& r, std::error_code ec) {
        auto where = to_string(r.error_detail());
        fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
             "tar stream: " + (where.empty() ? "" : where + ": ") + ec.message());
    }

    // openat2 under the target: absolute names and symlinks resolve as if it were "/".
    int open_in_root(const std::string& rel, int flags) {
        open_how how{};
        how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        const char* p = rel.empty() ? "." : rel.c_str();
        return static_cast<int>(::syscall(SYS_openat2, root_.get(), p, &how, sizeof how));
    }

    // The directory `rel` (under the target), made with mode 0755 where missing, as GNU tar
    // makes a member's missing parents.
    unique_fd directory(const std::string& rel) {
        unique_fd fd(open_in_root(rel, O_PATH | O_DIRECTORY));
        if (fd || errno != ENOENT || rel.empty()) {
            if (!fd) fail_errno("open the directory " + (rel.empty() ? target_ : rel));
            return fd;
        }
        auto [dir, base] = split_last(rel);
        unique_fd parent = directory(dir);
        if (::mkdirat(parent.get(), base.c_str(), 0755) != 0 && errno != EEXIST)
            fail_errno("mkdir " + rel);
        fd.reset(open_in_root(rel, O_PATH | O_DIRECTORY));
        if (!fd) fail_errno("open the directory " + rel);
        return fd;
    }

    // Makes room for a new non-directory `base` in `parent`: an existing file, symlink or device
    // there is unlinked (never written through); a directory is an error.
    void clear_place(int parent, const std::string& base, const std::string& rel) {
        struct stat st {};
        if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return;
            fail_errno("stat " + rel);
        }
        if (S_ISDIR(st.st_mode)) fail_errno("replace " + rel, EISDIR);
        if (::unlinkat(parent, base.c_str(), 0) != 0) fail_errno("unlink " + rel);
    }

    void owner(int parent, const std::string& base, const tar::entry& e, const std::string& rel) {
        if (e.uid > 0xfffffffeu || e.gid > 0xfffffffeu)
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "tar member '" + rel + "': uid or gid out of range");
        if (::fchownat(parent, base.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                       AT_SYMLINK_NOFOLLOW | (base.empty() ? AT_EMPTY_PATH : 0)) != 0)
            fail_errno("chown " + rel);
    }

    void times(int parent, const std::string& base, const tar::entry& e, const std::string& rel) {
        timespec t[2] = {to_timespec(e.atime_ns.value_or(e.mtime_ns)), to_timespec(e.mtime_ns)};
        if (::utimensat(parent, base.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0)
            fail_errno("set the times of " + rel);
    }

    void extract(tar::reader& r, const tar::entry& e) {
        std::error_code ec;
        std::string rel = tar::normalize_path(e.name, tar::dotdot_policy::refuse, ec);
        if (ec)
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "tar member '" + e.name + "' at offset " + std::to_string(e.offset) +
                     ": its path leaves the target " + target_ + " (" + ec.message() + ")");
        if (rel.empty()) {
            // "." or "./": the target itself, whose metadata stays as it is.
            if (e.type == tar::entry_type::directory) return;
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "tar member '" + e.name + "' at offset " + std::to_string(e.offset) + ": a " +
                     std::string(tar::to_string(e.type)) + " cannot replace the target");
        }
        auto [dir, base] = split_last(rel);
        unique_fd parent = directory(dir);
        const int pfd = parent.get();
        const mode_t mode = static_cast<mode_t>(e.mode & 07777);
        switch (e.type) {
        case tar::entry_type::directory:
        case tar::entry_type::gnu_dumpdir: {
            struct stat st {};
            if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                !S_ISDIR(st.st_mode) && ::unlinkat(pfd, base.c_str(), 0) != 0)
                fail_errno("unlink " + rel);
            if (::mkdirat(pfd, base.c_str(), 0700) != 0 && errno != EEXIST)
                fail_errno("mkdir " + rel);
            unique_fd d(
                ::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!d) fail_errno("open " + rel);
            owner(d.get(), "", e, rel);
            if (::fchmod(d.get(), mode) != 0) fail_errno("chmod " + rel);
            dir_times_.emplace_back(rel, e.mtime_ns);
            return;
        }
        case tar::entry_type::regular:
        case tar::entry_type::contiguous: {
            clear_place(pfd, base, rel);
            unique_fd f(::openat(pfd, base.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!f) fail_errno("create " + rel);
            fd_sink out(f.get());
            cz::copy(r, out, ec);
            if (ec) {
                if (!r.error_detail().empty()) bad_archive(r, ec);
                fail_errno("write " + rel, ec.value());
            }
            owner(f.get(), "", e, rel);
            if (::fchmod(f.get(), mode) != 0) fail_errno("chmod " + rel);
            timespec t[2] = {to_timespec(e.atime_ns.value_or(e.mtime_ns)), to_timespec(e.mtime_ns)};
            if (::futimens(f.get(), t) != 0) fail_errno("set the times of " + rel);
            return;
        }
        case tar::entry_type::symlink:
            clear_place(pfd, base, rel);
            if (::symlinkat(e.linkname.c_str(), pfd, base.c_str()) != 0)
                fail_errno("symlink " + rel + " -> " + e.linkname);
            owner(pfd, base, e, rel);
            times(pfd, base, e, rel);
            return;
        case tar::entry_type::hard_link: {
            std::string target = tar::normalize_path(e.linkname, tar::dotdot_policy::refuse, ec);
            if (ec || target.empty())
                fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                     "tar member '" + e.name + "' at offset " + std::to_string(e.offset) +
                         ": its link target '" + e.linkname + "' is outside the target " + target_);
            unique_fd source(open_in_root(target, O_PATH | O_NOFOLLOW));
            if (!source) fail_errno("hard link " + rel + " to " + target);
            clear_place(pfd, base, rel);
            if (::linkat(source.get(), "", pfd, base.c_str(), AT_EMPTY_PATH) != 0)
                fail_errno("hard link " + rel + " to " + target);
            return;
        }
        case tar::entry_type::char_device:
        case tar::entry_type::block_device:
        case tar::entry_type::fifo: {
            mode_t type = e.type == tar::entry_type::char_device    ? S_IFCHR
                          : e.type == tar::entry_type::block_device ? S_IFBLK
                                                                    : S_IFIFO;
            clear_place(pfd, base, rel);
            if (::mknodat(pfd, base.c_str(), type | mode, ::makedev(e.devmajor, e.devminor)) != 0)
                fail_errno("mknod " + rel);
            owner(pfd, base, e, rel);
            if (::fchmodat(pfd, base.c_str(), mode, 0) != 0) fail_errno("chmod " + rel);
            times(pfd, base, e, rel);
            return;
        }
        case tar::entry_type::gnu_volume:
            return; // a label: nothing to extract
        case tar::entry_type::gnu_multivol:
            break;
        }
        fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
             "tar member '" + e.name + "' at offset " + std::to_string(e.offset) + ": a " +
                 std::string(tar::to_string(e.type)) + " member cannot be extracted");
    }

    std::string target_;
    unique_fd root_;
    std::vector<std::pair<std::string, std::int64_t>> dir_times_;
};

// --- archiving ---------------------------------------------------------------------------------

class archiver {
public:
    explicit archiver(sink_ref out) : w_(out) {}

    // `name` in directory `dirfd`, as member `member`.
    void add(int dirfd, const std::string& name, const std::string& member) {
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            fail_errno("stat " + member);
        tar::entry e;
        e.name = member;
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        if (S_ISREG(st.st_mode)) {
            if (st.st_nlink > 1) {
                auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, member);
                if (!first) {
                    e.type = tar::entry_type::hard_link;
                    e.typeflag = '1';
                    e.linkname = it->second;
                    put(e);
                    return;
                }
            }
            unique_fd f(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!f) fail_errno("open " + member);
            e.size = static_cast<std::uint64_t>(st.st_size);
            put(e);
            copy_file(f.get(), e.size, member);
        } else if (S_ISDIR(st.st_mode)) {
            e.type = tar::entry_type::directory;
            e.typeflag = '5';
            if (!member.empty()) {
                e.name += '/';
                put(e);
            }
            unique_fd d(
                ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!d) fail_errno("open " + member);
            for (const auto& child : list(d.get(), member))
                add(d.get(), child, member.empty() ? child : member + "/" + child);
        } else if (S_ISLNK(st.st_mode)) {
            e.type = tar::entry_type::symlink;
            e.typeflag = '2';
            std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
            for (;;) {
                ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
                if (n < 0) fail_errno("readlink " + member);
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
        // Sockets have no archive form (GNU tar skips them too).
    }

    void finish() {
        std::error_code ec;
        w_.finish(ec);
        if (ec) fail_errno("write the archive", ec.value());
    }

private:
    void put(const tar::entry& e) {
        std::error_code ec;
        w_.add(e, ec);
        if (ec) fail_errno("write the archive at member " + e.name, ec.value());
    }

    // Exactly `size` bytes of the file: cut where it grew, zeros where it shrank.
    void copy_file(int fd, std::uint64_t size, const std::string& member) {
        std::byte buf[65536];
        std::error_code ec;
        while (size > 0) {
            std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, sizeof buf));
            ssize_t n = ::read(fd, buf, want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail_errno("read " + member);
            if (n == 0) { // shrank: pad
                std::fill(buf, buf + want, std::byte{0});
                n = static_cast<ssize_t>(want);
            }
            w_.write(bytes_view(buf, static_cast<std::size_t>(n)), ec);
            if (ec) fail_errno("write the archive at member " + member, ec.value());
            size -= static_cast<std::uint64_t>(n);
        }
    }

    // The names in a directory, sorted: the archive does not depend on readdir's order.
    static std::vector<std::string> list(int dirfd, const std::string& member) {
        int copy = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
        DIR* d = copy < 0 ? nullptr : ::fdopendir(copy);
        if (!d) {
            int err = errno;
            if (copy >= 0) ::close(copy);
            fail_errno("list " + (member.empty() ? std::string("/") : member), err);
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
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

} // namespace

bool extract_tar(source_ref archive, const std::string& target, copy_error& err,
                 const std::string& root) {
    try {
        if (target.empty() || target.front() != '/')
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "path must be an absolute path, not '" + target + "'");
        extractor(target, root).run(archive);
        return true;
    } catch (copy_error& e) {
        err = std::move(e);
    } catch (const std::exception& e) {
        err = {cz_agent_ErrorCode_ERROR_INTERNAL, 0, e.what()};
    }
    return false;
}

bool stat_path(const std::string& path, bool follow, const std::string& root, struct ::stat& st,
               copy_error& err) {
    try {
        if (path.empty() || path.front() != '/')
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "path must be an absolute path, not '" + path + "'");
        unique_fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd) fail_errno("open the root " + root);
        open_how how{};
        how.flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        unique_fd f(static_cast<int>(
            ::syscall(SYS_openat2, root_fd.get(), path.c_str(), &how, sizeof how)));
        if (!f) fail_errno("stat " + path);
        if (::fstatat(f.get(), "", &st, AT_EMPTY_PATH) != 0) fail_errno("stat " + path);
        return true;
    } catch (copy_error& e) {
        err = std::move(e);
    } catch (const std::exception& e) {
        err = {cz_agent_ErrorCode_ERROR_INTERNAL, 0, e.what()};
    }
    return false;
}

bool archive_path(const std::string& path, sink_ref out, copy_error& err, const std::string& root) {
    try {
        if (path.empty() || path.front() != '/')
            fail(cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                 "path must be an absolute path, not '" + path + "'");
        // The members are named after the last component; "/" itself has none.
        std::string p = path;
        while (p.size() > 1 && p.back() == '/')
            p.pop_back();
        auto slash = p.rfind('/');
        std::string dir = slash == 0 ? "/" : p.substr(0, slash), base = p.substr(slash + 1);
        archiver a(out);
        unique_fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd) fail_errno("open the root " + root);
        // The directory the path is in, resolved inside the root: its symlinks and ".." stay
        // there. The last component itself is never followed (a symlink is archived as one).
        open_how how{};
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        unique_fd parent(
            static_cast<int>(::syscall(SYS_openat2, root_fd.get(), dir.c_str(), &how, sizeof how)));
        if (!parent) fail_errno("open " + dir);
        if (base.empty())
            a.add(parent.get(), ".", "");
        else
            a.add(parent.get(), base, base);
        a.finish();
        return true;
    } catch (copy_error& e) {
        err = std::move(e);
    } catch (const std::exception& e) {
        err = {cz_agent_ErrorCode_ERROR_INTERNAL, 0, e.what()};
    }
    return false;
}

} // namespace cz::guest
