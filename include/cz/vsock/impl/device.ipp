// Out-of-line definitions for cz/vsock/device.hpp.
#pragma once

#include <cz/vsock/device.hpp>
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

CZ_DECL muxer::connection* muxer::find(connection_id id) noexcept {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : &it->second;
}

CZ_DECL const muxer::connection* muxer::find(connection_id id) const noexcept {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : &it->second;
}

CZ_DECL void muxer::queue_rst(std::uint32_t local_port, std::uint32_t peer_port) {
    if (resets_.size() >= cfg_.max_pending_resets + cfg_.max_connections) {
        ++stats_.resets_dropped;
        return;
    }
    packet_header h;
    h.src_cid(cid_host).dst_cid(cfg_.guest_cid).src_port(local_port).dst_port(peer_port);
    h.type(type_stream).op(op::rst).buf_alloc(cfg_.buf_alloc);
    resets_.push_back(h);
}

CZ_DECL void muxer::remove(connection& c, std::optional<std::error_code> closed_event) {
    if (closed_event) events_.push_back({event_kind::closed, c.id, c.local_port, 0, *closed_event});
    by_tuple_.erase(key(c.local_port, c.peer_port));
    conns_.erase(c.id); // the id may linger in rx_queue_; has_rx/fill_rx skip dead ids
}

CZ_DECL std::uint32_t muxer::peer_credit(const connection& c) const noexcept {
    std::uint32_t in_flight = c.rx_cnt - c.peer_fwd_cnt;
    return in_flight >= c.peer_buf_alloc ? 0 : c.peer_buf_alloc - in_flight;
}

CZ_DECL bool muxer::wants_rx(const connection& c) const noexcept {
    if (c.send_response || c.send_request) return true;
    if (c.st != state::established) return false;
    if (!c.rx.empty()) return peer_credit(c) > 0 || !c.credit_requested;
    if (c.host_eof && !c.shutdown_sent) return true;
    return c.send_credit_update;
}

CZ_DECL void muxer::schedule(connection& c) {
    if (!c.in_rx_queue && wants_rx(c)) {
        c.in_rx_queue = true;
        rx_queue_.push_back(c.id);
    }
}

CZ_DECL packet_header muxer::header_for(connection& c, op o) const noexcept {
    packet_header h;
    h.src_cid(cid_host).dst_cid(cfg_.guest_cid).src_port(c.local_port).dst_port(c.peer_port);
    h.type(type_stream).op(o).buf_alloc(cfg_.buf_alloc).fwd_cnt(c.fwd_cnt);
    return h;
}

CZ_DECL void muxer::check_guest_shutdown(connection& c) {
    if (!c.tx.empty()) return;
    if ((c.peer_shutdown & shutdown_send) && !c.send_shutdown_delivered) {
        c.send_shutdown_delivered = true;
        events_.push_back({event_kind::peer_shutdown, c.id, c.local_port, c.peer_shutdown, {}});
    }
    if (c.peer_shutdown == (shutdown_rcv | shutdown_send)) {
        // Clean close: everything the guest sent is out; answer its SHUTDOWN with the RST.
        queue_rst(c.local_port, c.peer_port);
        remove(c, std::error_code{});
    }
}

