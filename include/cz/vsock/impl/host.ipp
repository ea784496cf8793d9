// Out-of-line definitions for cz/vsock/host.hpp.
#pragma once

#include <cz/core/error.hpp>
#include <cz/vsock/host.hpp>
#include <cz/vsock/hybrid.hpp>

#include <asio/local/stream_protocol.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

namespace cz::vsock {
namespace detail {

// Reads the `OK <n>\n` reply one byte at a time (nothing after the newline is consumed), waiting
// at most `timeout` in all.
inline void read_ok_line(int fd, std::chrono::milliseconds timeout, std::error_code& ec) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ec = std::make_error_code(std::errc::timed_out);
            return;
        }
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            ec = last_system_error();
            return;
        }
        if (r == 0) continue;
        char c;
        ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n < 0) {
            ec = last_system_error();
            return;
        }
        if (n == 0) {
            // Closed without a reply: the guest refused (RST) or nobody listened in time.
            ec = errc::connection_refused;
            return;
        }
        line.push_back(c);
        std::uint32_t v = 0;
        std::size_t used = parse_ok_line(as_bytes(line), v, ec);
        if (ec || used != 0) return;
    }
}

} // namespace detail

CZ_DECL generic_socket host::dial(std::uint32_t port, std::error_code& ec) {
    ec.clear();
    if (auto* k = std::get_if<kernel_transport>(&transport_)) {
        stream_protocol::socket s(io_);
        s.connect(endpoint(k->guest_cid, port), ec);
        if (ec) return generic_socket(io_);
        generic_socket g(io_);
        g.assign(asio::generic::stream_protocol(af_vsock, SOCK_STREAM), s.release(), ec);
        return g;
    }
    const auto& h = std::get<hybrid_transport>(transport_);
    asio::local::stream_protocol::endpoint uds(h.uds_path.string());
    generic_socket s(io_);
    s.connect(asio::generic::stream_protocol::endpoint(uds), ec);
    if (ec) return s;
    std::string line = "CONNECT " + std::to_string(port) + "\n";
    // One write, as hybrid vsock peers expect (Firecracker drops a line split across writes).
    ssize_t n;
    do {
        n = ::send(s.native_handle(), line.data(), line.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(line.size())) {
        ec = n < 0 ? last_system_error() : make_error_code(errc::handshake_failed);
        return s;
    }
    detail::read_ok_line(s.native_handle(), handshake_timeout, ec);
    return s;
}

CZ_DECL generic_socket host::dial(std::uint32_t port) {
    std::error_code ec;
    auto s = dial(port, ec);
    throw_if(ec, "vsock dial port " + std::to_string(port));
    return s;
}

CZ_DECL generic_acceptor host::listen(std::uint32_t port, std::error_code& ec) {
    ec.clear();
    generic_acceptor a(io_);
    if (std::holds_alternative<kernel_transport>(transport_)) {
        stream_protocol::acceptor k(io_);
        endpoint ep(cid_any, port);
        k.open(ep.protocol(), ec);
        if (!ec) k.bind(ep, ec);
        if (!ec) k.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) return a;
        a.assign(asio::generic::stream_protocol(af_vsock, SOCK_STREAM), k.release(), ec);
        return a;
    }
    auto path = port_socket_path(std::get<hybrid_transport>(transport_).uds_path, port);
    std::filesystem::remove(path, ec); // a stale socket of an earlier listener: replaced on purpose
    ec.clear();
    asio::generic::stream_protocol::endpoint ep(asio::local::stream_protocol::endpoint(path.string()));
    a.open(ep.protocol(), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) ::chmod(path.c_str(), 0600);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    return a;
}

CZ_DECL generic_acceptor host::listen(std::uint32_t port) {
    std::error_code ec;
    auto a = listen(port, ec);
    throw_if(ec, "vsock listen port " + std::to_string(port));
    return a;
}

} // namespace cz::vsock
