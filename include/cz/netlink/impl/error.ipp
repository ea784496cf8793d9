// Out-of-line definitions for cz/netlink/error.hpp.
#pragma once

#include <cz/netlink/error.hpp>

namespace cz::netlink {
namespace detail {

class netlink_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.netlink"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::truncated:
            return "netlink message truncated";
        case errc::bad_length:
            return "netlink length field too small";
        case errc::bad_payload:
            return "netlink payload has the wrong size";
        case errc::sequence_mismatch:
            return "netlink reply with an unexpected sequence number";
        case errc::unexpected_message:
            return "unexpected netlink message type";
        case errc::dump_interrupted:
            return "netlink dump interrupted (table kept changing)";
        case errc::overrun:
            return "netlink messages lost (overrun)";
        case errc::reply_truncated:
            return "netlink reply larger than the receive buffer";
        case errc::message_too_large:
            return "netlink message or attribute too large";
        case errc::invalid_name:
            return "invalid interface name";
        case errc::invalid_hw_address:
            return "invalid hardware address";
        case errc::no_such_link:
            return "no such link";
        case errc::invalid_argument:
            return "invalid argument";
        }
        return "unknown cz.netlink error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& netlink_category() noexcept {
    static const detail::netlink_category_impl instance;
    return instance;
}

} // namespace cz::netlink
