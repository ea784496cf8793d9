// cz/agent/error.hpp — the errors of the agent protocol (cz::agent::errc, category "cz.agent").
//
// Every one of them but need_more means the peer broke the protocol (or, on the sending side, that
// the caller asked for something the protocol cannot carry); a connection that meets one is
// dropped. The functions that report them also say where: the frame's offset in the stream, the
// stream id, nanopb's description of the malformed field.
#pragma once

#include <cz/core/error.hpp>

#include <system_error>

namespace cz::agent {

enum class errc {
    // The frame reader has no complete frame yet. The only non-fatal error: read more bytes.
    need_more = 1,
    // A frame's length prefix is larger than the receiver's maximum frame size.
    frame_too_large,
    // A frame's length prefix is 0 (every message is at least one byte: its kind).
    empty_frame,
    // The stream ended inside a frame (in its length prefix or its message).
    truncated,
    // A frame's bytes are not an encoded Envelope (bad varint, wire type, length, nesting).
    bad_message,
    // A string or repeated field is longer than agent.options allows.
    field_too_large,
    // An Envelope without a kind, a Request without an RPC, an Event without a kind, a Response
    // without a result: sent by a newer peer, or garbage that happened to decode.
    unknown_message,
    // A message its sender may not send: one from the wrong side (the guest sends no Requests,
    // the host no Responses or Events), a second Hello, anything but a Hello first.
    unexpected_message,
    // A message to encode is larger than the peer's maximum frame size, or a value does not fit
    // its field (a string longer than its bound).
    message_too_large,
    // The two Hellos have no protocol version in common.
    version_mismatch,
    // A Hello that cannot be used: wrong role, a maximum frame size or stream window below the
    // protocol's minimum, min_version above max_version.
    bad_hello,
    // The peer sent more bytes on a stream than the credit it was granted.
    credit_exceeded,
    // The peer granted more credit than its window allows (it cannot have consumed that much).
    credit_overflow,
    // Data on a stream after its eof.
    data_after_eof,
    // A stream id that is 0, or not open in that direction.
    bad_stream,
    // The guest answered a request with an Error (the response carries it).
    rpc_failed,
    // The connection ended before the operation could complete.
    connection_closed,
};

// The category of cz::agent::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& agent_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), agent_category()};
}

} // namespace cz::agent

template <>
struct std::is_error_code_enum<cz::agent::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/agent/impl/error.ipp>
#endif
