// cz/netlink/message.hpp — building and parsing netlink messages, without any I/O.
//
// Netlink in brief (RFC 3549, Documentation/userspace-api/netlink/intro.rst):
//   - A datagram holds one or more messages. Each starts with a 16-byte header (nlmsghdr: length
//     including the header, type, flags, sequence number, port id) and is padded to 4 bytes.
//   - After the header comes a fixed family header (ifinfomsg for links, ifaddrmsg for
//     addresses, rtmsg for routes, ndmsg for neighbours) and then attributes: TLVs with a 4-byte
//     header (nlattr: length including the header, type), each padded to 4 bytes. An attribute
//     with NLA_F_NESTED holds more attributes.
//   - A request carries NLM_F_REQUEST and a sequence number chosen by the sender. With NLM_F_ACK
//     the kernel answers every request with NLMSG_ERROR: error 0 is an ACK, a negative errno is
//     a failure. With NETLINK_EXT_ACK the NLMSG_ERROR (flag NLM_F_ACK_TLVS) is followed by
//     attributes: NLMSGERR_ATTR_MSG, a message for humans, and NLMSGERR_ATTR_OFFS, the offset
//     of the offending attribute in the request. Unless NLM_F_CAPPED is set, the failed request
//     is echoed between the errno and those attributes.
//   - A dump (NLM_F_DUMP) is answered by many messages flagged NLM_F_MULTI over many datagrams,
//     ended by NLMSG_DONE, whose payload is an int errno (and extended-ACK attributes). If the
//     table changes during the dump, messages carry NLM_F_DUMP_INTR and the dump should be redone.
//   - Every reply repeats the request's sequence number and carries the requester's port id; a
//     reply with an older sequence number is left over from an abandoned request.
// Everything here is host byte order (netlink never crosses machines).
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>

#include <asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cz::netlink {

// NLMSG_ALIGN and NLA_ALIGN: messages and attributes start on 4-byte boundaries.
constexpr std::size_t align(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t(3);
}

// Wire structs. Netlink uses the host's byte order and natural alignment, so unlike ext4 or tar
// (little-endian or ASCII fields behind getters) these plain structs *are* the wire layout:
// fixed-width fields, no padding (checked below), copied in and out with std::memcpy by decode()
// and message_builder::put() — never reinterpret_cast onto received bytes, which are not
// guaranteed to be aligned for the struct.

// struct nlmsghdr, <linux/netlink.h>
struct message_header {
    std::uint32_t length = 0; // including this header
    std::uint16_t type = 0;
    std::uint16_t flags = 0;
    std::uint32_t seq = 0;
    std::uint32_t port = 0; // nlmsg_pid
};
static_assert(sizeof(message_header) == 16);
static_assert(offsetof(message_header, type) == 4 && offsetof(message_header, seq) == 8);

// struct nlmsgerr, <linux/netlink.h>: the payload of NLMSG_ERROR.
struct error_header {
    std::int32_t error = 0; // 0 (ACK) or a negative errno
    message_header request; // the header of the request it answers
};
static_assert(sizeof(error_header) == 20);

// struct nlattr, <linux/netlink.h>
struct attribute_header {
    std::uint16_t length = 0; // including this header, excluding padding
    std::uint16_t type = 0;
};
static_assert(sizeof(attribute_header) == 4);

// struct ifinfomsg, <linux/rtnetlink.h>: RTM_*LINK
struct link_header {
    std::uint8_t family = 0;
    std::uint8_t pad = 0;
    std::uint16_t type = 0; // ARPHRD_*
    std::int32_t index = 0;
    std::uint32_t flags = 0;  // IFF_*
    std::uint32_t change = 0; // which IFF_* bits a request changes
};
static_assert(sizeof(link_header) == 16);
static_assert(offsetof(link_header, index) == 4 && offsetof(link_header, change) == 12);

// struct ifaddrmsg, <linux/if_addr.h>: RTM_*ADDR
struct address_header {
    std::uint8_t family = 0;
    std::uint8_t prefix_len = 0;
    std::uint8_t flags = 0; // IFA_F_* (the low 8 bits; IFA_FLAGS carries all 32)
    std::uint8_t scope = 0;
    std::uint32_t index = 0;
};
static_assert(sizeof(address_header) == 8);

// struct rtmsg, <linux/rtnetlink.h>: RTM_*ROUTE
struct route_header {
    std::uint8_t family = 0;
    std::uint8_t dst_len = 0;
    std::uint8_t src_len = 0;
    std::uint8_t tos = 0;
    std::uint8_t table = 0; // RT_TABLE_*; RTA_TABLE carries tables above 255
    std::uint8_t protocol = 0;
    std::uint8_t scope = 0;
    std::uint8_t type = 0;
    std::uint32_t flags = 0; // RTM_F_*, RTNH_F_*
};
static_assert(sizeof(route_header) == 12);
static_assert(offsetof(route_header, flags) == 8);

