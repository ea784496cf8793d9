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

std::optional<std::uint64_t> single_value(std::string_view text, std::uint64_t when_max) {
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (text == "max") return when_max;
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    return v;
}

std::vector<io_stat_line> parse_io_stat(std::string_view text) {
    std::vector<io_stat_line> out;
    auto number = [](std::string_view digits, auto& v) {
        auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        return ec == std::errc() && ptr == digits.data() + digits.size() && !digits.empty();
    };
    while (!text.empty()) {
        auto end = text.find('\n');
        auto line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        auto space = line.find(' ');
        auto device = line.substr(0, space);
        auto colon = device.find(':');
        io_stat_line l;
        if (colon == std::string_view::npos || !number(device.substr(0, colon), l.major) ||
            !number(device.substr(colon + 1), l.minor))
            continue;
        auto rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
        while (!rest.empty()) {
            auto next = rest.find(' ');
            auto field = rest.substr(0, next);
            rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
            auto eq = field.find('=');
            if (eq == std::string_view::npos) continue;
            auto key = field.substr(0, eq), value = field.substr(eq + 1);
            std::uint64_t* slot = key == "rbytes"   ? &l.rbytes
                                  : key == "wbytes" ? &l.wbytes
                                  : key == "rios"   ? &l.rios
                                  : key == "wios"   ? &l.wios
                                                    : nullptr;
            if (slot && !number(value, *slot)) *slot = 0;
        }
        out.push_back(l);
    }
    return out;
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

std::uint64_t oom_kill_count(int memory_events) {
    char buf[1024]; // memory.events is a few short lines
    ssize_t n;
    do
        n = ::pread(memory_events, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return 0;
    return keyed_value(std::string_view(buf, static_cast<std::size_t>(n)), "oom_kill").value_or(0);
}

cgroup_statistics read_cgroup_statistics(const std::string& cgroup_path) {
    cgroup_statistics st;
    std::string text;
    error err;
    auto read = [&](const char* file) { return read_cgroup_file(cgroup_path, file, text, err); };
    auto keyed = [&](const char* key) { return keyed_value(text, key).value_or(0); };
    auto single = [&] { return single_value(text).value_or(0); };
    if (read("memory.current")) {
        st.has_memory = true;
        st.memory_current = single();
        if (read("memory.max")) st.memory_max = single();
        if (read("memory.swap.current")) st.swap_current = single();
        if (read("memory.stat")) {
            st.anon = keyed("anon");
            st.file = keyed("file");
        }
        if (read("memory.events")) {
            st.high_events = keyed("high");
            st.max_events = keyed("max");
            st.oom_events = keyed("oom");
            st.oom_kill_events = keyed("oom_kill");
        }
    }
    if (read("cpu.stat")) {
        st.has_cpu = true;
        st.usage_usec = keyed("usage_usec");
        st.user_usec = keyed("user_usec");
        st.system_usec = keyed("system_usec");
        st.nr_periods = keyed("nr_periods");
        st.nr_throttled = keyed("nr_throttled");
        st.throttled_usec = keyed("throttled_usec");
    }
    if (read("pids.current")) {
        st.has_pids = true;
        st.pids_current = single();
        if (read("pids.max")) st.pids_max = single();
    }
    if (read("io.stat")) st.io = parse_io_stat(text);
    return st;
}

} // namespace cz::guest
