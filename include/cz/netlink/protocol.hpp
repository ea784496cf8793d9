// cz/netlink/protocol.hpp — netlink as an Asio protocol.
//
// cz::netlink::raw_protocol models Asio's Protocol requirements and cz::netlink::endpoint its
// Endpoint requirements, so a netlink socket is an ordinary asio::basic_raw_socket: sync and
// async send/receive, completion tokens, cancellation, executors, all from Asio.
//
//     asio::io_context io;
//     cz::netlink::raw_protocol::socket s(io, cz::netlink::raw_protocol::route());
//     s.bind(cz::netlink::endpoint{});                  // the kernel picks the port id
//     s.async_receive(asio::buffer(buf), handler);       // replies, notifications
//
// The type is raw_protocol, not protocol: Asio requires a member function protocol(), and C++
// forbids a member named like its class. The name follows asio::generic::raw_protocol.
//
// Requirement tables: Asio's "Protocol requirements" (family(), type(), protocol(), endpoint)
// and "Endpoint requirements" (protocol(), data(), size(), resize(), capacity()).
#pragma once

#include <cz/netlink/constants.hpp>

#include <asio/basic_raw_socket.hpp>
#include <asio/detail/socket_types.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cz::netlink {

class endpoint;

class raw_protocol {
public:
    using endpoint = cz::netlink::endpoint;
    using socket = asio::basic_raw_socket<raw_protocol>;

    // NETLINK_ROUTE: links, addresses, routes, neighbours (rtnetlink).
    static raw_protocol route() noexcept { return raw_protocol(netlink_route); }
    // Any other netlink family (NETLINK_GENERIC = 16, NETLINK_NETFILTER = 12, ...).
    explicit raw_protocol(int netlink_family) noexcept : family_(netlink_family) {}

    int family() const noexcept { return AF_NETLINK; }
    int type() const noexcept { return SOCK_RAW; }
    int protocol() const noexcept { return family_; }

    friend bool operator==(const raw_protocol& a, const raw_protocol& b) noexcept {
        return a.family_ == b.family_;
    }

private:
    int family_;
};

// struct sockaddr_nl, <linux/netlink.h>
struct sockaddr_netlink {
    std::uint16_t family = AF_NETLINK; // nl_family
    std::uint16_t pad = 0;
    std::uint32_t port = 0;   // nl_pid: 0 is the kernel (as a destination) or "assign one" (bind)
    std::uint32_t groups = 0; // nl_groups: multicast group bitmask
};
static_assert(sizeof(sockaddr_netlink) == 12);
static_assert(offsetof(sockaddr_netlink, port) == 4 && offsetof(sockaddr_netlink, groups) == 8);

// A netlink address: a port id (0 = the kernel) and a multicast group mask.
class endpoint {
public:
    using protocol_type = raw_protocol;
    using data_type = asio::detail::socket_addr_type;

    endpoint() noexcept = default;
    explicit endpoint(std::uint32_t port, std::uint32_t groups = 0) noexcept {
        addr_.port = port;
        addr_.groups = groups;
    }
    // The protocol is not part of a netlink address; route is the one cz uses. Asio only asks
    // for family() and type() here, which are the same for every netlink protocol.
    protocol_type protocol() const noexcept { return protocol_type::route(); }

    // SAFETY: sockaddr_netlink is the layout of sockaddr_nl, which the socket API accepts behind
    // a sockaddr pointer together with size(); the kernel never reads past size().
    data_type* data() noexcept { return reinterpret_cast<data_type*>(&addr_); }
    const data_type* data() const noexcept { return reinterpret_cast<const data_type*>(&addr_); }
    std::size_t size() const noexcept { return sizeof addr_; }
    std::size_t capacity() const noexcept { return sizeof addr_; }
    // Asio calls this after accept/recvfrom/getsockname with the length the kernel wrote.
    void resize(std::size_t n) {
        if (n > sizeof addr_) asio::detail::throw_error(asio::error::invalid_argument);
    }

    std::uint32_t port() const noexcept { return addr_.port; }
    std::uint32_t groups() const noexcept { return addr_.groups; }

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept {
        return a.addr_.port == b.addr_.port && a.addr_.groups == b.addr_.groups;
    }

private:
    sockaddr_netlink addr_;
};

// Socket options of SOL_NETLINK, in Asio's SettableSocketOption/GettableSocketOption shape:
// socket.set_option(cz::netlink::extended_ack(true)).
template <int Name>
class boolean_option {
public:
    boolean_option() noexcept = default;
    explicit boolean_option(bool on) noexcept : value_(on ? 1 : 0) {}
    bool value() const noexcept { return value_ != 0; }

    template <class Protocol>
    int level(const Protocol&) const noexcept {
        return sol_netlink;
    }
    template <class Protocol>
    int name(const Protocol&) const noexcept {
        return Name;
    }
    template <class Protocol>
    int* data(const Protocol&) noexcept {
        return &value_;
    }
    template <class Protocol>
    const int* data(const Protocol&) const noexcept {
        return &value_;
    }
    template <class Protocol>
    std::size_t size(const Protocol&) const noexcept {
        return sizeof value_;
    }
    template <class Protocol>
    void resize(const Protocol&, std::size_t n) {
        if (n != sizeof value_) asio::detail::throw_error(asio::error::invalid_argument);
    }

private:
    int value_ = 0;
};

// NETLINK_EXT_ACK: errors come with the kernel's message and the offending attribute's offset.
using extended_ack = boolean_option<netlink_ext_ack>;
// NETLINK_CAP_ACK: NLMSG_ERROR does not echo the failed request's payload.
using capped_ack = boolean_option<netlink_cap_ack>;
// NETLINK_GET_STRICT_CHK: the kernel validates dump requests strictly and honours their filters.
using strict_check = boolean_option<netlink_get_strict_chk>;

} // namespace cz::netlink
