#include "channel.hpp"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <thread>

namespace cz::guest {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

// /dev/vportNpM of the port named `name` (/sys/class/virtio-ports/vportNpM/name), or "".
std::string find_serial_port(const std::string& name) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/class/virtio-ports", ec)) {
        std::ifstream in(entry.path() / "name");
        std::string port_name;
        if (std::getline(in, port_name) && port_name == name)
            return "/dev/" + entry.path().filename().string();
    }
    return {};
}

// Waits until the host side of the virtio-serial port `fd` is connected. While it is not, the
// driver reports the port hung up and reads return end-of-file at once, so a session would end
// as soon as it began, over and over. The driver raises no event poll() could wait for (it
// reports POLLHUP until the host connects): look again every 5 ms. A VM template's guest is
// saved in this loop, and its clones' hosts connect just after the restore: the interval is
// part of their start.
void wait_for_serial_host(int fd) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

} // namespace

channel_spec parse_channel_spec(std::string_view text, std::error_code& ec) {
    ec.clear();
    channel_spec spec;
    auto colon = text.find(':');
    auto name = text.substr(0, colon);
    auto arg = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    if (name == "vsock") {
        if (colon != std::string_view::npos) {
            auto [end, err] = std::from_chars(arg.data(), arg.data() + arg.size(), spec.port);
            if (err != std::errc() || end != arg.data() + arg.size() || arg.empty())
                ec = std::make_error_code(std::errc::invalid_argument);
        }
    } else if (name == "serial" && !arg.empty() && arg.find('/') == std::string_view::npos &&
               arg != "." && arg != "..") {
        spec.transport = channel_spec::kind::serial;
        spec.serial_name = std::string(arg);
    } else {
        ec = std::make_error_code(std::errc::invalid_argument);
    }
    return spec;
}

unique_fd channel::next_connection(std::chrono::milliseconds wait) {
    if (spec_.transport == channel_spec::kind::serial) {
        auto deadline = std::chrono::steady_clock::now() + wait;
        for (;;) {
            // Ports are named in sysfs; /dev/virtio-ports/NAME is a udev link that a guest
            // without udev does not have. The port appears once the driver has probed it.
            auto device = find_serial_port(spec_.serial_name);
            if (!device.empty()) {
                int fd = ::open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0) {
                    unique_fd port(fd);
                    wait_for_serial_host(port.get());
                    return port;
                }
                if (errno != ENOENT)
                    throw_errno(errno, "open " + device + " (port " + spec_.serial_name + ")");
            }
            if (std::chrono::steady_clock::now() >= deadline)
                throw_errno(ENOENT, "virtio-serial port " + spec_.serial_name);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    if (!listener_) {
        listener_ = unique_fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!listener_) throw_errno(errno, "vsock socket");
        sockaddr_vm addr{};
        addr.svm_family = AF_VSOCK;
        addr.svm_cid = VMADDR_CID_ANY;
        addr.svm_port = spec_.port;
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw_errno(errno, "bind vsock port " + std::to_string(spec_.port));
        if (::listen(listener_.get(), 4) != 0)
            throw_errno(errno, "listen on vsock port " + std::to_string(spec_.port));
    }
    for (;;) {
        int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) return unique_fd(fd);
        if (errno != EINTR && errno != ECONNABORTED) throw_errno(errno, "accept on vsock");
    }
}

} // namespace cz::guest
