#include "runtime/devices.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace cz::guest {

namespace {

struct device {
    const char* name;
    unsigned major, minor;
};

constexpr device default_devices[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

constexpr const char* default_links[][2] = {
    {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

bool make_device(const std::string& dev, const device& d, error& err) {
    std::string path = dev + "/" + d.name;
    // umask must not narrow the mode: the devices are for every user of the container.
    mode_t old = ::umask(0);
    int rc = ::mknod(path.c_str(), S_IFCHR | 0666, makedev(d.major, d.minor));
    ::umask(old);
    if (rc == 0 || errno == EEXIST) return true;
    if (errno != EPERM) {
        err.set({errno, std::system_category()}, "mknod " + path);
        return false;
    }
    // Without CAP_MKNOD (cz-init inside a container of its own, as in some test setups), a bind
    // mount of the host's node gives the same device.
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) ::close(fd);
    std::string host = std::string("/dev/") + d.name;
    if (::mount(host.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        err.set({errno, std::system_category()}, "bind " + host + " onto " + path);
        return false;
    }
    return true;
}

} // namespace

bool create_devices(const std::string& dev, error& err) {
    for (const auto& d : default_devices)
        if (!make_device(dev, d, err)) return false;
    for (const auto& l : default_links) {
        std::string path = dev + "/" + l[0];
        if (::symlink(l[1], path.c_str()) != 0 && errno != EEXIST) {
            err.set({errno, std::system_category()}, "symlink " + path);
            return false;
        }
    }
    return true;
}

} // namespace cz::guest
