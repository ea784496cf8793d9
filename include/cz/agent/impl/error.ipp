// Out-of-line definitions for cz/agent/error.hpp.
#pragma once

#include <cz/agent/error.hpp>

#include <string>

namespace cz::agent {
namespace detail {

class agent_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.agent"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::need_more:
            return "more input needed";
        case errc::frame_too_large:
            return "frame larger than the maximum frame size";
        case errc::empty_frame:
            return "frame of length zero";
        case errc::truncated:
            return "stream ended inside a frame";
        case errc::bad_message:
            return "malformed message";
        case errc::field_too_large:
            return "message field longer than its bound";
        case errc::unknown_message:
            return "unknown message kind";
        case errc::unexpected_message:
            return "message not allowed here";
        case errc::message_too_large:
            return "message too large to send";
        case errc::version_mismatch:
            return "no common protocol version";
        case errc::bad_hello:
            return "unusable hello";
        case errc::credit_exceeded:
            return "stream data beyond the granted credit";
        case errc::credit_overflow:
            return "stream credit beyond the window";
        case errc::data_after_eof:
            return "stream data after eof";
        case errc::bad_stream:
            return "unknown stream";
        case errc::rpc_failed:
            return "the guest answered with an error";
        case errc::connection_closed:
            return "agent connection closed";
        }
        return "unknown cz.agent error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& agent_category() noexcept {
    static const detail::agent_category_impl instance;
    return instance;
}

} // namespace cz::agent
