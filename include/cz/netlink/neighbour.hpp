// cz/netlink/neighbour.hpp — the neighbour (ARP / NDP) table (rtnetlink RTM_*NEIGH).
//
// add_neighbour is `ip neigh add ADDR lladdr MAC dev DEV` (state permanent unless asked);
// list_neighbours is a dump of every entry, NOARP entries included (`ip neigh show` hides those:
// filter on state if you want the same view).
#pragma once

#include <cz/core/config.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>
#include <cz/netlink/link.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/session.hpp>

#include <asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cz::netlink {

// One entry as RTM_NEWNEIGH describes it.
struct neighbour_info {
    int family = 0;
    int index = 0;
    asio::ip::address dst;
    hw_address lladdr;       // empty while unresolved
    std::uint16_t state = 0; // nud::*
    std::uint8_t flags = 0;  // NTF_*
    std::uint8_t type = 0;   // RTN_*
};

// What to add or delete.
struct neighbour_spec {
    int index = 0;
    asio::ip::address dst;
    hw_address lladdr;
    std::uint16_t state = nud::permanent;
    bool replace = false; // `ip neigh replace`: update an existing entry instead of EEXIST
};

// Decodes an RTM_NEWNEIGH message (no I/O).
CZ_DECL bool parse_neighbour(const message& m, neighbour_info& out, std::error_code& ec);

// "PERMANENT", "REACHABLE", ... — one name per set bit, as `ip -j neigh` lists them.
CZ_DECL std::vector<std::string_view> neighbour_state_names(std::uint16_t state);

CZ_DECL void add_neighbour(session& s, const neighbour_spec& spec, std::error_code& ec);
CZ_DECL void add_neighbour(session& s, const neighbour_spec& spec);
// ENOENT when there is no such entry.
CZ_DECL void delete_neighbour(session& s, const neighbour_spec& spec, std::error_code& ec);
CZ_DECL void delete_neighbour(session& s, const neighbour_spec& spec);
// family 0: IPv4 and IPv6.
CZ_DECL std::vector<neighbour_info> list_neighbours(session& s, int family, std::error_code& ec);
CZ_DECL std::vector<neighbour_info> list_neighbours(session& s, int family = 0);

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/neighbour.ipp>
#endif
