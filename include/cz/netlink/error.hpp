// cz/netlink/error.hpp — errors of cz/netlink, and what the kernel said about a failed request.
//
// Two kinds of failure:
//   - the kernel refused a request: NLMSG_ERROR carries a negative errno, reported as a
//     std::system_category() code (`ec == std::errc::file_exists`), and, when the kernel sends an
//     extended ACK, a human-readable message ("ipv4: Address already assigned."). The message
//     does not fit in an error_code, so it travels in cz::netlink::kernel_error as parsed, and
//     session::error_detail() keeps it as a cz::error_info (the message and the offset in the
//     request the kernel pointed at); the throwing overloads put it into cz::system_error's text;
//   - the bytes the kernel sent are not what netlink promises: cz::netlink::errc.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/error.hpp>

#include <cstdint>
#include <string>
#include <system_error>

namespace cz::netlink {

enum class errc {
    // A message or attribute ends before its header, or its length goes past the datagram.
    truncated = 1,
    // nlmsg_len is smaller than the netlink header, or nla_len smaller than the attribute header.
    bad_length,
    // A fixed-size payload (ifinfomsg, an IPv4 address, a u32 attribute) has the wrong size.
    bad_payload,
    // A reply belongs to a request this session has not sent yet (sequence number from the
    // future) — the socket is shared or the kernel is confused.
    sequence_mismatch,
    // A message type that cannot appear where it did (a data message in the middle of an ACK).
    unexpected_message,
    // The kernel set NLM_F_DUMP_INTR on every retry: the table kept changing during the dump.
    dump_interrupted,
    // The kernel dropped messages for this socket (NLMSG_OVERRUN, or ENOBUFS on receive).
    overrun,
    // A reply datagram was larger than the receive buffer.
    reply_truncated,
    // An attribute would be larger than nla_len can express (64 KiB) or a message than 4 GiB.
    message_too_large,
    // An interface name is empty, or too long for IFNAMSIZ (15 characters), or contains '/'.
    invalid_name,
    // A hardware address is not hex octets separated by ':' or is longer than MAX_ADDR_LEN.
    invalid_hw_address,
    // No link has the given name or index (lookups that are answered from a dump).
    no_such_link,
    // An argument the operation does not accept (documented at the function).
    invalid_argument,
};

CZ_DECL const std::error_category& netlink_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), netlink_category()};
}

// What the kernel answered to the last request: its errno (0 for an ACK) and, with
// NETLINK_EXT_ACK, its message and the byte offset of the attribute it objected to.
struct kernel_error {
    std::error_code code;
    std::string message;      // empty when the kernel sent none
    std::uint32_t offset = 0; // NLMSGERR_ATTR_OFFS, 0 when absent
    bool has_offset = false;
};

} // namespace cz::netlink

template <>
struct std::is_error_code_enum<cz::netlink::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/error.ipp>
#endif
