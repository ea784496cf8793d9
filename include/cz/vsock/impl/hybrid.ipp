// Out-of-line definitions for cz/vsock/hybrid.hpp.
#pragma once

#include <cz/vsock/hybrid.hpp>

#include <asio/buffer.hpp>

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <string_view>

namespace cz::vsock {
namespace detail {

// `<keyword> <u32>\n`: keyword compared case-insensitively, single spaces or tabs between.
inline std::size_t parse_keyword_line(bytes_view in, std::string_view keyword, std::uint32_t& v,
                                      std::error_code& ec) {
    ec.clear();
    std::string_view s = as_chars(in.first(std::min(in.size(), max_handshake_line)));
    std::size_t nl = s.find('\n');
    if (nl == std::string_view::npos) {
        if (in.size() >= max_handshake_line) ec = errc::handshake_failed;
        return 0;
    }
    std::string_view line = s.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    if (line.size() <= keyword.size() || !blank(line[keyword.size()])) {
        ec = errc::handshake_failed;
        return 0;
    }
    for (std::size_t i = 0; i < keyword.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != keyword[i]) {
            ec = errc::handshake_failed;
            return 0;
        }
    }
    std::string_view num = line.substr(keyword.size());
    while (!num.empty() && blank(num.front()))
        num.remove_prefix(1);
    while (!num.empty() && blank(num.back()))
        num.remove_suffix(1);
    auto [end, err] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (num.empty() || err != std::errc{} || end != num.data() + num.size()) {
        ec = errc::handshake_failed;
        return 0;
    }
    return nl + 1;
}

} // namespace detail

CZ_DECL std::size_t parse_connect_line(bytes_view in, std::uint32_t& port, std::error_code& ec) {
    return detail::parse_keyword_line(in, "connect", port, ec);
}

CZ_DECL std::size_t parse_ok_line(bytes_view in, std::uint32_t& n, std::error_code& ec) {
    return detail::parse_keyword_line(in, "ok", n, ec);
}

CZ_DECL std::filesystem::path port_socket_path(const std::filesystem::path& uds,
                                               std::uint32_t port) {
    return uds.string() + "_" + std::to_string(port);
}

struct hybrid_host_end::stream {
    explicit stream(asio::io_context& io) : sock(io), timer(io) {}
    asio::local::stream_protocol::socket sock;
    asio::steady_timer timer;
    connection_id id = 0;
    std::uint32_t local_port = 0;
    bool established = false;
    bool reading = false;
    bool read_paused = false;
    bool writing = false;
    bool shutdown_pending = false;
    bool closed = false;
    std::string handshake;
};

CZ_DECL hybrid_host_end::hybrid_host_end(asio::io_context& io, muxer& mux,
                                         std::filesystem::path uds_path,
                                         std::function<void()> changed)
    : io_(io), mux_(mux), path_(std::move(uds_path)), changed_(std::move(changed)), acceptor_(io) {}

CZ_DECL hybrid_host_end::~hybrid_host_end() {
    close();
}

CZ_DECL void hybrid_host_end::open(std::error_code& ec) {
    ec.clear();
    std::filesystem::remove(path_, ec); // a stale socket from an earlier run: removed on purpose
    ec.clear();
    asio::local::stream_protocol::endpoint ep(path_.string());
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) ::chmod(path_.c_str(), 0600);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::error_code ignored;
        acceptor_.close(ignored);
        return;
    }
    open_ = true;
    do_accept();
}

CZ_DECL void hybrid_host_end::close() {
    if (open_) {
        open_ = false;
        std::error_code ignored;
        acceptor_.close(ignored);
        std::filesystem::remove(path_, ignored);
    }
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams)
        drop(s, true);
    auto pending = std::move(handshaking_);
    handshaking_.clear();
    for (auto& [p, s] : pending)
        drop(s, false);
}

CZ_DECL void hybrid_host_end::do_accept() {
    auto s = std::make_shared<stream>(io_);
    acceptor_.async_accept(s->sock, [this, s](std::error_code ec) {
        if (ec == asio::error::operation_aborted || !open_) return;
        if (!ec) start_handshake(s);
        do_accept();
    });
}

CZ_DECL void hybrid_host_end::start_handshake(std::shared_ptr<stream> s) {
    handshaking_.emplace(s.get(), s);
    // A client that connects and never completes the line is dropped (notes §8.4).
    s->timer.expires_after(std::chrono::seconds(10));
    s->timer.async_wait([this, s](std::error_code ec) {
        if (!ec && !s->established && s->id == 0) drop(s, false);
    });
    read_handshake(s);
}

CZ_DECL void hybrid_host_end::read_handshake(std::shared_ptr<stream> s) {
    auto buf = std::make_shared<std::array<char, max_handshake_line>>();
    std::size_t room = max_handshake_line - s->handshake.size();
    s->sock.async_read_some(
        asio::buffer(buf->data(), room), [this, s, buf](std::error_code ec, std::size_t n) {
            if (s->closed) return;
            if (ec) {
                drop(s, false);
                return;
            }
            s->handshake.append(buf->data(), n);
            std::uint32_t port = 0;
            std::error_code pec;
            std::size_t used = parse_connect_line(as_bytes(s->handshake), port, pec);
            if (pec) {
                drop(s, false);
                return;
            }
            if (used == 0) {
                read_handshake(s);
                return;
            }
            std::error_code cec;
            connection_id id = mux_.connect(port, cec);
            if (cec) {
                drop(s, false);
                return;
            }
            handshaking_.erase(s.get());
            s->timer.cancel();
            s->id = id;
            streams_.emplace(id, s);
            // Bytes the client sent after the line wait in the muxer until the guest accepts.
            if (used < s->handshake.size())
                mux_.send(id, as_bytes(std::string_view(s->handshake).substr(used)));
            s->handshake.clear();
            changed_();
        });
}

