// Out-of-line definitions for cz/agent/handshake.hpp.
#pragma once

#include <cz/agent/handshake.hpp>

#include <algorithm>

namespace cz::agent {
namespace detail {

inline bool usable_hello(const hello& h) noexcept {
    return (h.role == cz_agent_Role_ROLE_HOST || h.role == cz_agent_Role_ROLE_GUEST) &&
           h.min_version != 0 && h.min_version <= h.max_version &&
           h.max_frame_size >= min_frame_size_limit && h.stream_window >= min_stream_window;
}

} // namespace detail

CZ_DECL hello make_hello(role self, std::uint32_t max_frame_size,
                         std::uint32_t stream_window) noexcept {
    hello h = cz_agent_Hello_init_zero;
    h.min_version = min_protocol_version;
    h.max_version = max_protocol_version;
    h.max_frame_size = max_frame_size;
    h.role = static_cast<std::int32_t>(self);
    h.stream_window = stream_window;
    return h;
}

CZ_DECL session negotiate(const hello& ours, const hello& theirs, std::error_code& ec) noexcept {
    if (!detail::usable_hello(ours) || !detail::usable_hello(theirs) || ours.role == theirs.role) {
        ec = errc::bad_hello;
        return {};
    }
    std::uint32_t low = std::max(ours.min_version, theirs.min_version);
    std::uint32_t high = std::min(ours.max_version, theirs.max_version);
    if (low > high) {
        ec = errc::version_mismatch;
        return {};
    }
    ec.clear();
    session s;
    s.version = high;
    s.peer_role = static_cast<role>(theirs.role);
    s.send_max_frame = theirs.max_frame_size;
    s.receive_max_frame = ours.max_frame_size;
    s.send_window = theirs.stream_window;
    s.receive_window = ours.stream_window;
    return s;
}

} // namespace cz::agent
