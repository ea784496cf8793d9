#include "rpc.hpp"

#include "../init/log.hpp"
#include "../init/rootfs.hpp"
#include "net.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

namespace cz::guest {

namespace {

using agent::get_string;

// An RPC that failed: the answer's code, errno and message.
struct rpc_error {
    cz_agent_ErrorCode code;
    int sys_errno;
    std::string message;
};

[[noreturn]] void fail_errno(int err, const std::string& what) {
    auto code = err == ENOENT   ? cz_agent_ErrorCode_ERROR_NOT_FOUND
                : err == EEXIST ? cz_agent_ErrorCode_ERROR_ALREADY_EXISTS
                                : cz_agent_ErrorCode_ERROR_SYSTEM;
    throw rpc_error{code, err, what + ": " + std::generic_category().message(err)};
}

[[noreturn]] void fail_invalid(const std::string& what) {
    throw rpc_error{cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0, what};
}

// Paths in requests are absolute: there is no working directory to be relative to.
std::string absolute_path(std::string_view path, const char* field) {
    if (path.empty() || path.front() != '/')
        fail_invalid(std::string(field) + " must be an absolute path, not '" + std::string(path) +
                     "'");
    return std::string(path);
}

void make_directories(const std::string& path, mode_t mode) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) fail_errno(ec.value(), "mkdir -p " + path);
    ::chmod(path.c_str(), mode);
}

void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
    auto* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(errno, "write " + path);
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Replaces `path` as a whole (temporary file, then rename): a reader sees the old or the new.
void replace_file(const std::string& path, std::string_view contents, mode_t mode) {
    auto tmp = path + ".cz-tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) fail_errno(errno, "create " + tmp);
    try {
        write_all(fd, contents.data(), contents.size(), tmp);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fail_errno(err, "rename " + tmp + " to " + path);
    }
}

// <root>/etc, created when missing.
std::string etc_file(std::string_view root, const char* name) {
    std::string dir = root.empty() ? "/etc" : absolute_path(root, "root") + "/etc";
    make_directories(dir, 0755);
    return dir + "/" + name;
}

// --- one function per RPC ---------------------------------------------------------------------

void do_mount(const cz_agent_Mount& m) {
    auto target = absolute_path(get_string(m.target), "target");
    if (m.create_target) make_directories(target, 0755);
    std::string source(get_string(m.source)), type(get_string(m.fstype)), data(get_string(m.data));
    if (::mount(source.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(),
                static_cast<unsigned long>(m.flags), data.empty() ? nullptr : data.c_str()) != 0)
        fail_errno(errno, "mount " + type + " " + source + " on " + target);
}

void do_umount(const cz_agent_Umount& u) {
    auto target = absolute_path(get_string(u.target), "target");
    if (::umount2(target.c_str(), static_cast<int>(u.flags)) != 0)
        fail_errno(errno, "umount " + target);
}

void do_mkdir(const cz_agent_Mkdir& m) {
    auto path = absolute_path(get_string(m.path), "path");
    mode_t mode = m.mode ? static_cast<mode_t>(m.mode & 07777) : 0755;
    if (m.parents) {
        make_directories(path, mode);
    } else if (::mkdir(path.c_str(), mode) != 0) {
        fail_errno(errno, "mkdir " + path);
    }
}

