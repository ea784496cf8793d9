// cz/vsock/connection.hpp — one virtio-vsock stream connection as a state machine: its state,
// the control packets it owes the guest, its credit and its two buffers.
//
// A connection does no I/O, has no clock and knows no other connection. cz::vsock::muxer
// (muxer.hpp) owns the connections, routes each guest packet to one by its (host port, guest
// port) tuple, turns what the transitions report into host events and RSTs, and forgets a
// connection once it is killed. The states follow Firecracker's ConnState ("local" is the host
// side, "peer" the guest):
//
//   local_init  --RESPONSE-->             established   host connect(); our REQUEST owed or sent
//   local_init  --RST, timeout-->         killed        refused
//   peer_init   --accept()-->             established   a RESPONSE owed
//   peer_init   --refuse()-->             killed        answered with an RST
//   established --SHUTDOWN(RCV|SEND)-->   peer_closed   the guest is done; its data waits for the
//                                                       host side (shutdown_timeout), or, when
//                                                       none waits, a clean close at once
//   peer_closed --host took the rest-->   killed        clean close: an RST answers the SHUTDOWN
//   peer_closed --timeout-->              killed        reset
//   any         --RST from the guest-->   killed        never answered
//   any         --protocol violation-->   killed        reset: an RST to the guest
//
// Half-closes are not states. The guest's SHUTDOWN flags are sticky bits (peer_shutdown()); a
// SHUTDOWN(SEND) from it is told to the host side once its data has been taken. A host EOF
// (close_send) owes the guest a SHUTDOWN(SEND) after the buffered data: a real half-close, where
// Firecracker closes the whole connection (its local_closed state).
//
// What a connection owes the guest is the set `pending_rx()` of control packets, sent before
// anything else in the order request/response, data (RW, or one CREDIT_REQUEST while the guest's
// credit is 0), SHUTDOWN (once the data is out), CREDIT_UPDATE. RSTs are not in the set: a
// killed connection is forgotten at once (its tuple and slot are free again), and its RST waits
// in the muxer's queue with those for packets that match no connection.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/packet.hpp>
#include <cz/vsock/virtqueue.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <vector>

namespace cz::vsock {

// Identifies one connection for its whole life; never reused within a muxer.
using connection_id = std::uint64_t;

enum class connection_state : std::uint8_t {
    // Host-initiated: our REQUEST is owed or sent; waiting for the guest's RESPONSE.
    local_init,
    // Guest-initiated: its REQUEST arrived; waiting for the host side's accept() or refuse().
    peer_init,
    // Open. Either direction may have been shut down (peer_shutdown(), host_send_closed()).
    established,
    // The guest sent SHUTDOWN(RCV|SEND) while bytes it sent still wait for the host side.
    peer_closed,
    // Over (refused, reset or closed cleanly); the muxer forgets it.
    killed,
};

// Control packets a connection owes the guest.
enum class pending_packet : std::uint8_t {
    request = 1,
    response = 2,
    shutdown = 4, // SHUTDOWN(SEND) after a host EOF, once the buffered data is out
    credit_update = 8,
};

// Things the host side asked to be told (device events the muxer raises for it).
enum class host_notice : std::uint8_t {
    rx_space = 1,           // send_space() grew again
    peer_send_shutdown = 2, // the guest's SHUTDOWN(SEND), once its data has been taken
};

// A set of the enumerators of a flag enum (each one bit).
template <class Enum>
class flag_set {
public:
    bool contains(Enum e) const noexcept { return (bits_ & bit(e)) != 0; }
    bool empty() const noexcept { return bits_ == 0; }
    void insert(Enum e) noexcept { bits_ |= bit(e); }
    void erase(Enum e) noexcept { bits_ &= static_cast<underlying>(~bit(e)); }
    // Erases `e`; returns whether it was there.
    bool take(Enum e) noexcept {
        bool had = contains(e);
        erase(e);
        return had;
    }

private:
    using underlying = std::underlying_type_t<Enum>;
    static underlying bit(Enum e) noexcept { return static_cast<underlying>(e); }
    underlying bits_ = 0;
};

namespace detail {

// A fixed-capacity byte FIFO (allocated on first use) for per-connection buffering.
class byte_ring {
public:
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t space(std::size_t capacity) const noexcept { return capacity - size_; }
    CZ_DECL std::size_t push(bytes_view data, std::size_t capacity);
    // The contiguous front part of the content.
    CZ_DECL bytes_view front() const noexcept;
    CZ_DECL void pop(std::size_t n) noexcept;
    // The contiguous free space after the content (empty when full), for a caller that fills
    // the buffer in place (a socket read) and then calls commit() with what it wrote.
    CZ_DECL mutable_bytes back_space(std::size_t capacity);
    void commit(std::size_t n) noexcept { size_ += n; }
    // Appends up to `n` bytes read from `chain` at `offset`; returns how many.
    CZ_DECL std::size_t push_from(const descriptor_chain& chain, std::uint64_t offset,
                                  std::size_t n, std::size_t capacity);

private:
    std::vector<std::byte> buf_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace detail

// The sizes and addresses a connection needs from its device's configuration.
struct connection_limits {
    std::uint64_t guest_cid = 3;
    std::uint32_t buf_alloc = 256 * 1024;       // our receive buffer (guest->host bytes)
    std::uint32_t rx_buffer_limit = 256 * 1024; // host->guest bytes buffered
};

class connection {
public:
    using clock = std::chrono::steady_clock;

