// Out-of-line definitions for cz/vm/shared_dir.hpp.
#pragma once

#include <cz/vm/shared_dir.hpp>

#include <cz/core/unique_fd.hpp>
#include <cz/vm/process.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace cz::vm {

CZ_DECL std::string_view to_string(shared_dir_transport t) noexcept {
    return t == shared_dir_transport::virtiofs ? "virtio-fs" : "virtio-9p";
}

CZ_DECL std::string find_virtiofsd() {
    if (const char* env = std::getenv("CZ_VIRTIOFSD"))
        return *env == '\0' ? std::string() : find_program(env);
    for (const char* p : {debian_virtiofsd, "/usr/libexec/virtiofsd"})
        if (::access(p, X_OK) == 0) return p;
    return find_program("virtiofsd");
}

CZ_DECL shared_dir_transport choose_shared_dir_transport(const std::string& virtiofsd) {
    return !virtiofsd.empty() && ::geteuid() == 0 ? shared_dir_transport::virtiofs
                                                  : shared_dir_transport::virtio_9p;
}

CZ_DECL bool valid_shared_dir_tag(std::string_view tag) noexcept {
    // 9p's mount_tag is at most 31 bytes; virtio-fs allows 36.
    if (tag.empty() || tag.size() > 31) return false;
    for (char c : tag) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

CZ_DECL std::vector<std::string> qemu_virtiofs_args(const std::filesystem::path& socket,
                                                    const std::string& tag,
                                                    const std::string& chardev_id) {
    return {"-chardev", fmt::format("socket,id={},path={}", chardev_id, socket.string()), "-device",
            fmt::format("vhost-user-fs-device,chardev={},tag={}", chardev_id, tag)};
}

CZ_DECL std::vector<std::string> virtiofsd_args(const std::string& virtiofsd, const shared_dir& dir,
                                                int fd) {
    // QEMU's -o option syntax: a comma inside the path would be read as the next option; the
    // caller (qemu_shared_dir_device) refuses such paths.
    return {virtiofsd, fmt::format("--fd={}", fd), "-o", "source=" + dir.host.string(),
            // Namespaces and pivot_root into the directory: nothing outside it is reachable.
            "-o", "sandbox=namespace",
            // Attributes cached for a second, as kata does: a folder both sides edit stays
            // coherent within that, and reads are not a round trip each.
            "-o", "cache=auto",
            // The guest's owners, modes and xattrs reach the host as it sets them.
            "-o", "xattr", "-o", "log_level=warn",
            // One fd per inode the guest looks up: a tree of 10,000 files needs more than the
            // usual 1024.
            "--rlimit-nofile=65536"};
}

CZ_DECL std::vector<std::string> qemu_9p_args(const shared_dir& dir, const std::string& fsdev_id,
                                              bool as_root) {
    return {"-fsdev",
            fmt::format("local,id={},path={},security_model={},readonly={}", fsdev_id,
                        dir.host.string(), as_root ? "passthrough" : "none",
                        dir.read_only ? "on" : "off"),
            "-device", fmt::format("virtio-9p-device,fsdev={},mount_tag={}", fsdev_id, dir.tag)};
}

CZ_DECL std::string guest_mount_type(shared_dir_transport t) {
    return t == shared_dir_transport::virtiofs ? "virtiofs" : "9p";
}

CZ_DECL std::vector<std::string> guest_mount_options(shared_dir_transport t) {
    if (t == shared_dir_transport::virtiofs) return {};
    // 512000 bytes: the largest message the virtio transport of Linux 6.1 takes.
    return {"trans=virtio", "version=9p2000.L", "msize=512000"};
}

namespace detail {

// A Unix socket listening at `path`, not close-on-exec (virtiofsd inherits it).
inline unique_fd listening_unix_socket(const std::filesystem::path& path, std::error_code& ec) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    auto p = path.string();
    if (p.size() >= sizeof addr.sun_path) {
        ec = std::make_error_code(std::errc::filename_too_long);
        return {};
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    ::unlink(p.c_str()); // one a previous device left in the VM's own directory
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    // SAFETY: addr is a sockaddr_un; the length passed is its size.
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 1) != 0) {
        ec = last_system_error();
        return {};
    }
    return fd;
}

} // namespace detail

CZ_DECL device_hook qemu_shared_dir_device(shared_dir dir, shared_dir_transport transport,
                                           std::size_t index, std::string virtiofsd) {
    return [dir = std::move(dir), transport, index,
            virtiofsd = std::move(virtiofsd)](device_context& d) -> std::vector<std::string> {
        const std::string what = fmt::format("shared directory {}", dir.host.string());
        if (!valid_shared_dir_tag(dir.tag)) {
            d.fail(errc::invalid_config,
                   fmt::format("{}: tag \"{}\": 1-31 of A-Z a-z 0-9 _ . -", what, dir.tag));
            return {};
        }
        struct stat st {};
        if (!dir.host.is_absolute() || ::stat(dir.host.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            d.fail(errc::invalid_config, what + ": not an absolute path to a directory");
            return {};
        }
        // QEMU's option syntax would split the path at a comma.
        if (dir.host.string().find(',') != std::string::npos) {
            d.fail(errc::invalid_config, what + ": QEMU cannot take a path with a comma");
            return {};
        }
        if (transport == shared_dir_transport::virtio_9p)
            return qemu_9p_args(dir, fmt::format("czfs{}", index), ::geteuid() == 0);

        if (virtiofsd.empty()) {
            d.fail(errc::vmm_not_found, what + ": no virtiofsd");
            return {};
        }
        std::error_code ec;
        auto socket = d.state_dir() / fmt::format("virtiofsd-{}.sock", index);
        auto listener = detail::listening_unix_socket(socket, ec);
        if (ec) {
            d.fail(ec, what + ": socket " + socket.string() + ": " + ec.message());
            return {};
        }
        auto log_path = d.state_dir() / fmt::format("virtiofsd-{}.log", index);
        unique_fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        spawn_options so;
        so.argv = virtiofsd_args(virtiofsd, dir, listener.get());
        so.keep_fds = {listener.get()};
        so.stdout_fd = so.stderr_fd = log ? log.get() : -1;
        if (dir.read_only) so.read_only_dirs = {dir.host.string()};
        auto child = std::make_shared<child_process>(child_process::spawn(so, ec));
        if (ec) {
            d.fail(ec, fmt::format("{}: starting {}: {}", what, virtiofsd, ec.message()));
            return {};
        }
        // Our copy of the listening socket closes here (`listener`): if virtiofsd dies before
        // QEMU connects, QEMU's connect is refused and its start fails, instead of waiting on a
        // socket nobody serves.
        // Once QEMU is gone virtiofsd has lost its connection and exits; one that lingers is
        // killed (child_process's destructor reaps it either way).
        d.on_exit([child] {
            std::error_code ignored;
            child->kill(SIGTERM, ignored);
            for (int i = 0; i < 100 && !child->try_reap(ignored); ++i)
                ::usleep(10000);
            child->kill(SIGKILL, ignored);
            child->wait(ignored);
        });
        return qemu_virtiofs_args(socket, dir.tag, fmt::format("czfs{}", index));
    };
}

} // namespace cz::vm
