// Out-of-line definitions for cz/vsock/muxer.hpp.
#pragma once

#include <cz/vsock/muxer.hpp>
#include <cz/vsock/protocol.hpp>

#include <algorithm>

namespace cz::vsock {

CZ_DECL connection* muxer::find(connection_id id) noexcept {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : &it->second;
}

CZ_DECL const connection* muxer::find(connection_id id) const noexcept {
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
    if (closed_event)
        events_.push_back({event_kind::closed, c.id(), c.local_port(), 0, *closed_event});
    by_tuple_.erase(key(c.local_port(), c.peer_port()));
    conns_.erase(c.id()); // the id may linger in rx_queue_; has_rx/fill_rx skip dead ids
}

CZ_DECL void muxer::schedule(connection& c) {
    if (!c.in_rx_queue && c.wants_rx()) {
        c.in_rx_queue = true;
        rx_queue_.push_back(c.id());
    }
}

CZ_DECL void muxer::after_drain(connection& c) {
    auto news = c.check_drained();
    if (news.peer_send_shutdown)
        events_.push_back(
            {event_kind::peer_shutdown, c.id(), c.local_port(), c.peer_shutdown(), {}});
    if (news.clean_close) {
        queue_rst(c.local_port(), c.peer_port());
        remove(c, std::error_code{});
    }
}

CZ_DECL void muxer::on_guest_packet(const packet_header& hdr, const descriptor_chain& chain,
                                    std::uint64_t payload_offset) {
    // Anti-spoofing and addressing: only packets from our guest to the host.
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
            conns_.emplace(id, connection::incoming(id, hdr));
            by_tuple_.emplace(key(hdr.dst_port(), hdr.src_port()), id);
            events_.push_back({event_kind::guest_connect, id, hdr.dst_port(), 0, {}});
            return;
        }
        // Data before connect, a second RST, anything for a tuple we do not know: an RST, unless
        // it is one.
        if (o != op::rst) {
            if (o < op::request || o > op::credit_request) ++stats_.dropped_packets;
            queue_rst(hdr.dst_port(), hdr.src_port());
        }
        return;
    }

    connection& c = conns_.at(it->second);
    auto out = c.on_guest_packet(hdr, !bad_len, chain, payload_offset, lim_);
    switch (out.what) {
    case connection::verdict::reset_by_peer:
        remove(c, c.close_reason());
        return;
    case connection::verdict::violation:
        ++stats_.dropped_packets;
        if (out.credit_violation) ++stats_.credit_violations;
        queue_rst(c.local_port(), c.peer_port());
        remove(c, c.close_reason());
        return;
    case connection::verdict::ok:
        break;
    }
    if (out.connected) events_.push_back({event_kind::connected, c.id(), c.local_port(), 0, {}});
    if (out.tx_data) events_.push_back({event_kind::tx_data, c.id(), c.local_port(), 0, {}});
    if (out.rcv_shutdown)
        events_.push_back(
            {event_kind::peer_shutdown, c.id(), c.local_port(), c.peer_shutdown(), {}});
    if (out.deadline_started) deadlines_pending_ = true;
    schedule(c); // a response, new credit or a request for it may have made a packet due
    if (o == op::shutdown) after_drain(c);
}

CZ_DECL bool muxer::has_rx() {
    if (!resets_.empty()) return true;
    while (!rx_queue_.empty()) {
        connection* c = find(rx_queue_.front());
        if (c && c->wants_rx()) return true;
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
    auto out = c.fill_rx(chain, lim_);
    if (out.rx_space) events_.push_back({event_kind::rx_space, c.id(), c.local_port(), 0, {}});
    if (out.sent == op::credit_request) ++stats_.credit_requests;
    if (out.sent == op::credit_update) ++stats_.credit_updates;
    schedule(c);
    return out.written;
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
    auto& ref = conns_.emplace(id, connection::outgoing(id, local, port)).first->second;
    by_tuple_.emplace(key(local, port), id);
    deadlines_pending_ = true; // the REQUEST timeout, armed at the next tick
    schedule(ref);
    return id;
}

CZ_DECL void muxer::accept(connection_id id) {
    connection* c = find(id);
    if (c && c->accept()) schedule(*c);
}

CZ_DECL void muxer::refuse(connection_id id) {
    connection* c = find(id);
    if (!c || !c->can_refuse()) return;
    c->kill();
    queue_rst(c->local_port(), c->peer_port());
    remove(*c, std::nullopt);
}

CZ_DECL std::size_t muxer::send(connection_id id, bytes_view data) {
    connection* c = find(id);
    if (!c || !c->accepts_data()) return 0;
    std::size_t n = c->send(data, lim_);
    schedule(*c);
    return n;
}

CZ_DECL mutable_bytes muxer::send_buffer(connection_id id) {
    connection* c = find(id);
    return c ? c->send_buffer(lim_) : mutable_bytes{};
}

CZ_DECL void muxer::commit_send(connection_id id, std::size_t n) {
    connection* c = find(id);
    if (!c || n == 0) return;
    c->commit_send(n, lim_);
    schedule(*c);
}

CZ_DECL std::size_t muxer::send_space(connection_id id) const {
    const connection* c = find(id);
    return c ? c->send_space(lim_) : 0;
}

CZ_DECL void muxer::notify_send_space(connection_id id) {
    if (connection* c = find(id)) c->notify_send_space();
}

CZ_DECL bytes_view muxer::pending_tx(connection_id id) const {
    const connection* c = find(id);
    return c ? c->pending_tx() : bytes_view{};
}

CZ_DECL void muxer::consume_tx(connection_id id, std::size_t n) {
    connection* c = find(id);
    if (!c) return;
    c->consume_tx(n, lim_);
    if (c->pending_rx().contains(pending_packet::credit_update)) schedule(*c);
    after_drain(*c);
}

CZ_DECL void muxer::close_send(connection_id id) {
    connection* c = find(id);
    if (c && c->close_send()) schedule(*c);
}

CZ_DECL void muxer::reset(connection_id id) {
    connection* c = find(id);
    if (!c) return;
    c->kill();
    queue_rst(c->local_port(), c->peer_port());
    remove(*c, std::nullopt);
}

CZ_DECL void muxer::reset_all(std::error_code reason) {
    std::vector<connection_id> ids;
    ids.reserve(conns_.size());
    for (auto& [id, c] : conns_)
        ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (auto id : ids)
        events_.push_back({event_kind::closed, id, conns_.at(id).local_port(), 0, reason});
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
        if (!c.has_deadline()) continue;
        if (c.deadline_passed(now, cfg_.request_timeout, cfg_.shutdown_timeout))
            expired.push_back(id);
        else
            deadlines_pending_ = true;
    }
    std::sort(expired.begin(), expired.end());
    for (auto id : expired) {
        connection& c = conns_.at(id);
        c.kill();
        queue_rst(c.local_port(), c.peer_port());
        remove(c, c.close_reason());
    }
}

CZ_DECL bool muxer::poll_event(device_event& out) {
    if (events_.empty()) return false;
    out = events_.front();
    events_.pop_front();
    return true;
}

} // namespace cz::vsock
