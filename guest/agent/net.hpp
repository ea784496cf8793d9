// guest/agent/net.hpp — the network RPCs: IpLinkSet, IpAddrAdd, IpRouteAddLink and
// IpRouteAddDefault do what `ip link set`, `ip address add` and `ip route add` do, through
// cz/netlink on a NETLINK_ROUTE socket of cz-init's own, in the VM's network namespace (which a
// container shares unless its config asks for a network namespace of its own).
//
// Each RPC is two steps:
//   - decode (no I/O): the request's texts become cz/netlink's terms — an interface name iproute2
//     would accept, an address, a prefix no longer than its family allows, a route destination
//     without host bits (the kernel refuses 10.0.2.5/24 as a route for IPv4 and quietly masks it
//     for IPv6; cz refuses both, naming the network meant);
//   - apply: the interface is looked up by name (RTM_GETLINK), then changed (RTM_NEWLINK,
//     RTM_NEWADDR, RTM_NEWROUTE with NLM_F_EXCL, as `ip ... add` sends).
//
// A failure is a net_error whose message names the RPC's input, and, for what the kernel refused,
// its extended-ACK message and errno, in the words of the `ip` command that would do the same:
// "ip address add 10.0.2.15/24 dev eth0: ipv4: Address already assigned.: File exists".
//   INVALID_ARGUMENT  the request does not decode (sys_errno 0)
//   NOT_FOUND         no interface of that name (sys_errno ENODEV; the message lists those there
//   are) ALREADY_EXISTS    the address or route exists (EEXIST) SYSTEM            the kernel
//   refused for another reason (its errno) INTERNAL          the kernel's answer did not parse
//   (cz/netlink's errc)
//
// Each RPC opens a netlink session of its own and closes it before answering: nothing is left
// open for a container process to inherit, and a session that went wrong is never reused.
#pragma once

#include <cz/agent/protocol.hpp>
#include <cz/netlink/address.hpp>
#include <cz/netlink/route.hpp>

#include <asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace cz::guest {

// Why a network RPC failed (code ERROR_UNSPECIFIED: it did not).
struct net_error {
    cz_agent_ErrorCode code = cz_agent_ErrorCode_ERROR_UNSPECIFIED;
    int sys_errno = 0;
    std::string message;
    explicit operator bool() const noexcept { return code != cz_agent_ErrorCode_ERROR_UNSPECIFIED; }
};

// An address and a prefix length: "10.0.2.15/24", "fd00::2/64".
struct ip_prefix {
    asio::ip::address address;
    std::uint8_t length = 0;
};

// --- decoding (no I/O) ------------------------------------------------------------------------
// `field` names the request's field in messages ("IpAddrAdd.address").

// An interface name as iproute2 takes it: 1-15 characters, none of them '/', ':' or white space.
net_error check_interface(std::string_view name, std::string_view field);
// One IPv4 or IPv6 address, in the forms inet_pton(3) takes; no IPv6 zone ("%eth0"): the
// interface is named by the request's own field.
net_error parse_address(std::string_view text, std::string_view field, asio::ip::address& out);
// ADDRESS/LENGTH, LENGTH in decimal and at most 32 (IPv4) or 128 (IPv6). The prefix is required.
net_error parse_prefix(std::string_view text, std::string_view field, ip_prefix& out);

// The requests in cz/netlink's terms; the interface's index is filled in by apply().
struct link_change {
    std::string interface;
    bool up = false;
    std::uint32_t mtu = 0; // 0: leave it
};
struct address_change {
    std::string interface;
    netlink::address_spec spec;
};
struct route_change {
    std::string interface; // "": the kernel finds the link from the gateway
    netlink::route_spec spec;
};

net_error decode(const cz_agent_IpLinkSet& r, link_change& out);
// IPv6 addresses are added without duplicate address detection (IFA_F_NODAD): the host hands out
// the VM's addresses, and a tentative address would be unusable for the first seconds.
net_error decode(const cz_agent_IpAddrAdd& r, address_change& out);
// An on-link route (scope link): `destination` must be a network (no host bits), `source` an
// address of the same family or "".
net_error decode(const cz_agent_IpRouteAddLink& r, route_change& out);
// gateway "": a device route of the family `ipv6` names, which needs an interface. With a
// gateway, `ipv6` is not consulted (the gateway's family is the route's) and the interface may be
// "" (the kernel picks the link whose subnet holds the gateway).
net_error decode(const cz_agent_IpRouteAddDefault& r, route_change& out);

// "ip link set eth0 up mtu 1500", "ip address add 10.0.2.15/24 dev eth0", "ip route add default
// via 10.0.2.2 dev eth0": the command each change amounts to, for messages.
std::string describe(const link_change& c);
std::string describe(const address_change& c);
std::string describe(const route_change& c);

// --- the RPCs: decode, then apply through netlink ------------------------------------------------

net_error ip_link_set(const cz_agent_IpLinkSet& r);
net_error ip_addr_add(const cz_agent_IpAddrAdd& r);
net_error ip_route_add_link(const cz_agent_IpRouteAddLink& r);
net_error ip_route_add_default(const cz_agent_IpRouteAddDefault& r);

} // namespace cz::guest
