// Out-of-line definitions for cz/vsock/error.hpp.
#pragma once

#include <cz/vsock/error.hpp>

#include <string>

namespace cz::vsock {
namespace detail {

class vsock_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.vsock"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::address_out_of_range: return "guest address outside guest memory";
        case errc::descriptor_loop: return "descriptor chain loops or is longer than the queue";
        case errc::bad_descriptor_index: return "descriptor index out of range";
        case errc::avail_index_jump: return "available index moved past the queue size";
        case errc::bad_indirect_descriptor: return "invalid indirect descriptor";
        case errc::bad_descriptor_direction: return "descriptor has the wrong direction";
        case errc::ring_not_ready: return "virtqueue not ready";
        case errc::invalid_ring: return "invalid virtqueue configuration";
        case errc::malformed_packet: return "malformed vsock packet";
        case errc::malformed_message: return "malformed vhost-user message";
        case errc::unsupported_message: return "unsupported vhost-user request";
        case errc::protocol_error: return "vhost-user protocol error";
        case errc::frontend_disconnected: return "vhost-user frontend disconnected";
        case errc::connection_refused: return "vsock connection refused";
        case errc::connection_reset: return "vsock connection reset";
        case errc::handshake_failed: return "hybrid vsock handshake failed";
        case errc::too_many_connections: return "too many vsock connections";
        }
        return "unknown cz.vsock error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& vsock_category() noexcept {
    static const detail::vsock_category_impl instance;
    return instance;
}

} // namespace cz::vsock
