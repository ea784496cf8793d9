// Out-of-line definitions for cz/vsock/backend.hpp.
#pragma once

#include <cz/core/error.hpp>
#include <cz/vsock/backend.hpp>

#include <asio/post.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace cz::vsock {

CZ_DECL backend::backend(asio::io_context& io, backend_config cfg)
    : io_(io), cfg_(std::move(cfg)), device_(cfg_.device), session_(device_),
      hybrid_(io, device_.connections(), cfg_.uds_path, [this] { schedule_service(); }),
      acceptor_(io), frontend_(io), ticker_(io), tx_signal_timer_(io) {}

CZ_DECL backend::~backend() {
    stop();
    *alive_ = false;
}

CZ_DECL void backend::start(std::error_code& ec) {
    ec.clear();
    std::filesystem::remove(cfg_.vhost_user_socket, ec); // stale socket of an earlier run
    ec.clear();
    asio::local::stream_protocol::endpoint ep(cfg_.vhost_user_socket.string());
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) ::chmod(cfg_.vhost_user_socket.c_str(), 0600);
    if (!ec) acceptor_.listen(1, ec);
    if (!ec) hybrid_.open(ec);
    if (ec) {
        std::error_code ignored;
        acceptor_.close(ignored);
        return;
    }
    listening_ = true;
    stopped_ = false;
    accept_frontend();
    arm_ticker();
}

CZ_DECL void backend::start() {
    std::error_code ec;
    start(ec);
    throw_if(ec, "vsock backend " + cfg_.vhost_user_socket.string());
}

CZ_DECL void backend::serve(unique_fd connected, std::error_code& ec) {
    ec.clear();
    hybrid_.open(ec);
    if (ec) return;
    stopped_ = false;
    asio::local::stream_protocol::socket sock(io_);
    sock.assign(asio::local::stream_protocol(), connected.release(), ec);
    if (ec) return;
    attach(std::move(sock));
    arm_ticker();
}

CZ_DECL void backend::stop() {
    if (stopped_) return;
    stopped_ = true;
    std::error_code ignored;
    if (listening_) {
        listening_ = false;
        acceptor_.close(ignored);
        std::filesystem::remove(cfg_.vhost_user_socket, ignored);
    }
    if (frontend_.is_open()) drop_frontend({});
    ticker_.cancel();
    tx_signal_timer_.cancel();
    hybrid_.close();
}

CZ_DECL void backend::accept_frontend() {
    acceptor_.async_accept(
        [this, alive = alive_](std::error_code ec, asio::local::stream_protocol::socket sock) {
            if (!*alive || ec == asio::error::operation_aborted || !listening_) return;
            if (ec) {
                accept_frontend();
                return;
            }
            if (frontend_.is_open()) {
                // One frontend at a time: a second connection is refused (closed at once).
                accept_frontend();
                return;
            }
            attach(std::move(sock));
        });
}

CZ_DECL void backend::attach(asio::local::stream_protocol::socket sock) {
    frontend_ = std::move(sock);
    std::error_code ignored;
    frontend_.non_blocking(true, ignored);
    ++stats_.frontends;
    rbuf_.assign(vhost_user::message_header::wire_size, std::byte{0});
    rlen_ = 0;
    rfds_.clear();
    read_frontend();
}

CZ_DECL void backend::read_frontend() {
    frontend_.async_wait(asio::socket_base::wait_read, [this, alive = alive_](std::error_code ec) {
        if (!*alive || ec == asio::error::operation_aborted || !frontend_.is_open()) return;
        if (!ec) {
            while (read_available(ec) && !ec) {
            }
        }
        if (ec) {
            drop_frontend(ec);
            if (listening_) accept_frontend();
            return;
        }
        read_frontend();
    });
}

// Receives what is there of the current message; handles it when complete. Returns true when a
// message was handled (the caller loops for the next one).
CZ_DECL bool backend::read_available(std::error_code& ec) {
    using vhost_user::message_header;
    std::size_t need = message_header::wire_size;
    if (rlen_ >= message_header::wire_size) {
        std::error_code hec;
        // SAFETY: rlen_ >= wire_size bytes of rbuf_ hold the header.
        auto hdr = message_header::parse({rbuf_.data(), rlen_}, hec);
        need += hdr.size();
    }
    if (rbuf_.size() < need) rbuf_.resize(need);
    while (rlen_ < need) {
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vhost_user::max_fds)];
        iovec iov{rbuf_.data() + rlen_, need - rlen_};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(frontend_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
            ec = last_system_error();
            return false;
        }
        // Take every fd first, so that none leaks whatever happens next (CVE-2022-0669).
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                // SAFETY: count ints fit in cmsg_len, which the kernel bounded by msg_controllen.
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                rfds_.emplace_back(fd);
            }
        }
        if (msg.msg_flags & MSG_CTRUNC || rfds_.size() > vhost_user::max_fds) {
            ec = errc::malformed_message;
            return false;
        }
        if (n == 0) {
            ec = errc::frontend_disconnected;
            return false;
        }
        rlen_ += static_cast<std::size_t>(n);
        if (rlen_ == message_header::wire_size) {
            auto hdr = message_header::parse({rbuf_.data(), rlen_}, ec);
            if (ec) return false;
            need += hdr.size();
            if (rbuf_.size() < need) rbuf_.resize(need);
        }
    }
    auto hdr = message_header::parse({rbuf_.data(), rlen_}, ec);
    if (ec) return false;
    ++stats_.messages;
    // SAFETY: rlen_ == wire_size + hdr.size() bytes were received into rbuf_.
    byte_buffer reply =
        session_.handle(hdr, {rbuf_.data() + message_header::wire_size, hdr.size()}, rfds_, ec);
    rlen_ = 0;
    rfds_.clear();
    if (ec) return false;
    if (!reply.empty()) {
        std::size_t off = 0;
        while (off < reply.size()) {
            ssize_t n = ::send(frontend_.native_handle(), reply.data() + off, reply.size() - off,
                               MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                // A reply of at most a few hundred bytes does not fit: the frontend is stuck.
                ec = n < 0 ? last_system_error() : make_error_code(errc::frontend_disconnected);
                return false;
            }
            off += static_cast<std::size_t>(n);
        }
    }
    drain_events();
    sync_kick_watchers();
    schedule_service();
    return true;
}

