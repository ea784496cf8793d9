// Out-of-line definitions for cz/vsock/connection.hpp.
#pragma once

#include <cz/vsock/connection.hpp>
#include <cz/vsock/protocol.hpp>

#include <algorithm>
#include <cstring>

namespace cz::vsock {
namespace detail {

CZ_DECL std::size_t byte_ring::push(bytes_view data, std::size_t capacity) {
    if (buf_.size() != capacity) {
        if (size_ != 0) return 0; // capacity is fixed per connection; never resized while in use
        buf_.assign(capacity, std::byte{0});
        head_ = 0;
    }
    std::size_t n = std::min(data.size(), capacity - size_);
    if (n == 0) return 0; // (data.data() may be null: memcpy must not see it)
    std::size_t tail = (head_ + size_) % capacity;
    std::size_t first = std::min(n, capacity - tail);
    // SAFETY: tail < capacity and first <= capacity - tail; the rest wraps to the start and
    // n - first <= capacity - size_ - first fits before head_.
    std::memcpy(buf_.data() + tail, data.data(), first);
    std::memcpy(buf_.data(), data.data() + first, n - first);
    size_ += n;
    return n;
}

CZ_DECL std::size_t byte_ring::push_from(const descriptor_chain& chain, std::uint64_t offset,
                                         std::size_t n, std::size_t capacity) {
    if (buf_.size() != capacity) {
        if (size_ != 0) return 0;
        buf_.assign(capacity, std::byte{0});
        head_ = 0;
    }
    n = std::min(n, capacity - size_);
    std::size_t tail = (head_ + size_) % capacity;
    std::size_t first = std::min(n, capacity - tail);
    // SAFETY: same split as push(); chain.read copies at most the span's size.
    std::size_t got = chain.read(offset, {buf_.data() + tail, first});
    if (got == first && n > first) got += chain.read(offset + first, {buf_.data(), n - first});
    size_ += got;
    return got;
}

CZ_DECL bytes_view byte_ring::front() const noexcept {
    if (size_ == 0) return {};
    // SAFETY: head_ < buf_.size() whenever size_ > 0, and the span stops at the buffer's end.
    return {buf_.data() + head_, std::min(size_, buf_.size() - head_)};
}

CZ_DECL void byte_ring::pop(std::size_t n) noexcept {
    n = std::min(n, size_);
    size_ -= n;
    head_ = size_ == 0 ? 0 : (head_ + n) % buf_.size();
}

CZ_DECL mutable_bytes byte_ring::back_space(std::size_t capacity) {
    if (buf_.size() != capacity) {
        if (size_ != 0) return {};
        buf_.assign(capacity, std::byte{0});
        head_ = 0;
    }
    if (size_ == capacity) return {};
    std::size_t tail = (head_ + size_) % capacity;
    // SAFETY: tail < capacity; the free part after it ends at the buffer's end or at head_.
    return {buf_.data() + tail, tail >= head_ ? capacity - tail : head_ - tail};
}

} // namespace detail

CZ_DECL connection connection::outgoing(connection_id id, std::uint32_t local_port,
                                        std::uint32_t peer_port) {
    connection c(id, local_port, peer_port, connection_state::local_init);
    c.pending_.insert(pending_packet::request);
    c.start_deadline();
    return c;
}

CZ_DECL connection connection::incoming(connection_id id, const packet_header& request) {
    connection c(id, request.dst_port(), request.src_port(), connection_state::peer_init);
    c.peer_buf_alloc_ = request.buf_alloc();
    c.peer_fwd_cnt_ = request.fwd_cnt();
    return c;
}

CZ_DECL std::uint32_t connection::peer_credit() const noexcept {
    std::uint32_t in_flight = rx_cnt_ - peer_fwd_cnt_;
    return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

CZ_DECL packet_header connection::header(op o, const connection_limits& lim) const noexcept {
    packet_header h;
    h.src_cid(cid_host).dst_cid(lim.guest_cid).src_port(local_port_).dst_port(peer_port_);
    h.type(type_stream).op(o).buf_alloc(lim.buf_alloc).fwd_cnt(fwd_cnt_);
    return h;
}

CZ_DECL connection::guest_outcome connection::on_guest_packet(const packet_header& hdr,
                                                              bool payload_ok,
                                                              const descriptor_chain& chain,
                                                              std::uint64_t payload_offset,
                                                              const connection_limits& lim) {
    guest_outcome out;
    if (state_ == connection_state::killed) {
        out.what = verdict::violation;
        return out;
    }
    // Every packet carries the guest's current credit for this connection.
    peer_buf_alloc_ = hdr.buf_alloc();
    peer_fwd_cnt_ = hdr.fwd_cnt();
    if (peer_credit() > 0) credit_requested_ = false;

    const op o = hdr.op();
    if (o == op::rst) {
        kill();
        out.what = verdict::reset_by_peer;
        return out;
    }
    if (payload_ok) {
        switch (state_) {
        case connection_state::local_init:
            if (o == op::response) {
                state_ = connection_state::established;
                deadline_.reset();
                out.connected = true;
                return out;
            }
            break;
        case connection_state::peer_init:
            break; // the host side has not answered yet: the guest must wait
        case connection_state::established:
        case connection_state::peer_closed:
            on_open_packet(hdr, chain, payload_offset, lim, out);
            if (out.what == verdict::ok) return out;
            break;
        case connection_state::killed:
            break;
        }
    }
    // Anything else is a protocol violation on this connection.
    kill(make_error_code(errc::connection_reset));
    out.what = verdict::violation;
    return out;
}

CZ_DECL void connection::on_open_packet(const packet_header& hdr, const descriptor_chain& chain,
                                        std::uint64_t payload_offset, const connection_limits& lim,
                                        guest_outcome& out) {
    switch (hdr.op()) {
    case op::rw: {
        if (peer_shutdown_ & shutdown_send) break; // data after SHUTDOWN(SEND)
        std::uint32_t n = hdr.len();
        if (n > tx_.space(lim.buf_alloc)) {
            out.credit_violation = true;
            break;
        }
        bool was_empty = tx_.empty();
        std::size_t got = tx_.push_from(chain, payload_offset, n, lim.buf_alloc);
        tx_cnt_ += static_cast<std::uint32_t>(got);
        out.tx_data = was_empty && got > 0;
        return;
    }
    case op::credit_update:
        return; // the credit it carries was taken above
    case op::credit_request:
        pending_.insert(pending_packet::credit_update);
        return;
    case op::shutdown:
        on_guest_shutdown(hdr.flags(), out);
        return;
    default:
        break;
    }
    out.what = verdict::violation;
}

CZ_DECL void connection::on_guest_shutdown(std::uint32_t flags, guest_outcome& out) {
    std::uint32_t before = peer_shutdown_;
    peer_shutdown_ |= flags & (shutdown_rcv | shutdown_send);
    if ((peer_shutdown_ & shutdown_rcv) && !(before & shutdown_rcv)) {
        out.rcv_shutdown = true;
        rx_.pop(rx_.size()); // the guest will not read it
    }
    if ((peer_shutdown_ & shutdown_send) && !(before & shutdown_send))
        notices_.insert(host_notice::peer_send_shutdown);
    if (peer_shutdown_ == (shutdown_rcv | shutdown_send) && !tx_.empty() &&
        state_ == connection_state::established) {
        state_ = connection_state::peer_closed;
        start_deadline();
        out.deadline_started = true;
    }
}

CZ_DECL connection::drain_outcome connection::check_drained() noexcept {
    drain_outcome out;
    if (!tx_.empty() || state_ == connection_state::killed) return out;
    out.peer_send_shutdown = notices_.take(host_notice::peer_send_shutdown);
    if (peer_shutdown_ == (shutdown_rcv | shutdown_send)) {
        // Clean close: everything the guest sent is out; its SHUTDOWN is answered with an RST.
        kill(std::error_code{});
        out.clean_close = true;
    }
    return out;
}

CZ_DECL bool connection::accept() noexcept {
    if (state_ != connection_state::peer_init) return false;
    state_ = connection_state::established;
    pending_.insert(pending_packet::response);
    return true;
}

CZ_DECL bool connection::accepts_data() const noexcept {
    return state_ != connection_state::killed && !host_send_closed_ &&
           !(peer_shutdown_ & shutdown_rcv);
}

CZ_DECL std::size_t connection::send(bytes_view data, const connection_limits& lim) {
    if (!accepts_data()) return 0;
    std::size_t n = rx_.push(data, lim.rx_buffer_limit);
    if (n < data.size()) notices_.insert(host_notice::rx_space);
    return n;
}

CZ_DECL mutable_bytes connection::send_buffer(const connection_limits& lim) {
    if (!accepts_data()) return {};
    return rx_.back_space(lim.rx_buffer_limit);
}

CZ_DECL void connection::commit_send(std::size_t n, const connection_limits& lim) {
    rx_.commit(std::min(n, rx_.space(lim.rx_buffer_limit)));
}

CZ_DECL std::size_t connection::send_space(const connection_limits& lim) const noexcept {
    return accepts_data() ? rx_.space(lim.rx_buffer_limit) : 0;
}

CZ_DECL void connection::consume_tx(std::size_t n, const connection_limits& lim) {
    n = std::min(n, tx_.size());
    tx_.pop(n);
    fwd_cnt_ += static_cast<std::uint32_t>(n);
    // Tell the guest about freed space once half its window was freed since it last heard, or
    // once what it believes is free drops below a quarter (see "Credit" in muxer.hpp). Its
    // window: our buf_alloc, capped by Linux at its own buffer size.
    std::uint32_t window = lim.buf_alloc;
    if (peer_buf_alloc_ != 0) window = std::min(window, peer_buf_alloc_);
    std::uint32_t seen_in_flight = tx_cnt_ - last_fwd_sent_;
    std::uint32_t seen_free = window - std::min(seen_in_flight, window);
    if (fwd_cnt_ != last_fwd_sent_ &&
        (fwd_cnt_ - last_fwd_sent_ >= window / 2 || seen_free < window / 4))
        pending_.insert(pending_packet::credit_update);
}

CZ_DECL bool connection::close_send() noexcept {
    if (host_send_closed_ || state_ == connection_state::killed) return false;
    host_send_closed_ = true;
    pending_.insert(pending_packet::shutdown);
    return true;
}

CZ_DECL bool connection::wants_rx() const noexcept {
    if (pending_.contains(pending_packet::response) || pending_.contains(pending_packet::request))
        return true;
    if (state_ != connection_state::established && state_ != connection_state::peer_closed)
        return false;
    if (!rx_.empty()) return peer_credit() > 0 || !credit_requested_;
    if (pending_.contains(pending_packet::shutdown)) return true;
    return pending_.contains(pending_packet::credit_update);
}

CZ_DECL connection::rx_outcome connection::fill_rx(const descriptor_chain& chain,
                                                   const connection_limits& lim) {
    rx_outcome out;
    out.written = packet_header::wire_size;
    packet_header h;
    if (pending_.take(pending_packet::response)) {
        h = header(op::response, lim);
    } else if (pending_.take(pending_packet::request)) {
        h = header(op::request, lim);
    } else if (!rx_.empty() && peer_credit() > 0) {
        std::uint64_t room = chain.writable_len - packet_header::wire_size;
        std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>({rx_.size(), peer_credit(), room, max_packet_payload}));
        h = header(op::rw, lim).len(static_cast<std::uint32_t>(n));
        std::size_t done = 0;
        while (done < n) {
            bytes_view part = rx_.front();
            part = part.first(std::min(part.size(), n - done));
            chain.write(packet_header::wire_size + done, part);
            rx_.pop(part.size());
            done += part.size();
        }
        rx_cnt_ += static_cast<std::uint32_t>(n);
        out.written += n;
        out.rx_space = notices_.take(host_notice::rx_space);
    } else if (!rx_.empty()) {
        credit_requested_ = true;
        h = header(op::credit_request, lim);
    } else if (pending_.take(pending_packet::shutdown)) {
        h = header(op::shutdown, lim).flags(shutdown_send);
    } else {
        h = header(op::credit_update, lim);
    }
    // Every packet carries fwd_cnt, so any of them is a credit update.
    pending_.erase(pending_packet::credit_update);
    last_fwd_sent_ = fwd_cnt_;
    out.sent = h.op();
    chain.write(0, h.bytes());
    return out;
}

CZ_DECL bool connection::deadline_passed(clock::time_point now,
                                         std::chrono::milliseconds request_timeout,
                                         std::chrono::milliseconds shutdown_timeout) noexcept {
    if (!deadline_) return false;
    if (*deadline_ == clock::time_point::min())
        deadline_ =
            now + (state_ == connection_state::local_init ? request_timeout : shutdown_timeout);
    return *deadline_ <= now;
}

CZ_DECL void connection::kill() noexcept {
    kill(make_error_code(state_ == connection_state::local_init ? errc::connection_refused
                                                                : errc::connection_reset));
}

} // namespace cz::vsock
