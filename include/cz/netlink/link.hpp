// cz/netlink/link.hpp — network interfaces (rtnetlink RTM_*LINK): list, inspect, change,
// create (veth, bridge, dummy) and delete.
//
// Every operation comes as a pair: `f(session&, args..., std::error_code&)` and a throwing
// `f(session&, args...)` whose cz::system_error names the link and carries the kernel's
// extended-ACK message. Links are named by index in changes (names can change; indexes cannot);
// get_link(session, name) turns a name into a link_info.
#pragma once

#include <cz/core/config.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/session.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cz::netlink {

// A link-layer address (MAC for Ethernet), up to MAX_ADDR_LEN bytes.
struct hw_address {
    std::array<std::uint8_t, max_addr_len> bytes{};
    std::size_t size = 0;

    bool empty() const noexcept { return size == 0; }
    bytes_view view() const noexcept { return std::as_bytes(std::span(bytes.data(), size)); }
    friend bool operator==(const hw_address& a, const hw_address& b) noexcept {
        return a.size == b.size &&
               std::equal(a.bytes.begin(), a.bytes.begin() + a.size, b.bytes.begin());
    }
};

// "02:00:00:00:00:01": lowercase hex, as iproute2 prints it; "" for an empty address.
CZ_DECL std::string to_string(const hw_address& a);
// Parses hex octets separated by ':' (one or two digits each). errc::invalid_hw_address.
CZ_DECL hw_address parse_hw_address(std::string_view text, std::error_code& ec) noexcept;
inline hw_address parse_hw_address(std::string_view text) {
    std::error_code ec;
    auto a = parse_hw_address(text, ec);
    throw_if(ec, "hardware address '" + std::string(text) + "'");
    return a;
}

// IFLA_STATS64 (struct rtnl_link_stats64, <linux/if_link.h>): the counters `ip -s link` shows.
struct link_statistics {
    std::uint64_t rx_packets = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t rx_errors = 0;
    std::uint64_t tx_errors = 0;
    std::uint64_t rx_dropped = 0;
    std::uint64_t tx_dropped = 0;
    std::uint64_t multicast = 0;
    std::uint64_t collisions = 0;
    std::uint64_t rx_over_errors = 0;
    std::uint64_t tx_carrier_errors = 0;
};

// One link as RTM_NEWLINK describes it.
struct link_info {
    int index = 0;
    std::string name;
    std::uint16_t type = 0;  // ARPHRD_* (1 Ethernet, 772 loopback, 65534 none)
    std::uint32_t flags = 0; // iff::*
    std::uint32_t mtu = 0;
    std::uint32_t txqlen = 0;
    std::uint8_t operstate = if_oper::unknown;
    int master = 0;         // IFLA_MASTER: the bridge (or bond) it belongs to, 0 if none
    int link = 0;           // IFLA_LINK: the peer (veth) or lower device, 0 if none
    std::string kind;       // IFLA_INFO_KIND: "veth", "bridge", "dummy", "tun", "" if none
    std::string slave_kind; // IFLA_INFO_SLAVE_KIND: "bridge" for a bridge port
    std::string qdisc;
    hw_address address;
    hw_address broadcast;
    std::optional<link_statistics> stats;

    bool is_up() const noexcept { return (flags & iff::up) != 0; }
};

// Decodes an RTM_NEWLINK message (no I/O). errc::bad_payload / truncated / bad_length.
CZ_DECL bool parse_link(const message& m, link_info& out, std::error_code& ec);

// "up", "down", "unknown", ...: the name iproute2 gives an IF_OPER_* value.
CZ_DECL std::string_view operstate_name(std::uint8_t operstate) noexcept;

// Every link, in the kernel's order (by index).
CZ_DECL std::vector<link_info> list_links(session& s, std::error_code& ec);
CZ_DECL std::vector<link_info> list_links(session& s);

// One link by name or index: ENODEV when there is none (the kernel's answer).
CZ_DECL link_info get_link(session& s, std::string_view name, std::error_code& ec);
CZ_DECL link_info get_link(session& s, std::string_view name);
CZ_DECL link_info get_link(session& s, int index, std::error_code& ec);
CZ_DECL link_info get_link(session& s, int index);

// ip link set up / down.
CZ_DECL void set_link_up(session& s, int index, bool up, std::error_code& ec);
CZ_DECL void set_link_up(session& s, int index, bool up);
// ip link set mtu.
CZ_DECL void set_link_mtu(session& s, int index, std::uint32_t mtu, std::error_code& ec);
CZ_DECL void set_link_mtu(session& s, int index, std::uint32_t mtu);
// ip link set name (the kernel refuses while the link is up: EBUSY).
CZ_DECL void rename_link(session& s, int index, std::string_view name, std::error_code& ec);
CZ_DECL void rename_link(session& s, int index, std::string_view name);
// ip link set master (master_index 0: nomaster).
CZ_DECL void set_link_master(session& s, int index, int master_index, std::error_code& ec);
CZ_DECL void set_link_master(session& s, int index, int master_index);
// ip link set address.
CZ_DECL void set_link_address(session& s, int index, const hw_address& mac, std::error_code& ec);
CZ_DECL void set_link_address(session& s, int index, const hw_address& mac);
// ip link delete (deleting one end of a veth pair deletes both).
CZ_DECL void delete_link(session& s, int index, std::error_code& ec);
CZ_DECL void delete_link(session& s, int index);

// ip link add NAME type veth peer name PEER.
CZ_DECL void create_veth(session& s, std::string_view name, std::string_view peer,
                         std::error_code& ec);
CZ_DECL void create_veth(session& s, std::string_view name, std::string_view peer);
// ip link add NAME type bridge.
CZ_DECL void create_bridge(session& s, std::string_view name, std::error_code& ec);
CZ_DECL void create_bridge(session& s, std::string_view name);
// ip link add NAME type dummy (EOPNOTSUPP when the kernel has no dummy driver).
CZ_DECL void create_dummy(session& s, std::string_view name, std::error_code& ec);
CZ_DECL void create_dummy(session& s, std::string_view name);
// ip link add NAME type KIND, for kinds that need no IFLA_INFO_DATA.
CZ_DECL void create_link(session& s, std::string_view name, std::string_view kind,
                         std::error_code& ec);
CZ_DECL void create_link(session& s, std::string_view name, std::string_view kind);

// iproute2's check for interface names: 1..15 characters, no '/', ':' or whitespace.
CZ_DECL bool valid_link_name(std::string_view name) noexcept;

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/link.ipp>
#endif
