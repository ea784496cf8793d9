// cz/agent/protocol.hpp — the messages of the host <-> guest protocol, as C++ sees them.
//
// agent.proto (installed beside this header) defines the messages; nanopb generates their C
// structs into cz/agent/agent.pb.h at build time. This header gives them cz names, says which side
// may send which message, and converts between the structs' fixed-size strings and
// std::string_view with bounds checks.
//
// The structs are plain C: a oneof is a `which_<name>` tag (the field number of the member that is
// set, 0 for none) plus a union. For example, a request to stat a file:
//
//     cz::agent::envelope m = cz_agent_Envelope_init_zero;
//     m.which_kind = cz_agent_Envelope_request_tag;
//     m.kind.request.id = 7;
//     m.kind.request.which_rpc = cz_agent_Request_stat_tag;
//     cz::agent::set_string(m.kind.request.rpc.stat.path, "/etc/hostname", ec);
//
// An envelope is about 21 KiB (the largest request, ConfigureHosts, dominates its union): keep one
// per connection rather than one per message on the stack.
#pragma once

#include <cz/agent/agent.pb.h>
#include <cz/agent/error.hpp>
#include <cz/core/bytes.hpp>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <system_error>

namespace cz::agent {

using envelope = cz_agent_Envelope;
using hello = cz_agent_Hello;
using request = cz_agent_Request;
using response = cz_agent_Response;
using event = cz_agent_Event;
using stream_data = cz_agent_StreamData;
using stream_credit = cz_agent_StreamCredit;

// The two ends of a connection.
enum class role : std::uint8_t {
    host = cz_agent_Role_ROLE_HOST,
    guest = cz_agent_Role_ROLE_GUEST,
};

inline constexpr std::string_view to_string(role r) noexcept {
    return r == role::host ? "host" : "guest";
}

// The kinds of frame, named after Envelope's oneof (the values are its field numbers).
enum class message_kind : pb_size_t {
    none = 0,
    hello = cz_agent_Envelope_hello_tag,
    request = cz_agent_Envelope_request_tag,
    response = cz_agent_Envelope_response_tag,
    event = cz_agent_Envelope_event_tag,
    stream_data = cz_agent_Envelope_stream_data_tag,
    stream_credit = cz_agent_Envelope_stream_credit_tag,
};

inline message_kind kind_of(const envelope& m) noexcept {
    return static_cast<message_kind>(m.which_kind);
}

CZ_DECL std::string_view to_string(message_kind k) noexcept;

// Whether `sender` may send messages of kind `k` at all (Hello: only as its first frame, which
// the handshake checks). Host: Hello, Request, StreamData, StreamCredit. Guest: Hello, Response,
// Event, StreamData, StreamCredit.
CZ_DECL bool may_send(role sender, message_kind k) noexcept;

// Checks a decoded message from `sender` before it is acted on: its kind is known and is one
// `sender` may send (else unknown_message, unexpected_message), and a StreamData or StreamCredit
// names a stream (not 0: bad_stream). A Request whose RPC is unknown (which_rpc 0, sent by a newer
// host) passes: the guest answers it with ERROR_UNIMPLEMENTED. So does a Response whose result is
// unknown and an Event of an unknown kind: the host fails that one call, or ignores that event.
CZ_DECL void check_sender(role sender, const envelope& m, std::error_code& ec) noexcept;

// Copies `value` into a fixed-size string field; errc::message_too_large when it does not fit
// with its NUL (the field is then left empty), errc::bad_message when it holds a NUL.
template <std::size_t N>
void set_string(char (&field)[N], std::string_view value, std::error_code& ec) noexcept {
    field[0] = '\0';
    if (value.size() >= N) {
        ec = errc::message_too_large;
        return;
    }
    if (value.find('\0') != std::string_view::npos) {
        ec = errc::bad_message;
        return;
    }
    std::memcpy(field, value.data(), value.size());
    field[value.size()] = '\0';
    ec.clear();
}

// The text of a fixed-size string field (nanopb NUL-terminates what it decodes; strnlen keeps a
// field filled by hand within bounds too).
template <std::size_t N>
std::string_view get_string(const char (&field)[N]) noexcept {
    return {field, ::strnlen(field, N)};
}

} // namespace cz::agent

#if CZ_HEADER_ONLY
#include <cz/agent/impl/protocol.ipp>
#endif
