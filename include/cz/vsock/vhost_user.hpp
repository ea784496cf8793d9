// cz/vsock/vhost_user.hpp — the vhost-user backend protocol for the vsock device (no I/O).
//
// Primer (QEMU docs/interop/vhost-user.rst). The frontend (QEMU) connects to the backend's Unix
// socket and sends messages: a 12-byte native-endian header { u32 request; u32 flags; u32 size }
// then `size` payload bytes; file descriptors travel as SCM_RIGHTS with the header. Replies carry
// the same request id and flags exactly 0x5 (version 1 | REPLY), which QEMU checks.
//
// The order QEMU 7.2 uses for vhost-user-vsock-device (observed on this machine kind):
//
//   GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES   capabilities
//   SET_OWNER, GET_FEATURES, SET_VRING_CALL/ERR ×2               session start
//   GET_CONFIG (offset 0, size 8)                                le64 guest_cid, at realize
//   --- guest driver sets DRIVER_OK ---
//   SET_FEATURES, SET_MEM_TABLE (one memfd per region)
//   per ring 0 (rx), 1 (tx): SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK
//   SET_VRING_ENABLE, SET_VRING_CALL                             rings run
//   --- guest reset / reboot ---
//   GET_VRING_BASE ×2 (stops each ring), then it all starts again from SET_FEATURES
//
// Only rings 0 and 1 come here; QEMU keeps the event queue. A ring runs once it has a kick fd
// and is enabled (or at once when VHOST_USER_F_PROTOCOL_FEATURES was not acked). Ring addresses
// are QEMU virtual addresses, translated through the memory table. Offered: VERSION_1,
// INDIRECT_DESC, EVENT_IDX, PROTOCOL_FEATURES; protocol feature CONFIG (QEMU requires it).
// Anything malformed, unknown or unoffered is an error: the server then drops the frontend.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/vsock/device.hpp>
#include <cz/vsock/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace cz::vsock::vhost_user {

// Request ids (vhost-user.rst "Front-end message types").
enum class request : std::uint32_t {
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    reset_owner = 4,
    set_mem_table = 5,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    get_config = 24,
    set_config = 25,
    reset_device = 34,
};

// Virtio feature bits (virtio 1.2 §6) and vhost-user's reuse of bit 30.
inline constexpr std::uint64_t f_indirect_desc = 1ull << 28;
inline constexpr std::uint64_t f_event_idx = 1ull << 29;
inline constexpr std::uint64_t f_protocol_features = 1ull << 30;
inline constexpr std::uint64_t f_version_1 = 1ull << 32;
inline constexpr std::uint64_t offered_features =
    f_version_1 | f_indirect_desc | f_event_idx | f_protocol_features;
// Protocol feature bits (vhost-user.rst "Protocol features").
inline constexpr std::uint64_t protocol_f_config = 1ull << 9;
inline constexpr std::uint64_t offered_protocol_features = protocol_f_config;

// Header flags: version 1 in bits 0-1, REPLY bit 2, NEED_REPLY bit 3.
inline constexpr std::uint32_t flag_version = 0x1;
inline constexpr std::uint32_t flag_reply = 0x4;
inline constexpr std::uint32_t flag_need_reply = 0x8;
// The largest payload accepted (the biggest QEMU sends is a 264-byte memory table).
inline constexpr std::uint32_t max_payload = 4096;
// The most fds one message may carry (a memory table of max_memory_regions).
inline constexpr std::size_t max_fds = max_memory_regions;
// VHOST_USER_MAX_CONFIG_SIZE.
inline constexpr std::uint32_t max_config_size = 256;
// The rings this backend serves: rx and tx.
inline constexpr std::uint32_t ring_count = 2;

// The 12-byte message header (vhost-user.rst "Message Specification"), native endian: the host
// is little-endian (virtqueue.hpp asserts it), so the wire bytes are read as little-endian.
class message_header {
public:
    static constexpr std::size_t wire_size = 12;
    message_header() noexcept { raw_.fill(std::byte{0}); }
    message_header(request r, std::uint32_t flags, std::uint32_t size) noexcept {
        store_le<std::uint32_t>(raw_.data(), static_cast<std::uint32_t>(r));
        store_le<std::uint32_t>(raw_.data() + 4, flags);
        store_le<std::uint32_t>(raw_.data() + 8, size);
    }
    // Parses a header; errc::malformed_message when the version bits are not 1 or the payload
    // is larger than max_payload. `b` must hold at least wire_size bytes.
    CZ_DECL static message_header parse(bytes_view b, std::error_code& ec) noexcept;

    request req() const noexcept { return static_cast<request>(load_le<std::uint32_t>(raw_.data())); }
    std::uint32_t flags() const noexcept { return load_le<std::uint32_t>(raw_.data() + 4); }
    std::uint32_t size() const noexcept { return load_le<std::uint32_t>(raw_.data() + 8); }
    bytes_view bytes() const noexcept { return raw_; }

private:
    std::array<std::byte, wire_size> raw_;
};

// The backend side of one vhost-user session, driving a vsock `device`. No I/O: the server
// hands it whole messages with their fds and sends back what `handle` returns.
class session {
public:
    explicit session(device& dev) : dev_(dev) {}
    ~session() { disconnect(); }
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Handles one message (header, payload, the fds that came with it — taken). Returns the
    // reply bytes (header + payload) or an empty buffer when the request has no reply.
    // On error the frontend broke the protocol and the connection should be dropped.
    CZ_DECL byte_buffer handle(const message_header& hdr, bytes_view payload,
                               std::vector<unique_fd>& fds, std::error_code& ec);

    // The frontend is gone: stop the rings, reset every connection, unmap guest memory.
    CZ_DECL void disconnect();

    // Whether ring i (0 rx, 1 tx) is running, and its kick and call eventfds (-1: none).
    bool running(std::uint32_t i) const noexcept { return rings_[i].running; }
    int kick_fd(std::uint32_t i) const noexcept { return rings_[i].kick.get(); }
    int call_fd(std::uint32_t i) const noexcept { return rings_[i].call.get(); }
    // Bumped whenever a ring starts, stops or gets a new kick fd: the server re-arms its watchers.
    std::uint64_t generation() const noexcept { return generation_; }
    std::uint64_t acked_features() const noexcept { return features_; }

private:
    struct ring {
        std::uint16_t num = 0;
        std::uint16_t base = 0;
        std::uint64_t desc_uva = 0, used_uva = 0, avail_uva = 0;
        bool have_addr = false;
        bool enabled = false;
        bool running = false;
        unique_fd kick;
        unique_fd call;
        unique_fd err;
    };
    CZ_DECL virtqueue& queue(std::uint32_t i) noexcept;
    CZ_DECL void try_start(std::uint32_t i, std::error_code& ec);
    CZ_DECL void halt(std::uint32_t i); // stops a running ring, keeping its fds
    CZ_DECL void stop(std::uint32_t i); // halt + drop the kick fd (GET_VRING_BASE)

    device& dev_;
    std::array<ring, ring_count> rings_;
    std::uint64_t features_ = 0;
    std::uint64_t protocol_features_ = 0;
    bool features_set_ = false;
    std::uint64_t generation_ = 0;
};

} // namespace cz::vsock::vhost_user

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/vhost_user.ipp>
#endif
