// cz/agent/handshake.hpp — the version handshake that opens every agent connection.
//
// Each side sends a Hello as its first frame, without waiting for the other's, and reads the
// peer's. From the two, both compute the same outcome: the highest version both speak, the
// largest frame each may send (the peer's announced maximum) and the credit each stream starts
// with in each direction (the receiving side's announced window). A Hello that is not the first
// frame, or a first frame that is not a Hello, is errc::unexpected_message.
//
//     cz::agent::hello ours = cz::agent::make_hello(cz::agent::role::host);
//     ... send ours, receive theirs ...
//     auto session = cz::agent::negotiate(ours, theirs, ec);   // version_mismatch, bad_hello
#pragma once

#include <cz/agent/error.hpp>
#include <cz/agent/frame.hpp>
#include <cz/agent/protocol.hpp>
#include <cz/core/config.hpp>

#include <cstdint>
#include <system_error>

namespace cz::agent {

// The versions this build speaks. Version 1: agent.proto as it is.
inline constexpr std::uint32_t min_protocol_version = 1;
inline constexpr std::uint32_t max_protocol_version = 1;

// The smallest maximum frame size a Hello may announce: a config.json or a CopyIn path must fit.
inline constexpr std::uint32_t min_frame_size_limit = 64u << 10;
// The smallest stream window a Hello may announce (one page), and the default: enough for a pipe's
// worth of output in flight while the host is busy.
inline constexpr std::uint32_t min_stream_window = 4u << 10;
inline constexpr std::uint32_t default_stream_window = 256u << 10;

// What the handshake settled, seen from one side.
struct session {
    std::uint32_t version = 0;
    role peer_role = role::guest;
    // The largest frame this side may send (the peer's maximum) and accepts (its own).
    std::uint32_t send_max_frame = 0;
    std::uint32_t receive_max_frame = 0;
    // The credit each new stream starts with: for sending (the peer's window), and what this
    // side grants as a receiver (its own window).
    std::uint32_t send_window = 0;
    std::uint32_t receive_window = 0;
};

// Our Hello: every version this build speaks, and our limits.
CZ_DECL hello make_hello(role self, std::uint32_t max_frame_size = default_max_frame_size,
                         std::uint32_t stream_window = default_stream_window) noexcept;

// The outcome of the handshake, from `ours` and the peer's `theirs`. bad_hello when theirs has
// the same role as ours or none, announces a frame size below min_frame_size_limit or a window
// below min_stream_window, or has min_version > max_version (ours is checked the same way);
// version_mismatch when the two version ranges do not meet.
CZ_DECL session negotiate(const hello& ours, const hello& theirs, std::error_code& ec) noexcept;

} // namespace cz::agent

#if CZ_HEADER_ONLY
#include <cz/agent/impl/handshake.ipp>
#endif