CZ_DECL void muxer::on_guest_packet(const packet_header& hdr, const descriptor_chain& chain,
                                    std::uint64_t payload_offset) {
    // Anti-spoofing and addressing (notes §8.6): only packets from our guest to the host.
    if (hdr.src_cid() != cfg_.guest_cid || hdr.dst_cid() != cid_host) {
        ++stats_.dropped_packets;
        return;
    }
    const op o = hdr.op();
    if (hdr.type() != type_stream) {
        ++stats_.dropped_packets;
        if (o != op::rst) queue_rst(hdr.dst_port(), hdr.src_port());
        return;
    }
    const std::uint64_t available =
        chain.readable_len > payload_offset ? chain.readable_len - payload_offset : 0;
    const bool bad_len = o == op::rw && (hdr.len() > max_packet_payload || hdr.len() > available);

    auto it = by_tuple_.find(key(hdr.dst_port(), hdr.src_port()));
    if (it == by_tuple_.end()) {
        if (o == op::request && !bad_len) {
            if (conns_.size() >= cfg_.max_connections) {
                queue_rst(hdr.dst_port(), hdr.src_port());
                return;
            }
            connection_id id = next_id_++;
            connection c{};
            c.id = id;
            c.local_port = hdr.dst_port();
            c.peer_port = hdr.src_port();
            c.st = state::peer_init;
            c.peer_buf_alloc = hdr.buf_alloc();
            c.peer_fwd_cnt = hdr.fwd_cnt();
            conns_.emplace(id, std::move(c));
            by_tuple_.emplace(key(hdr.dst_port(), hdr.src_port()), id);
            events_.push_back({event_kind::guest_connect, id, hdr.dst_port(), 0, {}});
            return;
        }
        if (o != op::rst) {
            if (o < op::request || o > op::credit_request) ++stats_.dropped_packets;
            queue_rst(hdr.dst_port(), hdr.src_port());
        }
        return;
    }

    connection& c = conns_.at(it->second);
    // Every packet carries the guest's current credit for this connection.
    c.peer_buf_alloc = hdr.buf_alloc();
    c.peer_fwd_cnt = hdr.fwd_cnt();
    if (peer_credit(c) > 0) c.credit_requested = false;

    if (o == op::rst) {
        remove(c, make_error_code(c.st == state::local_init ? errc::connection_refused
                                                            : errc::connection_reset));
        return;
    }
    if (bad_len) {
        ++stats_.dropped_packets;
        queue_rst(c.local_port, c.peer_port);
        remove(c, make_error_code(errc::connection_reset));
        return;
    }
    switch (c.st) {
    case state::local_init:
        if (o == op::response) {
            c.st = state::established;
            c.deadline.reset();
            events_.push_back({event_kind::connected, c.id, c.local_port, 0, {}});
            schedule(c);
            return;
        }
        break;
    case state::peer_init:
        break; // the host side has not answered yet: the guest must wait
    case state::established:
        switch (o) {
        case op::rw: {
            if (c.peer_shutdown & shutdown_send) break; // data after SHUTDOWN(SEND)
            std::uint32_t n = hdr.len();
            if (n > c.tx.space(cfg_.buf_alloc)) {
                ++stats_.credit_violations;
                break;
            }
            bool was_empty = c.tx.empty();
            std::size_t got = c.tx.push_from(chain, payload_offset, n, cfg_.buf_alloc);
            c.tx_cnt += static_cast<std::uint32_t>(got);
            if (was_empty && got > 0)
                events_.push_back({event_kind::tx_data, c.id, c.local_port, 0, {}});
            schedule(c); // new credit may unblock queued RX data
            return;
        }
        case op::credit_update:
            schedule(c);
            return;
        case op::credit_request:
            c.send_credit_update = true;
            schedule(c);
            return;
        case op::shutdown: {
            std::uint32_t before = c.peer_shutdown;
            c.peer_shutdown |= hdr.flags() & (shutdown_rcv | shutdown_send);
            if ((c.peer_shutdown & shutdown_rcv) && !(before & shutdown_rcv)) {
                events_.push_back(
                    {event_kind::peer_shutdown, c.id, c.local_port, c.peer_shutdown, {}});
                c.rx.pop(c.rx.size()); // the guest will not read it
            }
            if (c.peer_shutdown == (shutdown_rcv | shutdown_send) && !c.tx.empty() &&
                !c.deadline_armed) {
                c.deadline_armed = true;
                c.deadline = clock::time_point::min(); // armed at the next tick
                deadlines_pending_ = true;
            }
            check_guest_shutdown(c);
            return;
        }
        default:
            break;
        }
        break;
    }
    // Anything else is a protocol violation on this connection.
    ++stats_.dropped_packets;
    queue_rst(c.local_port, c.peer_port);
    remove(c, make_error_code(errc::connection_reset));
}

CZ_DECL bool muxer::has_rx() {
    if (!resets_.empty()) return true;
    while (!rx_queue_.empty()) {
        connection* c = find(rx_queue_.front());
        if (c && wants_rx(*c)) return true;
        if (c) c->in_rx_queue = false;
        rx_queue_.pop_front();
    }
    return false;
}

CZ_DECL std::size_t muxer::fill_rx(const descriptor_chain& chain) {
    if (chain.writable_len < packet_header::wire_size || !has_rx()) return 0;
    if (!resets_.empty()) {
        packet_header h = resets_.front();
        resets_.pop_front();
        ++stats_.resets_sent;
        return chain.write(0, h.bytes());
    }
    connection& c = *find(rx_queue_.front()); // has_rx() left a live connection at the front
    rx_queue_.pop_front();
    c.in_rx_queue = false;

    packet_header h;
    std::size_t written = packet_header::wire_size;
    if (c.send_response) {
        c.send_response = false;
        h = header_for(c, op::response);
    } else if (c.send_request) {
        c.send_request = false;
        h = header_for(c, op::request);
    } else if (!c.rx.empty() && peer_credit(c) > 0) {
        std::uint64_t room = chain.writable_len - packet_header::wire_size;
        std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>({c.rx.size(), peer_credit(c), room, max_packet_payload}));
        h = header_for(c, op::rw).len(static_cast<std::uint32_t>(n));
        std::size_t done = 0;
        while (done < n) {
            bytes_view part = c.rx.front();
            part = part.first(std::min(part.size(), n - done));
            chain.write(packet_header::wire_size + done, part);
            c.rx.pop(part.size());
            done += part.size();
        }
        c.rx_cnt += static_cast<std::uint32_t>(n);
        written += n;
        if (c.rx_space_wanted) {
            c.rx_space_wanted = false;
            events_.push_back({event_kind::rx_space, c.id, c.local_port, 0, {}});
        }
    } else if (!c.rx.empty()) {
        c.credit_requested = true;
        ++stats_.credit_requests;
        h = header_for(c, op::credit_request);
    } else if (c.host_eof && !c.shutdown_sent) {
        c.shutdown_sent = true;
        h = header_for(c, op::shutdown).flags(shutdown_send);
    } else {
        ++stats_.credit_updates;
        h = header_for(c, op::credit_update);
    }
    // Every packet carries fwd_cnt, so any of them is a credit update.
    c.send_credit_update = false;
    c.last_fwd_sent = c.fwd_cnt;
    chain.write(0, h.bytes());
    schedule(c);
    return written;
}

