// cz/vsock/muxer.hpp — the virtio-vsock connection multiplexer: packets to and from the guest,
// connections by tuple, credit flow, events for the host side.
//
// Primer (virtio 1.2 §5.10 "Socket Device"). The guest sends packets on the TX queue and gives
// the device empty buffers on the RX queue to fill. A connection is the 4-tuple (guest cid:port,
// host cid 2:port):
//
//   REQUEST  ->  RESPONSE           connection set up (either side may request)
//   REQUEST  ->  RST                refused
//   RW                              payload; allowed only within the receiver's credit
//   SHUTDOWN(flags)                 RCV=1: sender will receive no more; SEND=2: will send no more.
//                                   Flags are sticky. A clean close is SHUTDOWN(RCV|SEND), then
//                                   an RST from the peer (or one of our own after a timeout).
//   RST                             connection gone; never answered with an RST
//
// Credit: each side advertises in every packet `buf_alloc` (its receive buffer for this
// connection) and `fwd_cnt` (free-running count of bytes it has consumed). A sender may have at
// most `peer_buf_alloc - (sent - peer_fwd_cnt)` bytes in flight (u32 wrapping arithmetic). With no
// credit it sends CREDIT_REQUEST; the receiver answers with CREDIT_UPDATE, and sends one
// unprompted when it has freed enough space. Every packet of either kind costs the guest about
// as much as a packet of data (a buffer, an interrupt, a trip through its socket layer), so
// this device sends as few as keep the data moving:
//  - guest->host: a CREDIT_UPDATE once half the guest's window was freed since it last heard,
//    or once what it believes is free drops below a quarter. The window is the smaller of our
//    buf_alloc and the guest's own: Linux caps its credit at its own buffer size.
//  - host->guest: a CREDIT_REQUEST as soon as our data runs out of credit. Linux would send an
//    update by itself once its reader empties the queue, but its answer to a request comes
//    sooner, from what the reader has consumed so far, and keeps the guest from waiting idle.
//
// Here, guest->host bytes wait in a per-connection buffer of `buf_alloc` bytes until the host
// side has written them to its socket; a guest that sends beyond its credit is reset (credit makes
// overflow impossible for a correct guest, as in Firecracker). Host->guest bytes wait in a
// per-connection buffer of `rx_buffer_limit` bytes, from which RX packets are built within the
// guest's credit. So memory per VM is bounded by max_connections × (buf_alloc + rx_buffer_limit).
//
// `muxer` is the protocol alone: no I/O, no clock of its own, driven by guest packets, host
// calls and `tick(now)`; it reports what the host side must do as events (poll_event). Each
// connection's states and what it owes the guest are cz::vsock::connection (connection.hpp);
// `device` (device.hpp) adds the two virtqueues over guest memory.
// Where the spec is silent this follows Firecracker: host-initiated local ports are allocated
// round-robin in [2^30, 2^31), REQUEST and SHUTDOWN time out after 2 s, at most 1023 connections.
// Unlike Firecracker, a host EOF is sent as SHUTDOWN(SEND) only (a real half-close), and a guest
// SHUTDOWN(SEND) becomes shutdown(SHUT_WR) on the host socket once its data is written.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/vsock/connection.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/packet.hpp>
#include <cz/vsock/virtqueue.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace cz::vsock {

struct device_config {
    std::uint64_t guest_cid = 3;
    // Our receive buffer per connection (guest->host), advertised as buf_alloc.
    std::uint32_t buf_alloc = 256 * 1024;
    // Host->guest bytes buffered per connection before the host side must wait.
    std::uint32_t rx_buffer_limit = 256 * 1024;
    // Connections per VM; guest REQUESTs beyond it get an RST, host connects fail.
    std::size_t max_connections = 1023;
    // RSTs for packets that match no connection, waiting for RX buffers; more are dropped.
    std::size_t max_pending_resets = 256;
    std::chrono::milliseconds request_timeout{2000};
    std::chrono::milliseconds shutdown_timeout{2000};
};

enum class event_kind {
    // The guest connects to host port `port`: call accept(id) or refuse(id).
    guest_connect,
    // A connection from connect() was accepted by the guest.
    connected,
    // pending_tx(id) became non-empty: write it to the host side and call consume_tx.
    tx_data,
    // The guest shut down its side: `flags` has shutdown_send (all its data has been handed over
    // through pending_tx already: shut down writing on the host socket) and/or shutdown_rcv.
    peer_shutdown,
    // pending_rx space opened up after send() accepted less than offered.
    rx_space,
    // The connection is gone (ec clear: clean close after both sides shut down; otherwise
    // connection_refused or connection_reset). Drop the host side; the id is dead.
    closed,
};

struct device_event {
    event_kind kind;
    connection_id id;
    std::uint32_t port = 0;
    std::uint32_t flags = 0;
    std::error_code ec;
};

class muxer {
public:
    using clock = std::chrono::steady_clock;

