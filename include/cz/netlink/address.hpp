// cz/netlink/address.hpp — IPv4 and IPv6 interface addresses (rtnetlink RTM_*ADDR).
//
// add_address/delete_address/list_addresses do what `ip address add|del|show` do, with the
// same defaults: IFA_LOCAL and IFA_ADDRESS both set to the address (or IFA_ADDRESS to the peer),
// no broadcast unless asked (broadcast_for() computes the one `brd +` means), scope host for
// loopback addresses and global otherwise. Each operation has an error_code& overload and a
// throwing one.
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

// One address as RTM_NEWADDR describes it.
struct address_info {
    int family = 0; // AF_INET or AF_INET6
    int index = 0;  // the link
    std::uint8_t prefix_len = 0;
    std::uint8_t scope = rt_scope::universe;
    std::uint32_t flags = 0; // ifa_f::* (IFA_FLAGS when present: all 32 bits)
    asio::ip::address local; // IFA_LOCAL, or IFA_ADDRESS when there is no IFA_LOCAL (IPv6)
    std::optional<asio::ip::address> peer;         // IFA_ADDRESS when it differs from IFA_LOCAL
    std::optional<asio::ip::address_v4> broadcast; // IFA_BROADCAST
    std::string label;                             // IFA_LABEL (IPv4)
    std::uint32_t valid_lifetime = 0xffffffff;     // IFA_CACHEINFO, seconds; ~0 = forever
    std::uint32_t preferred_lifetime = 0xffffffff;
};

// What to add or delete.
struct address_spec {
    int index = 0;
    asio::ip::address local;
    std::uint8_t prefix_len = 0;                   // the kernel rejects > 32 (IPv4) / > 128 (IPv6)
    std::optional<asio::ip::address> peer;         // point-to-point peer (IFA_ADDRESS)
    std::optional<asio::ip::address_v4> broadcast; // IPv4 only
    std::optional<std::uint8_t> scope;             // default: host for 127/8 and ::1, else global
    std::uint32_t flags = 0;                       // e.g. ifa_f::nodad, ifa_f::noprefixroute
    std::string label;                             // IPv4 only; must start with the link's name
};

// The broadcast address of `a/prefix_len` (`ip address add ... brd +`): all host bits set.
CZ_DECL asio::ip::address_v4 broadcast_for(const asio::ip::address_v4& a,
                                           std::uint8_t prefix_len) noexcept;

// Decodes an RTM_NEWADDR message (no I/O).
CZ_DECL bool parse_address(const message& m, address_info& out, std::error_code& ec);

// ip address add: EEXIST if the address is already there, EINVAL for a bad prefix, ENODEV for a
// missing link — each with the kernel's message in session::error_detail().
CZ_DECL void add_address(session& s, const address_spec& spec, std::error_code& ec);
CZ_DECL void add_address(session& s, const address_spec& spec);
// ip address del: EADDRNOTAVAIL if there is no such address.
CZ_DECL void delete_address(session& s, const address_spec& spec, std::error_code& ec);
CZ_DECL void delete_address(session& s, const address_spec& spec);
// ip address show: family AF_UNSPEC for both, index 0 for every link.
CZ_DECL std::vector<address_info> list_addresses(session& s, int family, int index,
                                                 std::error_code& ec);
CZ_DECL std::vector<address_info> list_addresses(session& s, int family = 0, int index = 0);

// "10.0.0.1/24", "2001:db8::1/64".
CZ_DECL std::string to_string(const address_info& a);

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/address.ipp>
#endif
