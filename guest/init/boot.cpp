#include "boot.hpp"

#include "log.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace cz::guest {

namespace {

struct early_mount {
    const char* source;
    const char* target;
    const char* type;
    unsigned long flags;
    const char* data;
};

constexpr unsigned long nosuid_nodev_noexec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

// /dev/pts: the guest's own ptys (cz-init's); containers mount their own devpts instance.
constexpr early_mount early_mounts[] = {
    {"proc", "/proc", "proc", nosuid_nodev_noexec, nullptr},
    {"sysfs", "/sys", "sysfs", nosuid_nodev_noexec, nullptr},
    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"},
    {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
    {"shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
    {"run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"},
    {"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid_nodev_noexec, "nsdelegate"},
};

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

} // namespace

void mount_early_filesystems() {
    for (const auto& m : early_mounts) {
        if (::mkdir(m.target, 0755) != 0 && errno != EEXIST)
            throw_errno(errno, std::string("mkdir ") + m.target);
        if (::mount(m.source, m.target, m.type, m.flags, m.data) != 0 && errno != EBUSY)
            throw_errno(errno, std::string("mount ") + m.type + " on " + m.target);
    }
}

namespace {

// Whether / is the kernel's initial rootfs (mountinfo's mount point "/" of type rootfs).
bool root_is_initramfs() {
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
        // "id parent major:minor root mountpoint options... - fstype source superoptions"
        std::istringstream fields(line);
        std::string id, parent, dev, root, mountpoint;
        fields >> id >> parent >> dev >> root >> mountpoint;
        if (mountpoint != "/") continue;
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream tail(line.substr(dash + 3));
        std::string fstype;
        tail >> fstype;
        return fstype == "rootfs";
    }
    return false;
}

} // namespace

void leave_initramfs() {
    if (!root_is_initramfs()) return;
    struct stat root {};
    if (::stat("/", &root) != 0) throw_errno(errno, "stat /");
    // The initramfs's own files go (mount points, on other devices, stay).
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/", ec)) {
        struct stat st {};
        if (::lstat(entry.path().c_str(), &st) != 0 || st.st_dev != root.st_dev) continue;
        if (S_ISDIR(st.st_mode) && std::filesystem::is_empty(entry.path(), ec))
            continue; // mount points to be
        std::filesystem::remove_all(entry.path(), ec);
    }
    const char* new_root = "/newroot";
    if (::mkdir(new_root, 0755) != 0 && errno != EEXIST) throw_errno(errno, "mkdir /newroot");
    if (::mount("tmpfs", new_root, "tmpfs", 0, "mode=0755") != 0)
        throw_errno(errno, "mount tmpfs on /newroot");
    for (const char* m : {"/dev", "/proc", "/sys", "/run"}) {
        std::string target = std::string(new_root) + m;
        if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST)
            throw_errno(errno, "mkdir " + target);
        if (::mount(m, target.c_str(), nullptr, MS_MOVE, nullptr) != 0)
            throw_errno(errno, std::string("move ") + m + " to " + target);
    }
    for (const char* dir : {"/newroot/tmp", "/newroot/etc", "/newroot/root"})
        ::mkdir(dir, 0755);
    ::chmod("/newroot/tmp", 01777);
    if (::chdir(new_root) != 0) throw_errno(errno, "chdir /newroot");
    if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) throw_errno(errno, "move /newroot to /");
    if (::chroot(".") != 0) throw_errno(errno, "chroot");
    if (::chdir("/") != 0) throw_errno(errno, "chdir /");
}

std::vector<std::string> enable_cgroup_controllers(const std::filesystem::path& root) {
    std::ifstream available(root / "cgroup.controllers");
    std::vector<std::string> names;
    std::string request;
    for (std::string name; available >> name;) {
        names.push_back(name);
        request += (request.empty() ? "+" : " +") + name;
    }
    if (request.empty()) return names;
    int fd = ::open((root / "cgroup.subtree_control").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "open " + (root / "cgroup.subtree_control").string());
    ssize_t n = ::write(fd, request.data(), request.size());
    int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(request.size()))
        throw_errno(n < 0 ? err : EIO, "enable cgroup controllers '" + request + "'");
    return names;
}

std::vector<std::string> load_kernel_modules(const std::filesystem::path& dir) {
    std::vector<std::string> failures;
    std::ifstream order(dir / "load-order");
    for (std::string name; std::getline(order, name);) {
        if (name.empty()) continue;
        auto path = dir / name;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            failures.push_back(name + ": " + std::generic_category().message(errno));
            continue;
        }
        long rc = ::syscall(SYS_finit_module, fd, "", 0);
        int err = errno;
        ::close(fd);
        if (rc != 0 && err != EEXIST)
            failures.push_back(name + ": " + std::generic_category().message(err));
        else
            log(log_level::debug, "loaded module {}", name);
    }
    return failures;
}

void power_off(bool reboot) noexcept {
    ::sync();
    ::reboot(reboot ? RB_AUTOBOOT : RB_POWER_OFF);
    log(log_level::error, "power off refused: {}", std::generic_category().message(errno));
    for (;;)
        ::pause();
}

} // namespace cz::guest