    // What a guest packet did, for the muxer to act on.
    enum class verdict : std::uint8_t {
        ok,            // handled; the connection lives on
        violation,     // a protocol violation: killed (connection_reset), RST the guest
        reset_by_peer, // the guest sent RST: killed (close_reason()), no answer
    };
    struct guest_outcome {
        verdict what = verdict::ok;
        bool connected = false;        // local_init -> established: the guest accepted
        bool tx_data = false;          // an RW made the guest->host buffer non-empty
        bool rcv_shutdown = false;     // a SHUTDOWN newly set shutdown_rcv: tell the host now
        bool deadline_started = false; // -> peer_closed: the shutdown timeout runs
        bool credit_violation = false; // the guest sent beyond its credit (a violation)
    };
    // What fill_rx sent.
    struct rx_outcome {
        std::size_t written = 0; // bytes written into the chain (0: nothing was due)
        op sent = op::invalid;
        bool rx_space = false; // data went out and the host asked to hear of space
    };

    // Host-initiated (connect()): local_init, a REQUEST owed, the request timeout to arm.
    CZ_DECL static connection outgoing(connection_id id, std::uint32_t local_port,
                                       std::uint32_t peer_port);
    // Guest-initiated: peer_init, with the credit its REQUEST carries.
    CZ_DECL static connection incoming(connection_id id, const packet_header& request);

    connection_id id() const noexcept { return id_; }
    std::uint32_t local_port() const noexcept { return local_port_; }
    std::uint32_t peer_port() const noexcept { return peer_port_; }
    connection_state state() const noexcept { return state_; }
    const flag_set<pending_packet>& pending_rx() const noexcept { return pending_; }
    // The guest's SHUTDOWN flags so far (shutdown_rcv, shutdown_send).
    std::uint32_t peer_shutdown() const noexcept { return peer_shutdown_; }
    // The host side will send no more (close_send).
    bool host_send_closed() const noexcept { return host_send_closed_; }
    // Whether a REQUEST or SHUTDOWN timeout runs.
    bool has_deadline() const noexcept { return deadline_.has_value(); }
    // The bytes the guest can still take, by its last word on buf_alloc and fwd_cnt.
    CZ_DECL std::uint32_t peer_credit() const noexcept;

    // --- guest packets (the muxer routed `hdr` here by its tuple) ----------------------------
    // `payload_ok` is false when an RW's length exceeds max_packet_payload or what the chain
    // holds after `payload_offset`.
    CZ_DECL guest_outcome on_guest_packet(const packet_header& hdr, bool payload_ok,
                                          const descriptor_chain& chain,
                                          std::uint64_t payload_offset,
                                          const connection_limits& lim);