// struct ndmsg, <linux/neighbour.h>: RTM_*NEIGH
struct neighbour_header {
    std::uint8_t family = 0;
    std::uint8_t pad1 = 0;
    std::uint16_t pad2 = 0;
    std::int32_t index = 0;
    std::uint16_t state = 0; // NUD_*
    std::uint8_t flags = 0;  // NTF_*
    std::uint8_t type = 0;
};
static_assert(sizeof(neighbour_header) == 12);
static_assert(offsetof(neighbour_header, state) == 8);

template <class T>
concept wire_struct =
    std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T>;

// Copies a T out of the start of `bytes`; false (and `out` untouched) when there are too few.
template <wire_struct T>
bool decode(bytes_view bytes, T& out) noexcept {
    if (bytes.size() < sizeof(T)) return false;
    // SAFETY: the size check above guarantees sizeof(T) readable bytes; memcpy needs no alignment.
    std::memcpy(&out, bytes.data(), sizeof(T));
    return true;
}

// ---------------------------------------------------------------------------------------------
// Parsing

// One message: its header and the bytes after the header, up to nlmsg_len (padding excluded).
struct message {
    message_header header;
    bytes_view payload;
};

// Parses the message at the start of `data`. Returns the bytes it occupies including padding
// (the padding of the last message in a datagram may be missing), or 0 with `ec` set:
// errc::truncated when the header or the declared length goes past `data`, errc::bad_length when
// nlmsg_len is smaller than the header.
CZ_DECL std::size_t parse_message(bytes_view data, message& out, std::error_code& ec) noexcept;

// Walks the messages of one datagram.
class message_reader {
public:
    explicit message_reader(bytes_view datagram) noexcept : rest_(datagram) {}
    // The next message: true with `out` set; false at the end (ec clear) or on malformed input
    // (ec set; the reader then stays at the bad message).
    bool next(message& out, std::error_code& ec) noexcept {
        ec.clear();
        if (rest_.empty()) return false;
        std::size_t used = parse_message(rest_, out, ec);
        if (ec) return false;
        rest_ = rest_.subspan(used);
        return true;
    }
    bytes_view rest() const noexcept { return rest_; }

private:
    bytes_view rest_;
};

// One attribute: its type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits, whether
// NLA_F_NESTED was set, and its value (padding excluded).
struct attribute {
    std::uint16_t type = 0;
    bool nested = false;
    bytes_view value;
};

// Parses the attribute at the start of `data`; returns the bytes it occupies with padding, or 0
// with ec set (errc::truncated, errc::bad_length).
CZ_DECL std::size_t parse_attribute(bytes_view data, attribute& out, std::error_code& ec) noexcept;

// Walks a sequence of attributes (a message's tail, or the value of a nested attribute).
class attribute_reader {
public:
    explicit attribute_reader(bytes_view data) noexcept : rest_(data) {}
    bool next(attribute& out, std::error_code& ec) noexcept {
        ec.clear();
        if (rest_.empty()) return false;
        std::size_t used = parse_attribute(rest_, out, ec);
        if (ec) return false;
        rest_ = rest_.subspan(used);
        return true;
    }

private:
    bytes_view rest_;
};

// Sorts attributes into table[type], as the kernel's nla_parse does: a later attribute of the
// same type replaces an earlier one, types beyond the table are skipped. Entries for absent
// types are reset to nullopt. False with ec set on a malformed attribute.
CZ_DECL bool parse_attributes(bytes_view data, std::span<std::optional<bytes_view>> table,
                              std::error_code& ec) noexcept;

// Typed views of attribute values. Each returns false when the value has the wrong size.
template <class T>
requires std::is_integral_v<T>
bool get_integer(bytes_view value, T& out) noexcept {
    if (value.size() != sizeof(T)) return false;
    // SAFETY: exactly sizeof(T) bytes, checked above.
    std::memcpy(&out, value.data(), sizeof(T));
    return true;
}

// A NUL-terminated string attribute, without the NUL (the whole value if there is none).
CZ_DECL std::string_view get_string(bytes_view value) noexcept;

// An IPv4 (4 bytes) or IPv6 (16 bytes) address; false for any other size.
CZ_DECL bool get_ip_address(bytes_view value, asio::ip::address& out) noexcept;

// The decoded payload of NLMSG_ERROR or NLMSG_DONE: the errno it carries (negative, or 0) and,
// when the kernel sent extended-ACK attributes, their message and offset.
// errc::truncated when the payload is too short for the errno (or NLMSG_ERROR's request header),
// errc::bad_payload when the errno is positive or below -4095 (MAX_ERRNO).
CZ_DECL bool parse_error_payload(const message& msg, int& error, kernel_error& detail,
                                 std::error_code& ec) noexcept;

