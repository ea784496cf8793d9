#include "runtime/cgroup.hpp"

#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

namespace cz::guest {

namespace {

constexpr long cgroup2_magic = 0x63677270; // CGROUP2_SUPER_MAGIC, linux/magic.h

// Reads up to 64 KiB of `path` (a cgroup interface file: a few lines); errno is left set on
// failure.
bool read_small_file(const std::string& path, std::string& out) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    out.clear();
    char buf[4096];
    for (;;) {
        auto n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            return false;
        }
        if (n == 0 || out.size() >= (64u << 10)) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

bool write_file(const std::string& path, const std::string& value, error& err) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        err.set({errno, std::system_category()}, "open " + path);
        return false;
    }
    auto n = ::write(fd, value.data(), value.size());
    int e = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(value.size())) {
        err.set({n < 0 ? e : EIO, std::system_category()}, "write \"" + value + "\" to " + path);
        return false;
    }
    return true;
}

bool has_word(const std::string& list, const std::string& word) {
    std::istringstream in(list);
    std::string w;
    while (in >> w)
        if (w == word) return true;
    return false;
}

std::string limit(std::int64_t v) {
    return v < 0 ? "max" : std::to_string(v);
}

} // namespace

std::string needed_controllers(const resources_spec& r) {
    std::string out;
    auto add = [&](const char* c) { out += out.empty() ? c : std::string(" ") + c; };
    if (r.memory_limit) add("memory");
    if (r.cpu_quota || r.cpu_period) add("cpu");
    if (r.pids_limit) add("pids");
    return out;
}

bool check_cgroup_root(const std::string& root, const std::string& controllers, error& err) {
    struct statfs fs {};
    if (::statfs(root.c_str(), &fs) != 0 || fs.f_type != cgroup2_magic) {
        err.set(errc::cgroup_unavailable, "cgroup root " + root + ": not a cgroup v2 directory");
        return false;
    }
    std::string available;
    read_small_file(root + "/cgroup.controllers", available);
    std::istringstream in(controllers);
    std::string c;
    while (in >> c)
        if (!has_word(available, c)) {
            while (!available.empty() && available.back() == '\n')
                available.pop_back();
            err.set(errc::cgroup_unavailable, "cgroup root " + root + ": controller " + c +
                                                  " not available (it has: \"" + available + "\")");
            return false;
        }
    return true;
}

bool create_cgroup(const std::string& root, const std::string& name, const resources_spec& r,
                   cgroup& out, error& err) {
    // One directory directly under the root: a name must not climb out of it or into another.
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        err.set(std::make_error_code(std::errc::invalid_argument),
                "cgroup name \"" + name + "\": must be one path component");
        return false;
    }
    if (::mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
        err.set({errno, std::system_category()}, "mkdir cgroup root " + root);
        return false;
    }
    std::string controllers = needed_controllers(r);
    if (!check_cgroup_root(root, controllers, err)) return false;
    if (!controllers.empty()) {
        std::string enable;
        std::istringstream in(controllers);
        std::string c;
        while (in >> c)
            enable += (enable.empty() ? "+" : " +") + c;
        if (!write_file(root + "/cgroup.subtree_control", enable, err)) return false;
    }
    out.path = root + "/" + name;
    if (::mkdir(out.path.c_str(), 0755) != 0) {
        err.set({errno, std::system_category()}, "mkdir cgroup " + out.path);
        return false;
    }
    bool ok = true;
    if (r.memory_limit) ok = write_file(out.path + "/memory.max", limit(*r.memory_limit), err);
    if (ok && (r.cpu_quota || r.cpu_period))
        ok = write_file(out.path + "/cpu.max",
                        limit(r.cpu_quota.value_or(-1)) + " " +
                            std::to_string(r.cpu_period.value_or(100000)),
                        err);
    if (ok && r.pids_limit) ok = write_file(out.path + "/pids.max", limit(*r.pids_limit), err);
    if (ok) {
        out.dir.reset(::open(out.path.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
        if (!out.dir) {
            err.set({errno, std::system_category()}, "open cgroup " + out.path);
            ok = false;
        }
    }
    if (!ok) ::rmdir(out.path.c_str());
    return ok;
}

bool remove_cgroup(const std::string& path, error& err) {
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
        err.set({errno, std::system_category()}, "rmdir cgroup " + path);
        return false;
    }
    return true;
}

std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
    while (!text.empty()) {
        auto end = text.find('\n');
        auto line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        if (line.size() <= key.size() || line.substr(0, key.size()) != key ||
            line[key.size()] != ' ')
            continue;
        auto digits = line.substr(key.size() + 1);
        std::uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
        return v;
    }
    return std::nullopt;
}

bool read_cgroup_file(const std::string& cgroup_path, const char* file, std::string& out,
                      error& err) {
    std::string path = cgroup_path + "/" + file;
    if (read_small_file(path, out)) return true;
    err.set({errno, std::system_category()}, "read " + path);
    return false;
}

std::uint64_t oom_kill_count(const std::string& cgroup_path) {
    std::string text;
    error err;
    if (!read_cgroup_file(cgroup_path, "memory.events", text, err)) return 0;
    return keyed_value(text, "oom_kill").value_or(0);
}

} // namespace cz::guest