    explicit muxer(device_config cfg = {})
        : cfg_(cfg), lim_{cfg.guest_cid, cfg.buf_alloc, cfg.rx_buffer_limit} {}

    const device_config& config() const noexcept { return cfg_; }

    // --- guest side -----------------------------------------------------------------------
    // One packet from the TX queue: its header (already copied out of guest memory) and the
    // chain, whose payload starts at `payload_offset`. Malformed packets are dropped or reset;
    // nothing the guest sends makes this fail.
    CZ_DECL void on_guest_packet(const packet_header& hdr, const descriptor_chain& chain,
                                 std::uint64_t payload_offset);
    // Whether a packet is waiting for an RX buffer.
    CZ_DECL bool has_rx();
    // Writes the next packet into an RX chain; returns the bytes written (0 when nothing is
    // pending or the chain is shorter than a header).
    CZ_DECL std::size_t fill_rx(const descriptor_chain& chain);

    // --- host side ------------------------------------------------------------------------
    // Opens a connection to the guest's `port` (host-initiated); `connected` or `closed` follows.
    CZ_DECL connection_id connect(std::uint32_t port, std::error_code& ec);
    // Answers a guest_connect event.
    CZ_DECL void accept(connection_id id);
    CZ_DECL void refuse(connection_id id);
    // Buffers host->guest bytes; returns how many were taken (0 when full or not connected).
    CZ_DECL std::size_t send(connection_id id, bytes_view data);
    // The same without a copy: a contiguous part of the free buffer space (empty when send()
    // would take nothing), to fill in place, then commit_send() with the bytes written there.
    CZ_DECL mutable_bytes send_buffer(connection_id id);
    CZ_DECL void commit_send(connection_id id, std::size_t n);
    CZ_DECL std::size_t send_space(connection_id id) const;
    // Asks for an rx_space event once send_space(id) grows again (call when it is 0).
    CZ_DECL void notify_send_space(connection_id id);
    // Guest->host bytes not yet consumed (the contiguous front part), and consuming them.
    CZ_DECL bytes_view pending_tx(connection_id id) const;
    CZ_DECL void consume_tx(connection_id id, std::size_t n);
    // The host side will send no more (EOF on its socket): SHUTDOWN(SEND) once pending data is out.
    CZ_DECL void close_send(connection_id id);
    // The host side is gone: RST the guest and forget the connection (no event).
    CZ_DECL void reset(connection_id id);
    // Forgets every connection, with a `closed` event carrying `reason` for each (device reset,
    // frontend gone, guest reboot).
    CZ_DECL void reset_all(std::error_code reason);
    // Expires REQUEST and SHUTDOWN timeouts.
    CZ_DECL void tick(clock::time_point now);

    CZ_DECL bool poll_event(device_event& out);
    std::size_t connection_count() const noexcept { return conns_.size(); }
    std::size_t pending_events() const noexcept { return events_.size(); }
    std::size_t pending_resets() const noexcept { return resets_.size(); }
    // Whether `id` is a live connection.
    bool contains(connection_id id) const noexcept { return conns_.count(id) != 0; }
    // A live connection, to inspect its state (nullptr when `id` is not live).
    const connection* lookup(connection_id id) const noexcept { return find(id); }

    // Counters for tests and logs.
    struct statistics {
        std::uint64_t dropped_packets = 0;   // wrong CID, malformed, unknown op
        std::uint64_t credit_violations = 0; // guest sent beyond its credit
        std::uint64_t resets_sent = 0;
        std::uint64_t resets_dropped = 0;  // max_pending_resets exceeded
        std::uint64_t credit_requests = 0; // CREDIT_REQUESTs sent (no credit, data waiting)
        std::uint64_t credit_updates = 0;  // CREDIT_UPDATEs sent (requested or unprompted)
    };
    const statistics& stats() const noexcept { return stats_; }

private:
    static std::uint64_t key(std::uint32_t local, std::uint32_t peer) noexcept {
        return (std::uint64_t{local} << 32) | peer;
    }
    CZ_DECL connection* find(connection_id id) noexcept;
    CZ_DECL const connection* find(connection_id id) const noexcept;
    CZ_DECL void remove(connection& c, std::optional<std::error_code> closed_event);
    CZ_DECL void queue_rst(std::uint32_t local_port, std::uint32_t peer_port);
    CZ_DECL void schedule(connection& c);
    // Raises what the guest's data being taken or its SHUTDOWN leads to (check_drained).
    CZ_DECL void after_drain(connection& c);

    device_config cfg_;
    connection_limits lim_;
    std::unordered_map<connection_id, connection> conns_;
    std::unordered_map<std::uint64_t, connection_id> by_tuple_;
    std::deque<connection_id> rx_queue_;
    std::deque<packet_header> resets_;
    std::deque<device_event> events_;
    connection_id next_id_ = 1;
    std::uint32_t next_local_port_ = (1u << 30) - 1;
    bool deadlines_pending_ = false;
    statistics stats_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/muxer.ipp>
#endif
