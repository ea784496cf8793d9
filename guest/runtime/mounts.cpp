#include "runtime/mounts.hpp"

#include "runtime/devices.hpp"

#include <cz/core/unique_fd.hpp>

#include <cerrno>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "runtime/syscalls.hpp"

namespace cz::guest {

namespace {

std::error_code last_errno() {
    return {errno, std::system_category()};
}

bool fail_errno(error& err, const std::string& what) {
    err.set(last_errno(), what);
    return false;
}

int open_in_root(int rootfd, const std::string& rel, int flags) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how));
}

std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < path.size()) {
        auto j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        if (j > i && path.compare(i, j - i, ".") != 0) out.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

std::string fd_path(int fd, error& err) {
    char link[64], buf[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    auto n = ::readlink(link, buf, sizeof buf - 1);
    if (n < 0) {
        fail_errno(err, std::string("readlink ") + link);
        return {};
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

// The flags a bind remount must keep: outside a user namespace the kernel would let cz drop
// nosuid/nodev/noexec, but the container should never gain them by becoming read-only.
unsigned long kept_flags(const std::string& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return 0;
    unsigned long f = 0;
    if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) f |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

bool remount_readonly(const std::string& path, error& err) {
    if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(path),
                nullptr) != 0)
        return fail_errno(err, "remount " + path + " read-only");
    return true;
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool mount_one(const std::string& rootfs, const mount_spec& m, error& err) {
    const std::string where = "mount " + m.destination;
    // A bind of a file needs a file to land on; everything else lands on a directory.
    bool file_target = m.bind() && !m.source.empty() && !is_directory(m.source);
    std::string target = resolve_in_root(rootfs, m.destination, file_target, err);
    if (err) return false;
    if (m.bind()) {
        if (::mount(m.source.c_str(), target.c_str(), nullptr, m.flags & (MS_BIND | MS_REC),
                    nullptr) != 0)
            return fail_errno(err, where + ": bind " + m.source);
        // The bind itself ignores every other flag: they take a remount.
        unsigned long extra = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        if (extra && ::mount(nullptr, target.c_str(), nullptr,
                             MS_REMOUNT | MS_BIND | extra | kept_flags(target), nullptr) != 0)
            return fail_errno(err, where + ": remount with its options");
    } else {
        // "cgroup" in a spec means the container's own cgroup tree; the guest kernel has only
        // cgroup v2, and the container's cgroup namespace makes it see its own subtree as root.
        std::string type = m.type == "cgroup" ? "cgroup2" : m.type;
        const char* data = m.data.empty() ? nullptr : m.data.c_str();
        if (::mount(m.source.c_str(), target.c_str(), type.c_str(), m.flags & ~MS_REMOUNT, data) !=
            0)
            return fail_errno(err, where + ": mount " + type);
    }
    if (m.propagation && ::mount(nullptr, target.c_str(), nullptr, m.propagation, nullptr) != 0)
        return fail_errno(err, where + ": set propagation");
    return true;
}

bool is_path_missing(int e) {
    return e == ENOENT || e == ENOTDIR;
}

} // namespace

namespace {

// Resolves `path` below the O_PATH `root`, creating what is missing. A component that is a
// symlink to nowhere (an image's /var/run -> /run before /run exists) has its target created
// instead, inside the root, as runc's securejoin-based MkdirAll does. `depth` bounds link chains
// as the kernel's ELOOP does.
unique_fd resolve_fd(int root, const std::string& path, bool last_is_file, int depth, error& err) {
    if (depth > 40) {
        errno = ELOOP;
        fail_errno(err, "resolve " + path + " in the root filesystem");
        return {};
    }
    auto parts = components(path);
    std::string rel = ".";
    unique_fd cur(open_in_root(root, rel, O_PATH | O_DIRECTORY));
    for (std::size_t i = 0; i < parts.size(); ++i) {
        bool last = i + 1 == parts.size();
        std::string next = rel + "/" + parts[i];
        unique_fd fd(open_in_root(root, next, O_PATH));
        if (!fd && errno == ENOENT) {
            struct stat st {};
            if (::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode)) {
                char target[4096];
                auto n = ::readlinkat(cur.get(), parts[i].c_str(), target, sizeof target - 1);
                if (n < 0) {
                    fail_errno(err, "readlink " + path + " in the root filesystem");
                    return {};
                }
                std::string t(target, static_cast<std::size_t>(n));
                // A relative target is relative to the link's directory.
                std::string link_target = t.front() == '/' ? t : rel + "/" + t;
                if (!resolve_fd(root, link_target, last && last_is_file, depth + 1, err)) return {};
            } else {
                // cur is the resolved parent, inside the root; a single name cannot leave it.
                int rc = last && last_is_file
                             ? ::mknodat(cur.get(), parts[i].c_str(), S_IFREG | 0644, 0)
                             : ::mkdirat(cur.get(), parts[i].c_str(), 0755);
                if (rc != 0 && errno != EEXIST) {
                    fail_errno(err, "create " + path + " in the root filesystem");
                    return {};
                }
            }
            fd.reset(open_in_root(root, next, O_PATH));
        }
        if (!fd) {
            fail_errno(err, "resolve " + path + " in the root filesystem");
            return {};
        }
        cur = std::move(fd);
        rel = std::move(next);
    }
    return cur;
}

} // namespace

std::string resolve_in_root(const std::string& rootfs, const std::string& path, bool last_is_file,
                            error& err) {
    unique_fd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
        fail_errno(err, "open root filesystem " + rootfs);
        return {};
    }
    unique_fd fd = resolve_fd(root.get(), path, last_is_file, 0, err);
    if (!fd) return {};
    return fd_path(fd.get(), err);
}