CZ_DECL void backend::drop_frontend(std::error_code why) {
    stats_.last_frontend_error = why;
    std::error_code ignored;
    frontend_.close(ignored);
    for (auto& k : kicks_)
        k.reset();
    watched_generation_ = ~0ull;
    rlen_ = 0;
    rfds_.clear();
    tx_signal_pending_ = false; // the call fds go with the frontend
    session_.disconnect();
    drain_events();
}

CZ_DECL void backend::sync_kick_watchers() {
    if (session_.generation() == watched_generation_) return;
    watched_generation_ = session_.generation();
    for (std::uint32_t i = 0; i < vhost_user::ring_count; ++i) {
        kicks_[i].reset();
        if (!session_.running(i) || session_.kick_fd(i) < 0) continue;
        int fd = ::fcntl(session_.kick_fd(i), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) continue;
        kicks_[i].emplace(io_, fd);
        watch_kick(i, watched_generation_);
    }
}

CZ_DECL void backend::watch_kick(std::uint32_t ring, std::uint64_t generation) {
    kicks_[ring]->async_wait(
        asio::posix::stream_descriptor::wait_read,
        [this, ring, generation, alive = alive_](std::error_code ec) {
            if (!*alive || ec || generation != watched_generation_ || !kicks_[ring]) return;
            std::uint64_t v;
            while (::read(kicks_[ring]->native_handle(), &v, sizeof v) < 0 && errno == EINTR) {
            }
            ++stats_.kicks;
            service();
            if (generation == watched_generation_ && kicks_[ring]) watch_kick(ring, generation);
        });
}

CZ_DECL void backend::signal(std::uint32_t ring) {
    int fd = session_.call_fd(ring);
    if (fd < 0) return;
    ++stats_.interrupts;
    std::uint64_t one = 1;
    while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

CZ_DECL void backend::drain_events() {
    device_event ev;
    while (device_.connections().poll_event(ev))
        hybrid_.on_event(ev);
}

CZ_DECL void backend::schedule_service() {
    if (service_posted_) return; // one pending run serves every change made before it
    service_posted_ = true;
    asio::post(io_, [this, alive = alive_] {
        if (!*alive) return;
        service_posted_ = false;
        service();
    });
}

// One pass over both queues and the host side, repeated while it finds work; each round ends
// with at most one used-buffer notification per queue, however many packets it moved. A TX
// completion tells the guest only that it may free the packet's memory (the credit it waits for
// comes on the RX queue), so it is held back until an RX notification goes out anyway (on
// virtio-mmio one interrupt then serves both queues), a quarter of the TX queue has completed, or
// tx_signal_delay has passed: a bulk guest sender then takes one interrupt per credit update
// instead of one per packet.
CZ_DECL void backend::service() {
    if (in_service_) return;
    in_service_ = true;
    for (int round = 0; round < 64; ++round) {
        drain_events();
        bool notify_tx = device_.process_tx();
        drain_events();
        bool notify_rx = device_.process_rx();
        if (notify_tx) tx_signal_pending_ = true;
        if (notify_rx) signal(0);
        if (tx_signal_pending_ && (notify_rx || device_.stats().tx_chains - tx_signalled_chains_ >=
                                                    device_.tx_queue().size() / 4u))
            flush_tx_signal();
        if (device_.connections().pending_events() == 0 && !notify_tx && !notify_rx) break;
    }
    in_service_ = false;
    if (tx_signal_pending_ && !tx_signal_timer_armed_) {
        tx_signal_timer_armed_ = true;
        tx_signal_timer_.expires_after(tx_signal_delay);
        tx_signal_timer_.async_wait([this, alive = alive_](std::error_code ec) {
            if (!*alive) return;
            tx_signal_timer_armed_ = false;
            if (!ec) flush_tx_signal();
        });
    }
    // A queue with chains left over (see device::work_left) is served again after whatever else
    // is waiting on the io_context: other VMs' devices, the host side's sockets.
    if (device_.work_left()) schedule_service();
}

CZ_DECL void backend::flush_tx_signal() {
    if (!tx_signal_pending_) return;
    tx_signal_pending_ = false;
    tx_signalled_chains_ = device_.stats().tx_chains;
    signal(1);
}

CZ_DECL void backend::arm_ticker() {
    ticker_.expires_after(std::chrono::milliseconds(100));
    ticker_.async_wait([this, alive = alive_](std::error_code ec) {
        if (!*alive || ec || stopped_) return;
        device_.connections().tick(muxer::clock::now());
        service();
        arm_ticker();
    });
}

} // namespace cz::vsock