CZ_DECL void hybrid_host_end::drop(std::shared_ptr<stream> s, bool reset_connection) {
    if (s->closed) return;
    s->closed = true;
    std::error_code ignored;
    s->timer.cancel();
    s->sock.close(ignored);
    handshaking_.erase(s.get());
    if (s->id != 0) {
        streams_.erase(s->id);
        if (reset_connection && mux_.contains(s->id)) {
            mux_.reset(s->id);
            changed_();
        }
    }
}

// Host -> guest: reads what the socket has straight into the connection's buffer in the
// muxer (no copy of our own), until the socket would block or the buffer is full; then waits
// for the socket to become readable again, or for an rx_space event.
CZ_DECL void hybrid_host_end::start_read(std::shared_ptr<stream> s) {
    if (s->closed || s->reading) return;
    bool got = false;
    for (;;) {
        mutable_bytes space = mux_.send_buffer(s->id);
        if (space.empty()) {
            s->read_paused = true;
            mux_.notify_send_space(s->id); // rx_space resumes reading
            break;
        }
        s->read_paused = false;
        ssize_t n = ::recv(s->sock.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
        if (n > 0) {
            mux_.commit_send(s->id, static_cast<std::size_t>(n));
            got = true;
            continue;
        }
        if (n == 0) {
            mux_.close_send(s->id); // host half-close -> SHUTDOWN(SEND) after the buffered data
            got = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->reading = true;
            s->sock.async_wait(asio::socket_base::wait_read, [this, s](std::error_code ec) {
                s->reading = false;
                if (s->closed || ec == asio::error::operation_aborted) return;
                if (ec) {
                    drop(s, true);
                    return;
                }
                start_read(s);
            });
            break;
        }
        drop(s, true);
        return;
    }
    if (got) changed_();
}

// Guest -> host: writes the connection's pending bytes from the muxer's buffer (no copy of our
// own) until none are left or the socket would block; then waits for it to become writable.
// What the socket took is consumed at once, so the guest's credit grows in the same pass.
CZ_DECL void hybrid_host_end::start_write(std::shared_ptr<stream> s) {
    if (s->closed || s->writing) return;
    for (;;) {
        bytes_view pending = mux_.pending_tx(s->id);
        if (pending.empty()) break;
        ssize_t n = ::send(s->sock.native_handle(), pending.data(), pending.size(),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            mux_.consume_tx(s->id, static_cast<std::size_t>(n));
            changed_();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->writing = true;
            s->sock.async_wait(asio::socket_base::wait_write, [this, s](std::error_code ec) {
                s->writing = false;
                if (s->closed || ec == asio::error::operation_aborted) return;
                if (ec) {
                    drop(s, true);
                    return;
                }
                start_write(s);
            });
            return;
        }
        drop(s, true);
        return;
    }
    if (s->shutdown_pending) {
        s->shutdown_pending = false;
        std::error_code ignored;
        s->sock.shutdown(asio::socket_base::shutdown_send, ignored);
    }
}

CZ_DECL void hybrid_host_end::on_event(const device_event& ev) {
    if (ev.kind == event_kind::guest_connect) {
        // The guest connects to host port ev.port: join it to <uds>_<port> if someone listens.
        auto s = std::make_shared<stream>(io_);
        std::error_code ec;
        asio::local::stream_protocol::endpoint ep(port_socket_path(path_, ev.port).string());
        s->sock.open(ep.protocol(), ec);
        if (!ec) s->sock.non_blocking(true, ec); // a full backlog must not stall the device
        if (!ec) s->sock.connect(ep, ec);
        if (ec) {
            mux_.refuse(ev.id);
            return;
        }
        s->id = ev.id;
        s->local_port = ev.port;
        s->established = true;
        streams_.emplace(ev.id, s);
        mux_.accept(ev.id);
        start_read(s);
        return;
    }
    auto it = streams_.find(ev.id);
    if (it == streams_.end()) return;
    std::shared_ptr<stream> s = it->second;
    switch (ev.kind) {
    case event_kind::connected: {
        s->established = true;
        s->local_port = ev.port;
        // The reply goes out before any guest byte: a fresh socket's buffer always takes these
        // few bytes, so a short write means the client is gone.
        std::string reply = "OK " + std::to_string(ev.port) + "\n";
        ssize_t n;
        do {
            n = ::send(s->sock.native_handle(), reply.data(), reply.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(reply.size())) {
            drop(s, true);
            break;
        }
        start_read(s);
        start_write(s);
        break;
    }
    case event_kind::tx_data:
        if (s->established) start_write(s);
        break;
    case event_kind::peer_shutdown:
        if (ev.flags & shutdown_send) {
            s->shutdown_pending = true;
            start_write(s); // shuts down writing once nothing is pending
        }
        break;
    case event_kind::rx_space:
        if (s->read_paused) start_read(s);
        break;
    case event_kind::closed:
        // A clean close comes only after every guest byte was written (consume_tx), so there is
        // nothing left to flush either way.
        drop(s, false);
        break;
    case event_kind::guest_connect:
        break;
    }
}

} // namespace cz::vsock