void do_write_file(const cz_agent_WriteFile& w) {
    auto path = absolute_path(get_string(w.path), "path");
    if (w.create_parents) make_directories(std::filesystem::path(path).parent_path(), 0755);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (w.append ? O_APPEND : O_TRUNC);
    mode_t mode = w.mode ? static_cast<mode_t>(w.mode & 07777) : 0644;
    int fd = ::open(path.c_str(), flags, mode);
    if (fd < 0) fail_errno(errno, "open " + path);
    auto data = w.data.view();
    try {
        write_all(fd, data.data(), data.size(), path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    if (::close(fd) != 0) fail_errno(errno, "close " + path);
}

} // namespace

void fill_stat_result(const struct stat& st, cz_agent_StatResult& out) {
    auto ns = [](const timespec& t) { return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; };
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    out.mode = st.st_mode;
    out.nlink = st.st_nlink;
    out.uid = st.st_uid;
    out.gid = st.st_gid;
    out.rdev = st.st_rdev;
    out.size = static_cast<std::uint64_t>(st.st_size);
    out.blocks = static_cast<std::uint64_t>(st.st_blocks);
    out.atime_ns = ns(st.st_atim);
    out.mtime_ns = ns(st.st_mtim);
    out.ctime_ns = ns(st.st_ctim);
}

namespace {

void do_stat(const cz_agent_Stat& s, cz_agent_StatResult& out) {
    auto path = absolute_path(get_string(s.path), "path");
    struct stat st {};
    if ((s.follow_symlinks ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0)
        fail_errno(errno, "stat " + path);
    fill_stat_result(st, out);
}

void do_sysctl(const cz_agent_Sysctl& s) {
    std::string key(get_string(s.key));
    // Dotted names only: no way out of /proc/sys.
    bool ok = !key.empty() && key.front() != '.' && key.back() != '.' &&
              key.find("..") == std::string::npos;
    for (char c : key)
        ok =
            ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    if (!ok) fail_invalid("sysctl key '" + key + "' is not a dotted name");
    std::string path = "/proc/sys/" + key;
    for (auto& c : path)
        if (c == '.') c = '/';
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "sysctl " + key);
    auto value = get_string(s.value);
    try {
        write_all(fd, value.data(), value.size(), path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
}

void do_set_time(const cz_agent_SetTime& t) {
    if (t.nanoseconds >= 1000000000) fail_invalid("nanoseconds must be below 1e9");
    timespec ts{static_cast<time_t>(t.seconds), static_cast<long>(t.nanoseconds)};
    if (::clock_settime(CLOCK_REALTIME, &ts) != 0) fail_errno(errno, "clock_settime");
}

void do_set_hostname(const cz_agent_SetHostname& h) {
    auto name = get_string(h.hostname);
    if (::sethostname(name.data(), name.size()) != 0)
        fail_errno(errno, "sethostname '" + std::string(name) + "'");
}

// RNDADDENTROPY's argument: <linux/random.h>'s struct rand_pool_info with room for the seed.
struct entropy_input {
    int entropy_count;
    int buf_size;
    unsigned char buf[sizeof(cz_agent_Awaken{}.seed.bytes)];
};

void do_awaken(const cz_agent_Awaken& a) {
    if (a.seed.size < 16) fail_invalid("Awaken: seed must be at least 16 bytes");
    // The seed first: nothing below may draw on the template's random state.
    int fd = ::open("/dev/urandom", O_RDWR | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "open /dev/urandom");
    entropy_input in{};
    in.entropy_count = static_cast<int>(a.seed.size * 8);
    in.buf_size = static_cast<int>(a.seed.size);
    std::memcpy(in.buf, a.seed.bytes, a.seed.size);
    // SAFETY: entropy_input is rand_pool_info's header followed by buf_size bytes of buf.
    bool added = ::ioctl(fd, RNDADDENTROPY, &in) == 0;
    int err = errno;
    bool reseeded = added && ::ioctl(fd, RNDRESEEDCRNG) == 0;
    if (added && !reseeded) err = errno;
    ::close(fd);
    if (!reseeded) fail_errno(err, added ? "RNDRESEEDCRNG" : "RNDADDENTROPY");
    cz_agent_SetTime t{a.seconds, a.nanoseconds};
    do_set_time(t);
    auto name = get_string(a.hostname);
    if (!name.empty() && ::sethostname(name.data(), name.size()) != 0)
        fail_errno(errno, "sethostname '" + std::string(name) + "'");
    auto id = get_string(a.machine_id);
    if (!id.empty()) {
        if (id.size() != 32 || !std::all_of(id.begin(), id.end(), [](char c) {
                return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            }))
            fail_invalid("Awaken: machine_id must be 32 lowercase hex digits");
        make_directories("/etc", 0755);
        replace_file("/etc/machine-id", std::string(id) + "\n", 0444);
    }
}

// What the kernel cached of `device` (the template's placeholder disk, read at probe) is dropped.
void flush_block_cache(const std::string& device) {
    int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(errno, "open " + device);
    int r = ::ioctl(fd, BLKFLSBUF, 0);
    int err = errno;
    ::close(fd);
    if (r != 0) fail_errno(err, "BLKFLSBUF " + device);
}

void do_mount_rootfs(const cz_agent_MountRootfs& m) {
    rootfs_options opts;
    opts.image_device = absolute_path(get_string(m.image_device), "image_device");
    if (auto scratch = get_string(m.scratch_device); !scratch.empty())
        opts.scratch_device = absolute_path(scratch, "scratch_device");
    flush_block_cache(opts.image_device);
    if (!opts.scratch_device.empty()) flush_block_cache(opts.scratch_device);
    try {
        mount_rootfs(opts);
    } catch (const std::system_error& e) {
        throw rpc_error{cz_agent_ErrorCode_ERROR_SYSTEM, e.code().value(), e.what()};
    }
}

void do_configure_dns(const cz_agent_ConfigureDns& d) {
    std::string text;
    for (pb_size_t i = 0; i < d.nameservers_count; ++i)
        text += "nameserver " + std::string(get_string(d.nameservers[i])) + "\n";
    auto line = [&](const char* word, const auto& items, pb_size_t count) {
        if (count == 0) return;
        text += word;
        for (pb_size_t i = 0; i < count; ++i)
            text += " " + std::string(get_string(items[i]));
        text += "\n";
    };
    line("search", d.search, d.search_count);
    line("options", d.options, d.options_count);
    replace_file(etc_file(get_string(d.root), "resolv.conf"), text, 0644);
}

void do_configure_hosts(const cz_agent_ConfigureHosts& h) {
    std::string text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    for (pb_size_t i = 0; i < h.entries_count; ++i) {
        const auto& e = h.entries[i];
        text += get_string(e.address);
        for (pb_size_t j = 0; j < e.names_count; ++j)
            text += (j == 0 ? "\t" : " ") + std::string(get_string(e.names[j]));
        text += "\n";
    }
    replace_file(etc_file(get_string(h.root), "hosts"), text, 0644);
}

// The network RPCs (net.hpp) answer with a net_error; here it becomes the request's Error.
void check(net_error e) {
    if (e) throw rpc_error{e.code, e.sys_errno, std::move(e.message)};
}

void set_done(agent::response& resp) {
    resp.which_result = cz_agent_Response_done_tag;
}

} // namespace

void set_error(agent::response& resp, cz_agent_ErrorCode code, int sys_errno,
               const std::string& message) {
    resp.which_result = cz_agent_Response_error_tag;
    auto& e = resp.result.error;
    e = cz_agent_Error_init_zero;
    e.code = code;
    e.sys_errno = sys_errno;
    // Truncated to the field rather than lost: the start says what failed.
    std::size_t n = std::min(message.size(), sizeof e.message - 1);
    std::memcpy(e.message, message.data(), n);
    e.message[n] = '\0';
    for (std::size_t i = 0; i < n; ++i)
        if (e.message[i] == '\0') e.message[i] = ' ';
}

void fill_link_statistics(cz_agent_StatisticsResult& out) {
    std::error_code ec;
    std::vector<std::string> names;
    // Incremented with an error_code: the range-for's ++ would throw.
    for (std::filesystem::directory_iterator it("/sys/class/net", ec), end; !ec && it != end;
         it.increment(ec))
        names.push_back(it->path().filename().string());
    std::sort(names.begin(), names.end());
    out.links_count = 0;
    constexpr std::size_t capacity = sizeof out.links / sizeof out.links[0];
    for (const auto& name : names) {
        if (out.links_count == capacity) break;
        auto& l = out.links[out.links_count];
        l = cz_agent_LinkStats_init_zero;
        agent::set_string(l.interface, name, ec);
        if (ec) continue; // longer than IFNAMSIZ: not an interface name
        auto counter = [&](const char* file) -> std::uint64_t {
            std::ifstream in("/sys/class/net/" + name + "/statistics/" + file);
            std::uint64_t v = 0;
            return in >> v ? v : 0;
        };
        l.rx_bytes = counter("rx_bytes");
        l.rx_packets = counter("rx_packets");
        l.rx_errors = counter("rx_errors");
        l.rx_dropped = counter("rx_dropped");
        l.tx_bytes = counter("tx_bytes");
        l.tx_packets = counter("tx_packets");
        l.tx_errors = counter("tx_errors");
        l.tx_dropped = counter("tx_dropped");
        ++out.links_count;
    }
}

bool answer_request(const agent::request& req, agent::response& resp) {
    const auto& rpc = req.rpc;
    try {
        switch (req.which_rpc) {
        case cz_agent_Request_mount_tag:
            do_mount(rpc.mount);
            break;
        case cz_agent_Request_umount_tag:
            do_umount(rpc.umount);
            break;
        case cz_agent_Request_mkdir_tag:
            do_mkdir(rpc.mkdir);
            break;
        case cz_agent_Request_write_file_tag:
            do_write_file(rpc.write_file);
            break;
        case cz_agent_Request_stat_tag:
            resp.which_result = cz_agent_Response_stat_tag;
            resp.result.stat = cz_agent_StatResult_init_zero;
            do_stat(rpc.stat, resp.result.stat);
            return false;
        case cz_agent_Request_sysctl_tag:
            do_sysctl(rpc.sysctl);
            break;
        case cz_agent_Request_set_time_tag:
            do_set_time(rpc.set_time);
            break;
        case cz_agent_Request_sync_tag:
            ::sync();
            break;
        case cz_agent_Request_set_hostname_tag:
            do_set_hostname(rpc.set_hostname);
            break;
        case cz_agent_Request_configure_dns_tag:
            do_configure_dns(rpc.configure_dns);
            break;
        case cz_agent_Request_configure_hosts_tag:
            do_configure_hosts(rpc.configure_hosts);
            break;
        case cz_agent_Request_ip_link_set_tag:
            check(ip_link_set(rpc.ip_link_set));
            break;
        case cz_agent_Request_ip_addr_add_tag:
            check(ip_addr_add(rpc.ip_addr_add));
            break;
        case cz_agent_Request_ip_route_add_link_tag:
            check(ip_route_add_link(rpc.ip_route_add_link));
            break;
        case cz_agent_Request_ip_route_add_default_tag:
            check(ip_route_add_default(rpc.ip_route_add_default));
            break;
        case cz_agent_Request_awaken_tag:
            do_awaken(rpc.awaken);
            break;
        case cz_agent_Request_mount_rootfs_tag:
            do_mount_rootfs(rpc.mount_rootfs);
            break;
        case cz_agent_Request_shutdown_tag:
            ::sync();
            set_done(resp);
            return true;
        default:
            set_error(resp, cz_agent_ErrorCode_ERROR_UNIMPLEMENTED, 0,
                      "this cz-init does not serve request kind " + std::to_string(req.which_rpc));
            return false;
        }
        set_done(resp);
    } catch (const rpc_error& e) {
        log(log_level::debug, "request {} failed: {}", req.id, e.message);
        set_error(resp, e.code, e.sys_errno, e.message);
    } catch (const std::exception& e) {
        set_error(resp, cz_agent_ErrorCode_ERROR_INTERNAL, 0, e.what());
    }
    return false;
}

} // namespace cz::guest
