// Out-of-line definitions for cz/agent/protocol.hpp.
#pragma once

#include <cz/agent/protocol.hpp>

namespace cz::agent {

CZ_DECL std::string_view to_string(message_kind k) noexcept {
    switch (k) {
    case message_kind::none:
        return "none";
    case message_kind::hello:
        return "Hello";
    case message_kind::request:
        return "Request";
    case message_kind::response:
        return "Response";
    case message_kind::event:
        return "Event";
    case message_kind::stream_data:
        return "StreamData";
    case message_kind::stream_credit:
        return "StreamCredit";
    }
    return "unknown";
}

CZ_DECL bool may_send(role sender, message_kind k) noexcept {
    switch (k) {
    case message_kind::hello:
    case message_kind::stream_data:
    case message_kind::stream_credit:
        return true;
    case message_kind::request:
        return sender == role::host;
    case message_kind::response:
    case message_kind::event:
        return sender == role::guest;
    case message_kind::none:
        break;
    }
    return false;
}

CZ_DECL void check_sender(role sender, const envelope& m, std::error_code& ec) noexcept {
    ec.clear();
    switch (kind_of(m)) {
    case message_kind::none:
        ec = errc::unknown_message;
        return;
    case message_kind::stream_data:
        if (m.kind.stream_data.stream == 0) ec = errc::bad_stream;
        break;
    case message_kind::stream_credit:
        if (m.kind.stream_credit.stream == 0) ec = errc::bad_stream;
        break;
    case message_kind::hello:
    case message_kind::request:
    case message_kind::response:
    case message_kind::event:
        break;
    default:
        ec = errc::unknown_message; // a oneof tag nanopb would never set: defence in depth
        return;
    }
    if (!ec && !may_send(sender, kind_of(m))) ec = errc::unexpected_message;
}

} // namespace cz::agent
