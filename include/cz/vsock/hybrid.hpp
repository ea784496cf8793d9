// cz/vsock/hybrid.hpp — the host end of the vsock device as Firecracker-style "hybrid vsock"
// Unix sockets.
//
// Primer (Firecracker docs/vsock.md). One VM has one listening socket, `<vm dir>/vsock.sock`:
//
//   host -> guest   a host process connects, sends `CONNECT <port>\n` in one write, and reads one
//                   line `OK <n>\n` (n: the host-side port cz allocated) once the guest's listener
//                   accepted; from then on the Unix stream is the vsock stream. A refused
//                   connection is closed without a reply.
//   guest -> host   a guest connection to CID 2 port P is joined to the Unix socket
//                   `<vm dir>/vsock.sock_P`, which the host listens on (host::listen creates it);
//                   nobody listening means an RST to the guest.
//
// Host clients that check only the `OK ` prefix (Kata, Apple containerization, socat scripts)
// work unchanged. Bytes sent after the CONNECT line in the same write are kept and delivered
// once the guest accepted. Half-close maps both ways: shutdown(SHUT_WR) on the Unix socket
// becomes SHUTDOWN(SEND) to the guest and a guest SHUTDOWN(SEND) becomes shutdown(SHUT_WR) here.
//
// The line parsers do no I/O; `hybrid_host_end` is the Asio layer that moves bytes between Unix
// sockets and a `muxer`, on the device's io_context.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/vsock/muxer.hpp>
#include <cz/vsock/error.hpp>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>

namespace cz::vsock {

// The longest handshake line accepted (Firecracker: 32 bytes).
inline constexpr std::size_t max_handshake_line = 32;

// Parses `CONNECT <port>\n` at the start of `in` (keyword case-insensitive, port a decimal
// u32). Returns the bytes consumed including the newline; 0 with ec clear when more is needed;
// errc::handshake_failed when the line is malformed or longer than max_handshake_line.
CZ_DECL std::size_t parse_connect_line(bytes_view in, std::uint32_t& port, std::error_code& ec);
// Parses the `OK <n>\n` reply the same way.
CZ_DECL std::size_t parse_ok_line(bytes_view in, std::uint32_t& n, std::error_code& ec);
// `<uds>_<port>`: where a guest connection to host port `port` is joined.
CZ_DECL std::filesystem::path port_socket_path(const std::filesystem::path& uds,
                                               std::uint32_t port);

class hybrid_host_end {
public:
    // `changed` is called whenever the muxer has new work for the device (data, shutdowns,
    // resets); the owner then runs the device.
    CZ_DECL hybrid_host_end(asio::io_context& io, muxer& mux, std::filesystem::path uds_path,
                            std::function<void()> changed);
    CZ_DECL ~hybrid_host_end();
    hybrid_host_end(const hybrid_host_end&) = delete;
    hybrid_host_end& operator=(const hybrid_host_end&) = delete;

    // Binds and listens on the uds path (a stale socket file is removed on purpose; mode 0600).
    CZ_DECL void open(std::error_code& ec);
    // Stops listening (unlinking the file) and closes every stream.
    CZ_DECL void close();
    // Handles one muxer event.
    CZ_DECL void on_event(const device_event& ev);

    std::size_t stream_count() const noexcept { return streams_.size(); }
    const std::filesystem::path& path() const noexcept { return path_; }

    struct stream; // one host-side Unix connection

private:
    CZ_DECL void do_accept();
    CZ_DECL void start_handshake(std::shared_ptr<stream> s);
    CZ_DECL void read_handshake(std::shared_ptr<stream> s);
    CZ_DECL void start_read(std::shared_ptr<stream> s);
    CZ_DECL void start_write(std::shared_ptr<stream> s);
    CZ_DECL void drop(std::shared_ptr<stream> s, bool reset_connection);

    asio::io_context& io_;
    muxer& mux_;
    std::filesystem::path path_;
    std::function<void()> changed_;
    asio::local::stream_protocol::acceptor acceptor_;
    std::unordered_map<connection_id, std::shared_ptr<stream>> streams_;
    std::unordered_map<stream*, std::shared_ptr<stream>> handshaking_;
    bool open_ = false;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/hybrid.ipp>
#endif
