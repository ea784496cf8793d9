// cz/vsock/error.hpp — the errors of cz/vsock.
//
// Guest memory, rings and packets are hostile input, and so are vhost-user messages and host
// clients of the hybrid socket. Every rejection has its own enumerator, so a test can say which
// check fired and a log line can say why a connection or a ring was dropped.
#pragma once

#include <cz/core/config.hpp>

#include <system_error>

namespace cz::vsock {

enum class errc {
    // A guest address range [addr, addr+len) is not inside one mapped memory region, or wraps.
    address_out_of_range = 1,
    // A descriptor chain is longer than the queue (or its indirect table): a loop or an over-long
    // chain. The chain is returned unused; the ring keeps working.
    descriptor_loop,
    // A head or `next` index is not below the queue (or indirect table) size.
    bad_descriptor_index,
    // avail.idx moved more than the queue size past the last entry seen. The ring is broken and
    // stays stopped until the frontend configures it again.
    avail_index_jump,
    // An indirect descriptor where none was negotiated, nested, combined with NEXT, or with a
    // table length that is zero, not a multiple of 16 or larger than the queue.
    bad_indirect_descriptor,
    // A device-readable descriptor after a device-writable one, or a buffer of the wrong
    // direction for its queue (TX buffers are read-only, RX buffers write-only).
    bad_descriptor_direction,
    // A ring operation on a queue that has not been configured and started.
    ring_not_ready,
    // SET_VRING_NUM/SET_VRING_ADDR values the device cannot use: size not a power of two or too
    // large, misaligned ring, or a ring outside guest memory.
    invalid_ring,
    // A vsock packet whose chain is shorter than the 44-byte header, whose `len` is larger than
    // the chain or than 64 KiB, or whose header names the wrong CID.
    malformed_packet,
    // A vhost-user message whose size does not fit its request, or with the wrong number of fds.
    malformed_message,
    // A vhost-user request id this backend does not implement.
    unsupported_message,
    // The vhost-user frontend broke the protocol: unoffered feature bits, a queue index out of
    // range, a memory table that overlaps or overflows.
    protocol_error,
    // The vhost-user frontend (QEMU) closed its socket.
    frontend_disconnected,
    // The guest refused the connection (RST to our REQUEST), or no guest listener answered in time.
    connection_refused,
    // The connection was reset: guest RST, credit violation, device reset or VM gone.
    connection_reset,
    // The hybrid handshake failed: the `CONNECT <port>` line or the `OK <n>` reply is malformed.
    handshake_failed,
    // The per-VM connection limit is reached.
    too_many_connections,
};

// The category of cz::vsock::errc.
CZ_DECL const std::error_category& vsock_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), vsock_category()};
}

} // namespace cz::vsock

template <>
struct std::is_error_code_enum<cz::vsock::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/error.ipp>
#endif