CZ_DECL connection_id muxer::connect(std::uint32_t port, std::error_code& ec) {
    ec.clear();
    if (conns_.size() >= cfg_.max_connections) {
        ec = errc::too_many_connections;
        return 0;
    }
    // Round-robin local ports in [2^30, 2^31), skipping tuples in use (Firecracker's scheme).
    std::uint32_t local = 0;
    for (;;) {
        next_local_port_ = ((next_local_port_ + 1) & ((1u << 30) - 1)) | (1u << 30);
        if (!by_tuple_.count(key(next_local_port_, port))) {
            local = next_local_port_;
            break;
        }
    }
    connection_id id = next_id_++;
    connection c{};
    c.id = id;
    c.local_port = local;
    c.peer_port = port;
    c.st = state::local_init;
    c.send_request = true;
    c.deadline = clock::time_point::min(); // armed at the next tick
    c.deadline_armed = true;
    deadlines_pending_ = true;
    auto& ref = conns_.emplace(id, std::move(c)).first->second;
    by_tuple_.emplace(key(local, port), id);
    schedule(ref);
    return id;
}

CZ_DECL void muxer::accept(connection_id id) {
    connection* c = find(id);
    if (!c || c->st != state::peer_init) return;
    c->st = state::established;
    c->send_response = true;
    schedule(*c);
}

CZ_DECL void muxer::refuse(connection_id id) {
    connection* c = find(id);
    if (!c || c->st != state::peer_init) return;
    queue_rst(c->local_port, c->peer_port);
    remove(*c, std::nullopt);
}

CZ_DECL std::size_t muxer::send(connection_id id, bytes_view data) {
    connection* c = find(id);
    if (!c || c->host_eof || (c->peer_shutdown & shutdown_rcv)) return 0;
    std::size_t n = c->rx.push(data, cfg_.rx_buffer_limit);
    if (n < data.size()) c->rx_space_wanted = true;
    schedule(*c);
    return n;
}

CZ_DECL mutable_bytes muxer::send_buffer(connection_id id) {
    connection* c = find(id);
    if (!c || c->host_eof || (c->peer_shutdown & shutdown_rcv)) return {};
    return c->rx.back_space(cfg_.rx_buffer_limit);
}

CZ_DECL void muxer::commit_send(connection_id id, std::size_t n) {
    connection* c = find(id);
    if (!c || n == 0) return;
    c->rx.commit(std::min(n, c->rx.space(cfg_.rx_buffer_limit)));
    schedule(*c);
}

CZ_DECL std::size_t muxer::send_space(connection_id id) const {
    const connection* c = find(id);
    if (!c || c->host_eof || (c->peer_shutdown & shutdown_rcv)) return 0;
    return c->rx.space(cfg_.rx_buffer_limit);
}

CZ_DECL void muxer::notify_send_space(connection_id id) {
    if (connection* c = find(id)) c->rx_space_wanted = true;
}

CZ_DECL bytes_view muxer::pending_tx(connection_id id) const {
    const connection* c = find(id);
    return c ? c->tx.front() : bytes_view{};
}

CZ_DECL void muxer::consume_tx(connection_id id, std::size_t n) {
    connection* c = find(id);
    if (!c) return;
    n = std::min(n, c->tx.size());
    c->tx.pop(n);
    c->fwd_cnt += static_cast<std::uint32_t>(n);
    // Tell the guest about freed space once half its window was freed since it last heard, or
    // once what it believes is free drops below a quarter (see "Credit" in device.hpp). Its
    // window: our buf_alloc, capped by Linux at its own buffer size.
    std::uint32_t window = cfg_.buf_alloc;
    if (c->peer_buf_alloc != 0) window = std::min(window, c->peer_buf_alloc);
    std::uint32_t seen_in_flight = c->tx_cnt - c->last_fwd_sent;
    std::uint32_t seen_free = window - std::min(seen_in_flight, window);
    if (c->fwd_cnt != c->last_fwd_sent &&
        (c->fwd_cnt - c->last_fwd_sent >= window / 2 || seen_free < window / 4)) {
        c->send_credit_update = true;
        schedule(*c);
    }
    check_guest_shutdown(*c);
}