    // --- host side ----------------------------------------------------------------------------
    // peer_init -> established with a RESPONSE owed; false (and no change) in any other state.
    CZ_DECL bool accept() noexcept;
    bool can_refuse() const noexcept { return state_ == connection_state::peer_init; }
    // Host->guest bytes are taken while the host may send and the guest may receive.
    CZ_DECL bool accepts_data() const noexcept;
    CZ_DECL std::size_t send(bytes_view data, const connection_limits& lim);
    CZ_DECL mutable_bytes send_buffer(const connection_limits& lim);
    CZ_DECL void commit_send(std::size_t n, const connection_limits& lim);
    CZ_DECL std::size_t send_space(const connection_limits& lim) const noexcept;
    void notify_send_space() noexcept { notices_.insert(host_notice::rx_space); }
    // Guest->host bytes not yet taken (the contiguous front part), and taking them. A
    // CREDIT_UPDATE becomes owed once the guest should hear of the freed space.
    bytes_view pending_tx() const noexcept { return tx_.front(); }
    CZ_DECL void consume_tx(std::size_t n, const connection_limits& lim);
    // Host EOF: a SHUTDOWN(SEND) owed once the data is out. False when already closed.
    CZ_DECL bool close_send() noexcept;

    // After the host took guest bytes or the guest shut down: whether the host should now hear
    // of the guest's SHUTDOWN(SEND) (once), and whether the connection closed cleanly (the
    // guest shut down both ways and all its data was taken: killed, answer with an RST).
    struct drain_outcome {
        bool peer_send_shutdown = false;
        bool clean_close = false;
    };
    CZ_DECL drain_outcome check_drained() noexcept;

    // --- RX -------------------------------------------------------------------------------------
    // Whether the connection has a packet for the guest now.
    CZ_DECL bool wants_rx() const noexcept;
    // Writes the next packet into `chain`, which holds at least a header.
    CZ_DECL rx_outcome fill_rx(const descriptor_chain& chain, const connection_limits& lim);

    // --- timers and ends ----------------------------------------------------------------------
    // Whether the REQUEST or SHUTDOWN timeout has passed at `now`. A deadline set since the
    // last call starts counting at this call's `now`.
    CZ_DECL bool deadline_passed(clock::time_point now, std::chrono::milliseconds request_timeout,
                                 std::chrono::milliseconds shutdown_timeout) noexcept;
    // Kills the connection (host side gone, timeout): close_reason() is connection_refused
    // before it was established, else connection_reset.
    CZ_DECL void kill() noexcept;
    // Why a killed connection ended: clear for a clean close.
    const std::error_code& close_reason() const noexcept { return close_reason_; }

    // The muxer's: whether the connection is listed in its RX queue.
    bool in_rx_queue = false;

private:
    connection(connection_id id, std::uint32_t local_port, std::uint32_t peer_port,
               connection_state st) noexcept
        : id_(id), local_port_(local_port), peer_port_(peer_port), state_(st) {}
    CZ_DECL packet_header header(op o, const connection_limits& lim) const noexcept;
    CZ_DECL void on_open_packet(const packet_header& hdr, const descriptor_chain& chain,
                                std::uint64_t payload_offset, const connection_limits& lim,
                                guest_outcome& out);
    CZ_DECL void on_guest_shutdown(std::uint32_t flags, guest_outcome& out);
    void start_deadline() noexcept { deadline_ = clock::time_point::min(); }
    void kill(std::error_code why) noexcept {
        state_ = connection_state::killed;
        close_reason_ = why;
        deadline_.reset();
    }

    connection_id id_;
    std::uint32_t local_port_;
    std::uint32_t peer_port_;
    connection_state state_;
    flag_set<pending_packet> pending_;
    flag_set<host_notice> notices_;
    std::uint32_t peer_shutdown_ = 0;
    bool host_send_closed_ = false;
    // A CREDIT_REQUEST went out and the guest has given no credit since.
    bool credit_requested_ = false;
    std::uint32_t peer_buf_alloc_ = 0;
    std::uint32_t peer_fwd_cnt_ = 0;
    std::uint32_t rx_cnt_ = 0;        // payload bytes sent to the guest
    std::uint32_t fwd_cnt_ = 0;       // guest bytes consumed by the host side
    std::uint32_t last_fwd_sent_ = 0; // fwd_cnt as last told to the guest
    std::uint32_t tx_cnt_ = 0;        // payload bytes received from the guest
    detail::byte_ring tx_;            // guest -> host
    detail::byte_ring rx_;            // host -> guest
    // REQUEST or SHUTDOWN deadline; clock::time_point::min() until the next tick starts it.
    std::optional<clock::time_point> deadline_;
    std::error_code close_reason_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/connection.ipp>
#endif
