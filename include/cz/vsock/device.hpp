// cz/vsock/device.hpp — the virtio-vsock device: guest memory, the RX and TX virtqueues, and the
// muxer (muxer.hpp) that their packets go to and come from.
//
// The device serves two of the three queues of virtio 1.2 §5.10: rx (0), where the guest posts
// empty buffers for packets to it, and tx (1), where it posts its packets. The event queue (2)
// stays in QEMU. Each pass over a queue is bounded (see work_left), so a guest cannot hold the
// caller's thread.
#pragma once

#include <cz/core/config.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/guest_memory.hpp>
#include <cz/vsock/muxer.hpp>
#include <cz/vsock/virtqueue.hpp>

#include <cstdint>
#include <system_error>

namespace cz::vsock {

// The device: guest memory, the RX (0) and TX (1) virtqueues and the muxer.
class device {
public:
    explicit device(device_config cfg = {}) : muxer_(cfg) {}

    guest_memory& memory() noexcept { return memory_; }
    virtqueue& rx_queue() noexcept { return rx_; }
    virtqueue& tx_queue() noexcept { return tx_; }
    class muxer& connections() noexcept {
        return muxer_;
    }
    std::uint64_t guest_cid() const noexcept { return muxer_.config().guest_cid; }

    // Pops TX chains and hands their packets to the muxer; returns whether the guest wants a
    // used-buffer notification on the TX queue. Bad chains are returned unused and counted.
    CZ_DECL bool process_tx();
    // Fills RX chains while packets are pending; returns whether to notify on the RX queue.
    CZ_DECL bool process_rx();
    // One call of process_tx or process_rx handles at most a queue's size of chains: all a
    // driver can have made available at once. A guest that refills a queue as fast as the device
    // empties it (or makes it refill itself, with buffers pointed at its own avail ring) is then
    // served in turns instead of holding the caller's thread forever. True when the last calls
    // stopped at that limit with chains left: call them again soon (after other work).
    bool work_left() const noexcept { return tx_work_left_ || rx_work_left_; }

    struct statistics {
        std::uint64_t tx_chains = 0;   // popped from the TX queue (guest packets)
        std::uint64_t rx_chains = 0;   // RX buffers used (packets to the guest)
        std::uint64_t bad_chains = 0;  // rejected by virtqueue::pop
        std::uint64_t bad_packets = 0; // too short, wrong direction
        std::error_code last_error;    // the most recent rejection
    };
    const statistics& stats() const noexcept { return stats_; }

private:
    guest_memory memory_;
    virtqueue rx_;
    virtqueue tx_;
    bool tx_work_left_ = false;
    bool rx_work_left_ = false;
    class muxer muxer_;
    descriptor_chain chain_;
    statistics stats_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/device.ipp>
#endif