CZ_DECL void muxer::close_send(connection_id id) {
    connection* c = find(id);
    if (!c || c->host_eof) return;
    c->host_eof = true;
    schedule(*c);
}

CZ_DECL void muxer::reset(connection_id id) {
    connection* c = find(id);
    if (!c) return;
    queue_rst(c->local_port, c->peer_port);
    remove(*c, std::nullopt);
}

CZ_DECL void muxer::reset_all(std::error_code reason) {
    std::vector<connection_id> ids;
    ids.reserve(conns_.size());
    for (auto& [id, c] : conns_)
        ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (auto id : ids)
        events_.push_back({event_kind::closed, id, conns_.at(id).local_port, 0, reason});
    conns_.clear();
    by_tuple_.clear();
    rx_queue_.clear();
    resets_.clear();
}

CZ_DECL void muxer::tick(clock::time_point now) {
    if (!deadlines_pending_) return;
    deadlines_pending_ = false;
    std::vector<connection_id> expired;
    for (auto& [id, c] : conns_) {
        if (!c.deadline) continue;
        if (*c.deadline == clock::time_point::min()) {
            bool request = c.st == state::local_init;
            c.deadline = now + (request ? cfg_.request_timeout : cfg_.shutdown_timeout);
        }
        if (*c.deadline <= now)
            expired.push_back(id);
        else
            deadlines_pending_ = true;
    }
    std::sort(expired.begin(), expired.end());
    for (auto id : expired) {
        connection& c = conns_.at(id);
        bool request = c.st == state::local_init;
        queue_rst(c.local_port, c.peer_port);
        remove(c, make_error_code(request ? errc::connection_refused : errc::connection_reset));
    }
}

CZ_DECL bool muxer::poll_event(device_event& out) {
    if (events_.empty()) return false;
    out = events_.front();
    events_.pop_front();
    return true;
}

CZ_DECL bool device::process_tx() {
    bool used = false;
    tx_work_left_ = false;
    for (std::uint32_t budget = tx_.size();; --budget) {
        if (budget == 0) {
            tx_work_left_ = tx_.has_available();
            break;
        }
        std::error_code ec;
        if (!tx_.pop(chain_, ec)) {
            if (ec) {
                ++stats_.bad_chains;
                stats_.last_error = ec;
                break;
            }
            if (!tx_.enable_notification()) break;
            continue;
        }
        tx_.disable_notification();
        used = true;
        ++stats_.tx_chains;
        if (ec) {
            ++stats_.bad_chains;
            stats_.last_error = ec;
        } else if (!chain_.writable.empty() || chain_.readable_len < packet_header::wire_size) {
            ++stats_.bad_packets;
            stats_.last_error = make_error_code(
                chain_.writable.empty() ? errc::malformed_packet : errc::bad_descriptor_direction);
        } else {
            std::array<std::byte, packet_header::wire_size> raw;
            chain_.read(0, raw);
            muxer_.on_guest_packet(packet_header::from_bytes(raw), chain_,
                                   packet_header::wire_size);
        }
        tx_.push_used(chain_.head, 0);
    }
    return used && tx_.needs_notification();
}

CZ_DECL bool device::process_rx() {
    bool used = false;
    rx_work_left_ = false;
    for (std::uint32_t budget = rx_.size(); muxer_.has_rx(); --budget) {
        if (budget == 0) {
            rx_work_left_ = rx_.has_available(); // and has_rx(), or the loop would have ended
            break;
        }
        std::error_code ec;
        if (!rx_.pop(chain_, ec)) {
            if (ec) {
                ++stats_.bad_chains;
                stats_.last_error = ec;
                break;
            }
            // No buffer: wait for the guest's kick, unless one arrived meanwhile.
            if (!rx_.enable_notification()) break;
            continue;
        }
        used = true;
        ++stats_.rx_chains;
        std::uint32_t written = 0;
        if (ec) {
            ++stats_.bad_chains;
            stats_.last_error = ec;
        } else if (!chain_.readable.empty() || chain_.writable_len < packet_header::wire_size) {
            ++stats_.bad_packets;
            stats_.last_error = make_error_code(errc::bad_descriptor_direction);
        } else {
            written = static_cast<std::uint32_t>(muxer_.fill_rx(chain_));
        }
        rx_.push_used(chain_.head, written);
    }
    return used && rx_.needs_notification();
}

} // namespace cz::vsock
