// cz/vsock/host.hpp — the host's side of guest streams: dial(port) and listen(port).
//
// The same calls work over either transport a host can have:
//   hybrid  cz's own device (backend.hpp): dial connects to `<vm dir>/vsock.sock` and performs
//           the `CONNECT <port>\n` / `OK <n>\n` handshake; listen binds `<vm dir>/vsock.sock_<port>`
//           (mode 0600), which the backend joins guest connections to CID 2 port <port> with.
//   kernel  AF_VSOCK, on hosts with /dev/vhost-vsock: dial connects to (guest cid, port); listen
//           binds (VMADDR_CID_ANY, port).
// Either way the result is an `asio::generic::stream_protocol` socket or acceptor, so callers
// (the agent client, stdio pumps) are written once.
#pragma once

#include <cz/core/config.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/protocol.hpp>

#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <system_error>
#include <variant>

namespace cz::vsock {

// cz's hybrid Unix sockets: the path of `<vm dir>/vsock.sock`.
struct hybrid_transport {
    std::filesystem::path uds_path;
};
// The kernel's AF_VSOCK: the guest's CID.
struct kernel_transport {
    std::uint32_t guest_cid;
};
using transport = std::variant<hybrid_transport, kernel_transport>;

using generic_socket = asio::generic::stream_protocol::socket;
using generic_acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

class host {
public:
    host(asio::io_context& io, transport t) : io_(io), transport_(std::move(t)) {}

    // Connects to the guest's listener on `port`. Blocking, bounded by handshake_timeout (hybrid).
    // Errors: errc::connection_refused (nobody listening in the guest), errc::handshake_failed,
    // system errors of connect().
    CZ_DECL generic_socket dial(std::uint32_t port, std::error_code& ec);
    CZ_DECL generic_socket dial(std::uint32_t port);
    // Listens for guest connections to host port `port` (CID 2).
    CZ_DECL generic_acceptor listen(std::uint32_t port, std::error_code& ec);
    CZ_DECL generic_acceptor listen(std::uint32_t port);

    const vsock::transport& transport() const noexcept { return transport_; }
    // How long dial() waits for the guest to answer (the device itself gives up after 2 s).
    std::chrono::milliseconds handshake_timeout{10000};

private:
    asio::io_context& io_;
    vsock::transport transport_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/host.ipp>
#endif
