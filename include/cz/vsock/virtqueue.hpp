// cz/vsock/virtqueue.hpp — a split virtqueue (device side) over mapped guest memory.
//
// Primer (virtio 1.2 §2.7 "Split Virtqueues"). A queue of size Q (a power of two) has three
// parts in guest memory, all little-endian:
//
//   descriptor table  16·Q bytes, align 16: { le64 addr; le32 len; le16 flags; le16 next }
//                     flags NEXT=1 (chain continues at `next`), WRITE=2 (device writes),
//                     INDIRECT=4 (addr/len is a table of further descriptors)
//   available ring    6+2·Q, align 2: { le16 flags; le16 idx; le16 ring[Q]; le16 used_event }
//   used ring         6+8·Q, align 4: { le16 flags; le16 idx; {le32 id; le32 len} ring[Q];
//                                       le16 avail_event }
//
// The driver (guest) puts chain heads in avail.ring and bumps avail.idx; the device pops them in
// order, and returns each head in used.ring with the number of bytes it wrote, then bumps
// used.idx. Both indices are free-running u16s. With VIRTIO_F_EVENT_IDX, `used_event` tells the
// device when the driver wants an interrupt and `avail_event` tells the driver when the device
// wants a kick.
//
// Everything here comes from the guest and is hostile: `pop` copies each descriptor once, checks
// every index against the table it indexes, every [addr, addr+len) against guest memory, caps a
// chain at the size of its table (which makes loops impossible), refuses an avail.idx that moved
// more than Q and checks descriptor directions. A bad chain is reported and handed back (the
// caller returns it used with length 0); a bad avail.idx breaks the ring until it is configured
// again (Firecracker's behaviour, minus stopping the VMM).
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/guest_memory.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace cz::vsock {

// The ring indices are read and written with atomic operations in place, which assumes a
// little-endian host, like the virtio 1.x layout.
static_assert(std::endian::native == std::endian::little, "cz::vsock needs a little-endian host");

// Descriptor flags (virtio 1.2 §2.7.5).
inline constexpr std::uint16_t desc_f_next = 1;
inline constexpr std::uint16_t desc_f_write = 2;
inline constexpr std::uint16_t desc_f_indirect = 4;
// avail.flags / used.flags (§2.7.7, §2.7.8).
inline constexpr std::uint16_t avail_f_no_interrupt = 1;
inline constexpr std::uint16_t used_f_no_notify = 1;

// The largest queue this device accepts (QEMU's vhost-user-vsock uses 128).
inline constexpr std::uint16_t max_queue_size = 1024;

// One guest buffer, already translated and bounds-checked.
struct buffer_segment {
    std::byte* data;
    std::uint32_t len;
};

// A popped descriptor chain: its head (to return in the used ring) and its device-readable and
// device-writable buffers, in order.
struct descriptor_chain {
    std::uint16_t head = 0;
    std::vector<buffer_segment> readable;
    std::vector<buffer_segment> writable;
    std::uint64_t readable_len = 0;
    std::uint64_t writable_len = 0;

    void clear() noexcept {
        readable.clear();
        writable.clear();
        readable_len = writable_len = 0;
    }
    // Copies up to out.size() bytes of the readable buffers, starting `offset` bytes into them.
    CZ_DECL std::size_t read(std::uint64_t offset, mutable_bytes out) const noexcept;
    // Copies up to in.size() bytes into the writable buffers, starting `offset` bytes into them.
    CZ_DECL std::size_t write(std::uint64_t offset, bytes_view in) const noexcept;
};

class virtqueue {
public:
    // Validates and records the ring's place (GPAs) and size; the queue is then ready with
    // next_avail = 0 and used.idx read back from guest memory (so a restarted ring continues).
    // Sizes must be powers of two in [1, max_queue_size]; the three parts must be aligned, lie
    // in guest memory and not overlap. Errors: errc::invalid_ring.
    CZ_DECL void configure(const guest_memory& mem, std::uint16_t size, std::uint64_t desc_gpa,
                           std::uint64_t avail_gpa, std::uint64_t used_gpa, std::error_code& ec);

    // Re-resolves the ring after the memory table changed; stops the queue when it no longer fits.
    CZ_DECL void remap(const guest_memory& mem, std::error_code& ec);

    // Negotiated features: VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX.
    void set_features(bool indirect, bool event_idx) noexcept {
        indirect_ = indirect;
        event_idx_ = event_idx;
    }

    // Stops the queue; it must be configured again before use.
    void reset() noexcept { *this = virtqueue{}; }

    bool ready() const noexcept { return ready_ && !broken_; }
    bool broken() const noexcept { return broken_; }
    std::uint16_t size() const noexcept { return size_; }
    std::uint16_t next_avail() const noexcept { return next_avail_; }
    void set_next_avail(std::uint16_t v) noexcept { next_avail_ = v; }

    // Whether the driver has made chains available that were not popped yet.
    CZ_DECL bool has_available() const noexcept;

    // Pops the next available chain into `out`. Returns false when there is none (ec clear) or
    // when the ring is broken (ec = errc::avail_index_jump). Returns true with ec set when the
    // chain itself is bad: the chain is consumed and `out.head` must be returned with
    // push_used(out.head, 0).
    CZ_DECL bool pop(descriptor_chain& out, std::error_code& ec);

    // Returns chain `head` to the driver with `written` bytes written into it.
    CZ_DECL void push_used(std::uint16_t head, std::uint32_t written) noexcept;

    // After push_used calls: whether the driver wants to be notified (EVENT_IDX's
    // vring_need_event, or !NO_INTERRUPT). Resets the "since last notification" point.
    CZ_DECL bool needs_notification() noexcept;

    // Asks the driver for kicks again (writes avail_event, or clears used.flags NO_NOTIFY) and
    // returns whether chains arrived meanwhile (re-check after enabling, as the spec asks).
    CZ_DECL bool enable_notification() noexcept;
    // Tells the driver that kicks are not needed while the device is busy.
    CZ_DECL void disable_notification() noexcept;

private:
    CZ_DECL void resolve(const guest_memory& mem, std::error_code& ec);
    CZ_DECL std::uint16_t load_avail_idx() const noexcept;

    const guest_memory* mem_ = nullptr;
    std::uint16_t size_ = 0;
    std::uint64_t desc_gpa_ = 0, avail_gpa_ = 0, used_gpa_ = 0;
    std::byte* desc_ = nullptr;
    std::byte* avail_ = nullptr;
    std::byte* used_ = nullptr;
    std::uint16_t next_avail_ = 0;
    std::uint16_t next_used_ = 0;
    std::uint16_t signalled_used_ = 0;
    bool signalled_valid_ = false;
    bool indirect_ = false;
    bool event_idx_ = false;
    bool ready_ = false;
    bool broken_ = false;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/virtqueue.ipp>
#endif