bool prepare_rootfs(const runtime_spec& spec, error& err) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return fail_errno(err, "make mounts private");
    const std::string& rootfs = spec.root.path;
    if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return fail_errno(err, "bind the root filesystem " + rootfs);
    bool fresh_dev = false;
    for (const auto& m : spec.mounts) {
        if (!mount_one(rootfs, m, err)) return false;
        if (m.destination == "/dev" || m.destination == "/dev/") fresh_dev = !m.bind();
    }
    if (fresh_dev) {
        std::string dev = resolve_in_root(rootfs, "/dev", false, err);
        if (err || !create_devices(dev, err)) return false;
    }
    return true;
}

bool pivot_into(const std::string& rootfs, error& err) {
    // runc's way: pivot_root(".", ".") stacks the old root on the new one; detaching "." then
    // drops it, with no put_old directory left behind in the container.
    unique_fd old_root(::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    unique_fd new_root(::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!old_root || !new_root) return fail_errno(err, "open / and " + rootfs);
    if (::fchdir(new_root.get()) != 0) return fail_errno(err, "chdir " + rootfs);
    if (sys::pivot_root(".", ".") != 0) return fail_errno(err, "pivot_root " + rootfs);
    if (::fchdir(old_root.get()) != 0) return fail_errno(err, "chdir to the old root");
    // Slave first, so that detaching cannot propagate an unmount anywhere.
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
        return fail_errno(err, "make the old root a slave");
    if (::umount2(".", MNT_DETACH) != 0) return fail_errno(err, "detach the old root");
    if (::chdir("/") != 0) return fail_errno(err, "chdir /");
    return true;
}

bool protect_paths(const runtime_spec& spec, error& err) {
    for (const auto& p : spec.masked_paths) {
        // A path that does not exist needs no mask (runc skips it too).
        int rc = is_directory(p) ? ::mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, "size=0k")
                                 : ::mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
        if (rc != 0 && !is_path_missing(errno)) return fail_errno(err, "mask " + p);
    }
    for (const auto& p : spec.readonly_paths) {
        if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
            if (is_path_missing(errno)) continue;
            return fail_errno(err, "bind read-only path " + p);
        }
        if (!remount_readonly(p, err)) return false;
    }
    if (spec.root.readonly && !remount_readonly("/", err)) return false;
    return true;
}

} // namespace cz::guest