// ---------------------------------------------------------------------------------------------
// Building

// Builds one or more messages into a buffer. Appending never fails outright: an attribute that
// does not fit nla_len (64 KiB) marks the builder failed (error()), which the session checks
// before sending anything, so call chains need no error checks in between.
class message_builder {
public:
    // Starts a message after those already built. NLM_F_REQUEST is added to `flags`.
    CZ_DECL void begin(std::uint16_t type, std::uint16_t flags);

    // Appends a family header (link_header, route_header, ...) to the current message.
    template <wire_struct T>
    void put(const T& fixed) {
        append_raw({reinterpret_cast<const std::byte*>(&fixed), sizeof(T)});
    }

    CZ_DECL void attr(std::uint16_t type, bytes_view value);
    void attr_u8(std::uint16_t type, std::uint8_t v) { attr_int(type, v); }
    void attr_u16(std::uint16_t type, std::uint16_t v) { attr_int(type, v); }
    void attr_u32(std::uint16_t type, std::uint32_t v) { attr_int(type, v); }
    void attr_i32(std::uint16_t type, std::int32_t v) { attr_int(type, v); }
    // A string attribute with its terminating NUL, as the kernel's NLA_NUL_STRING expects.
    CZ_DECL void attr_string(std::uint16_t type, std::string_view s);
    // An address attribute: 4 bytes for IPv4, 16 for IPv6, network byte order.
    CZ_DECL void attr_address(std::uint16_t type, const asio::ip::address& a);

    // Opens a nested attribute (NLA_F_NESTED is set, as the kernel's strict validation wants);
    // attributes appended until end_nested(handle) go inside it.
    CZ_DECL std::size_t begin_nested(std::uint16_t type);
    CZ_DECL void end_nested(std::size_t handle);

    // Gives the messages consecutive sequence numbers starting at `first`; returns how many
    // messages there are.
    CZ_DECL std::size_t stamp(std::uint32_t first) noexcept;

    bytes_view data() const noexcept { return buffer_; }
    std::size_t message_count() const noexcept { return count_; }
    std::error_code error() const noexcept { return error_; }
    // Forgets every message (keeps the allocation).
    void clear() noexcept {
        buffer_.clear();
        count_ = 0;
        current_ = 0;
        error_.clear();
    }

private:
    template <class T>
    void attr_int(std::uint16_t type, T v) {
        attr(type, {reinterpret_cast<const std::byte*>(&v), sizeof v});
    }
    CZ_DECL void append_raw(bytes_view bytes);
    CZ_DECL void update_length() noexcept;

    byte_buffer buffer_;
    std::size_t current_ = 0; // offset of the message being built
    std::size_t count_ = 0;
    std::error_code error_;
};

// ---------------------------------------------------------------------------------------------
// Replies

// Follows the replies to a batch of `count` requests stamped first_seq, first_seq+1, ...: checks
// port ids and sequence numbers, decodes ACKs, errors and NLMSG_DONE, and hands out the data
// messages. Does no I/O: the caller feeds it each datagram it receives.
class reply_reader {
public:
    void reset(std::uint32_t first_seq, std::uint32_t count, std::uint32_t port) noexcept {
        first_ = first_seq;
        count_ = count;
        pending_ = count;
        port_ = port;
        interrupted_ = false;
        stray_ = 0;
        kernel_ = {};
    }

    // Parses one datagram. Data messages that answer the batch are appended to `out` (their
    // payloads point into `datagram`). Returns true once every request has been answered by an
    // ACK, an NLMSG_ERROR or an NLMSG_DONE. The first failure the kernel reported is in kernel()
    // and in `ec`; malformed input sets ec to a cz::netlink::errc.
    CZ_DECL bool feed(bytes_view datagram, std::vector<message>& out, std::error_code& ec);

    bool done() const noexcept { return pending_ == 0; }
    // The kernel's answer: the first failure of the batch, or the last ACK (with any warning).
    const kernel_error& kernel() const noexcept { return kernel_; }
    // Whether any data message carried NLM_F_DUMP_INTR.
    bool interrupted() const noexcept { return interrupted_; }
    // Messages ignored as leftovers of earlier requests (older sequence number, other port).
    std::size_t stray() const noexcept { return stray_; }

private:
    std::uint32_t first_ = 0;
    std::uint32_t count_ = 0;
    std::uint32_t pending_ = 0;
    std::uint32_t port_ = 0;
    bool interrupted_ = false;
    std::size_t stray_ = 0;
    kernel_error kernel_;
};

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/message.ipp>
#endif
