// cz/netlink/route.hpp — IPv4 and IPv6 routes (rtnetlink RTM_*ROUTE).
//
// add_route/delete_route/list_routes do what `ip route add|del|show` do, with iproute2's
// defaults: table main, protocol boot, type unicast, scope link for a route without a gateway
// and universe otherwise; a delete matches any scope and protocol. A default route is a
// route_spec without `dst`. A gateway outside every subnet of the link needs `onlink` (and an
// oif), as `ip route add ... via GW dev DEV onlink` does.
#pragma once

#include <cz/core/config.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/session.hpp>

#include <asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cz::netlink {

// One route as RTM_NEWROUTE describes it.
struct route_info {
    int family = 0;
    std::optional<asio::ip::address> dst; // absent: the default route (dst_len 0)
    std::uint8_t dst_len = 0;
    std::optional<asio::ip::address> gateway;
    std::optional<asio::ip::address> prefsrc;
    int oif = 0;
    std::uint32_t table = rt_table::main; // RTA_TABLE when present, else rtm_table
    std::uint8_t protocol = rtprot::unspec;
    std::uint8_t scope = rt_scope::universe;
    std::uint8_t type = rtn::unicast;
    std::uint32_t flags = 0;               // rtnh_f::onlink, ...
    std::optional<std::uint32_t> priority; // RTA_PRIORITY: the metric

    bool is_default() const noexcept { return dst_len == 0; }
};

// What to add or delete.
struct route_spec {
    std::optional<asio::ip::address> dst; // absent: default route (0.0.0.0/0 or ::/0)
    std::uint8_t dst_len = 0;             // ignored without dst
    std::optional<asio::ip::address> gateway;
    int oif = 0; // the link; 0 lets the kernel find it from the gateway
    std::optional<asio::ip::address> prefsrc;
    bool onlink = false; // the gateway is reachable on the link even outside its subnets
    // AF_INET or AF_INET6; 0 derives it from dst, then gateway, then prefsrc (IPv4 if none).
    int family = 0;
    std::uint32_t table = rt_table::main;
    std::optional<std::uint32_t> priority;
    std::uint8_t protocol = rtprot::boot;
    std::uint8_t type = rtn::unicast;
    std::optional<std::uint8_t> scope; // default as iproute2 (see the banner)
};

// Decodes an RTM_NEWROUTE message (no I/O).
CZ_DECL bool parse_route(const message& m, route_info& out, std::error_code& ec);

// ip route add: EEXIST if the route exists, ENETUNREACH for a gateway outside the link's
// subnets without onlink, ENODEV for a missing link.
CZ_DECL void add_route(session& s, const route_spec& spec, std::error_code& ec);
CZ_DECL void add_route(session& s, const route_spec& spec);
// ip route del: ESRCH if there is no such route.
CZ_DECL void delete_route(session& s, const route_spec& spec, std::error_code& ec);
CZ_DECL void delete_route(session& s, const route_spec& spec);
// Every route of every table (`ip route show table all`); filter on route_info::table.
CZ_DECL std::vector<route_info> list_routes(session& s, int family, std::error_code& ec);
CZ_DECL std::vector<route_info> list_routes(session& s, int family = 0);

// "default", "10.0.0.0/24", "2001:db8::/64", "192.168.1.1" (host routes without /32).
CZ_DECL std::string destination_string(const route_info& r);

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/route.ipp>
#endif
