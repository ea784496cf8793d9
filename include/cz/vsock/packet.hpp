// cz/vsock/packet.hpp — the virtio-vsock packet header.
//
// Every vsock packet starts with a 44-byte little-endian header (virtio 1.2 §5.10.6 "Device
// Operation", `struct virtio_vsock_hdr` in linux/virtio_vsock.h), followed by `len` payload bytes
// for OP_RW. The header is kept as its wire bytes behind typed getters and setters; it is copied
// out of guest memory once, then validated and used from the copy.
#pragma once

#include <cz/core/bytes.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace cz::vsock {

// Operations (virtio 1.2 §5.10.6).
enum class op : std::uint16_t {
    invalid = 0,
    request = 1,
    response = 2,
    rst = 3,
    shutdown = 4,
    rw = 5,
    credit_update = 6,
    credit_request = 7,
};

// Socket types: only STREAM is offered (VIRTIO_VSOCK_F_SEQPACKET is not).
inline constexpr std::uint16_t type_stream = 1;
// SHUTDOWN flags: the sender will receive no more / send no more.
inline constexpr std::uint32_t shutdown_rcv = 1;
inline constexpr std::uint32_t shutdown_send = 2;
// The largest payload of one packet, either way (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
inline constexpr std::uint32_t max_packet_payload = 64 * 1024;

// struct virtio_vsock_hdr (virtio 1.2 §5.10.6; linux/virtio_vsock.h), packed, little-endian.
class packet_header {
public:
    static constexpr std::size_t wire_size = 44;

    packet_header() noexcept { raw_.fill(std::byte{0}); }
    // Copies the first wire_size bytes of `b` (the caller checked b.size() >= wire_size).
    static packet_header from_bytes(bytes_view b) noexcept {
        packet_header h;
        // SAFETY: callers guarantee b.size() >= wire_size.
        for (std::size_t i = 0; i < wire_size; ++i) h.raw_[i] = b[i];
        return h;
    }
    bytes_view bytes() const noexcept { return raw_; }

    std::uint64_t src_cid() const noexcept { return get<std::uint64_t>(0); }
    std::uint64_t dst_cid() const noexcept { return get<std::uint64_t>(8); }
    std::uint32_t src_port() const noexcept { return get<std::uint32_t>(16); }
    std::uint32_t dst_port() const noexcept { return get<std::uint32_t>(20); }
    std::uint32_t len() const noexcept { return get<std::uint32_t>(24); }
    std::uint16_t type() const noexcept { return get<std::uint16_t>(28); }
    vsock::op op() const noexcept { return static_cast<vsock::op>(get<std::uint16_t>(30)); }
    std::uint32_t flags() const noexcept { return get<std::uint32_t>(32); }
    std::uint32_t buf_alloc() const noexcept { return get<std::uint32_t>(36); }
    std::uint32_t fwd_cnt() const noexcept { return get<std::uint32_t>(40); }

    packet_header& src_cid(std::uint64_t v) noexcept { return set(0, v); }
    packet_header& dst_cid(std::uint64_t v) noexcept { return set(8, v); }
    packet_header& src_port(std::uint32_t v) noexcept { return set(16, v); }
    packet_header& dst_port(std::uint32_t v) noexcept { return set(20, v); }
    packet_header& len(std::uint32_t v) noexcept { return set(24, v); }
    packet_header& type(std::uint16_t v) noexcept { return set(28, v); }
    packet_header& op(vsock::op v) noexcept { return set(30, static_cast<std::uint16_t>(v)); }
    packet_header& flags(std::uint32_t v) noexcept { return set(32, v); }
    packet_header& buf_alloc(std::uint32_t v) noexcept { return set(36, v); }
    packet_header& fwd_cnt(std::uint32_t v) noexcept { return set(40, v); }

private:
    template <class T>
    T get(std::size_t off) const noexcept {
        // SAFETY: every caller passes a constant offset with off + sizeof(T) <= 44.
        return load_le<T>(raw_.data() + off);
    }
    template <class T>
    packet_header& set(std::size_t off, T v) noexcept {
        // SAFETY: as get().
        store_le<T>(raw_.data() + off, v);
        return *this;
    }
    std::array<std::byte, wire_size> raw_;
};
static_assert(sizeof(packet_header) == packet_header::wire_size);

} // namespace cz::vsock
