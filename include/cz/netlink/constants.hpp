// cz/netlink/constants.hpp — the kernel's netlink and rtnetlink constants that cz uses.
//
// Re-declared here instead of including <linux/netlink.h>, <linux/rtnetlink.h>, ... because those
// headers clash with <net/if.h> and <sys/mount.h>. Names are the kernel's, lowercased and grouped
// in namespaces by prefix (NLM_F_ACK is nlm_f::ack, IFLA_IFNAME is ifla::ifname), so no macro of
// the C library can collide with them. tests/netlink/constants.cpp checks every value against
// the kernel headers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cz::netlink {

// <linux/netlink.h>
inline constexpr int netlink_route = 0; // NETLINK_ROUTE
inline constexpr int sol_netlink = 270; // SOL_NETLINK
inline constexpr int netlink_cap_ack = 10;
inline constexpr int netlink_ext_ack = 11;
inline constexpr int netlink_get_strict_chk = 12;

namespace nlmsg { // NLMSG_*: control message types
inline constexpr std::uint16_t noop = 1;
inline constexpr std::uint16_t error = 2;
inline constexpr std::uint16_t done = 3;
inline constexpr std::uint16_t overrun = 4;
inline constexpr std::uint16_t min_type = 0x10; // NLMSG_MIN_TYPE
} // namespace nlmsg

namespace nlm_f { // NLM_F_*: message flags
inline constexpr std::uint16_t request = 0x01;
inline constexpr std::uint16_t multi = 0x02;
inline constexpr std::uint16_t ack = 0x04;
inline constexpr std::uint16_t echo = 0x08;
inline constexpr std::uint16_t dump_intr = 0x10;
inline constexpr std::uint16_t dump_filtered = 0x20;
// GET requests
inline constexpr std::uint16_t root = 0x100;
inline constexpr std::uint16_t match = 0x200;
inline constexpr std::uint16_t atomic = 0x400;
inline constexpr std::uint16_t dump = root | match;
// NEW requests
inline constexpr std::uint16_t replace = 0x100;
inline constexpr std::uint16_t excl = 0x200;
inline constexpr std::uint16_t create = 0x400;
inline constexpr std::uint16_t append = 0x800;
// ACKs (NLMSG_ERROR)
inline constexpr std::uint16_t capped = 0x100;
inline constexpr std::uint16_t ack_tlvs = 0x200;
} // namespace nlm_f

namespace nlmsgerr_attr { // NLMSGERR_ATTR_*: extended ACK attributes
inline constexpr std::uint16_t msg = 1;
inline constexpr std::uint16_t offs = 2;
inline constexpr std::uint16_t cookie = 3;
} // namespace nlmsgerr_attr

namespace nla_f { // NLA_F_*: bits of nla_type
inline constexpr std::uint16_t nested = 0x8000;
inline constexpr std::uint16_t net_byteorder = 0x4000;
inline constexpr std::uint16_t type_mask = 0x3fff; // NLA_TYPE_MASK
} // namespace nla_f

// <linux/rtnetlink.h>
namespace rtm {
inline constexpr std::uint16_t newlink = 16;
inline constexpr std::uint16_t dellink = 17;
inline constexpr std::uint16_t getlink = 18;
inline constexpr std::uint16_t setlink = 19;
inline constexpr std::uint16_t newaddr = 20;
inline constexpr std::uint16_t deladdr = 21;
inline constexpr std::uint16_t getaddr = 22;
inline constexpr std::uint16_t newroute = 24;
inline constexpr std::uint16_t delroute = 25;
inline constexpr std::uint16_t getroute = 26;
inline constexpr std::uint16_t newneigh = 28;
inline constexpr std::uint16_t delneigh = 29;
inline constexpr std::uint16_t getneigh = 30;
} // namespace rtm

namespace rtext_filter { // RTEXT_FILTER_*: IFLA_EXT_MASK bits
inline constexpr std::uint32_t vf = 1;
inline constexpr std::uint32_t skip_stats = 8;
} // namespace rtext_filter

namespace rta { // RTA_*: route attributes
inline constexpr std::uint16_t dst = 1;
inline constexpr std::uint16_t src = 2;
inline constexpr std::uint16_t iif = 3;
inline constexpr std::uint16_t oif = 4;
inline constexpr std::uint16_t gateway = 5;
inline constexpr std::uint16_t priority = 6;
inline constexpr std::uint16_t prefsrc = 7;
inline constexpr std::uint16_t metrics = 8;
inline constexpr std::uint16_t multipath = 9;
inline constexpr std::uint16_t table = 15;
inline constexpr std::uint16_t pref = 20;
} // namespace rta

namespace rt_table {
inline constexpr std::uint32_t unspec = 0;
inline constexpr std::uint32_t main = 254;
inline constexpr std::uint32_t local = 255;
} // namespace rt_table

namespace rtprot {
inline constexpr std::uint8_t unspec = 0;
inline constexpr std::uint8_t kernel = 2;
inline constexpr std::uint8_t boot = 3;
inline constexpr std::uint8_t static_ = 4; // RTPROT_STATIC
} // namespace rtprot

namespace rt_scope {
inline constexpr std::uint8_t universe = 0;
inline constexpr std::uint8_t site = 200;
inline constexpr std::uint8_t link = 253;
inline constexpr std::uint8_t host = 254;
inline constexpr std::uint8_t nowhere = 255;
} // namespace rt_scope

namespace rtn { // RTN_*: route types
inline constexpr std::uint8_t unspec = 0;
inline constexpr std::uint8_t unicast = 1;
inline constexpr std::uint8_t local = 2;
inline constexpr std::uint8_t broadcast = 3;
inline constexpr std::uint8_t anycast = 4;
inline constexpr std::uint8_t multicast = 5;
inline constexpr std::uint8_t blackhole = 6;
inline constexpr std::uint8_t unreachable = 7;
inline constexpr std::uint8_t prohibit = 8;
} // namespace rtn

namespace rtnh_f {
inline constexpr std::uint32_t onlink = 4;
} // namespace rtnh_f

// <linux/if_link.h>
namespace ifla {
inline constexpr std::uint16_t address = 1;
inline constexpr std::uint16_t broadcast = 2;
inline constexpr std::uint16_t ifname = 3;
inline constexpr std::uint16_t mtu = 4;
inline constexpr std::uint16_t link = 5;
inline constexpr std::uint16_t qdisc = 6;
inline constexpr std::uint16_t master = 10;
inline constexpr std::uint16_t txqlen = 13;
inline constexpr std::uint16_t operstate = 16;
inline constexpr std::uint16_t linkinfo = 18;
inline constexpr std::uint16_t stats64 = 23;
inline constexpr std::uint16_t ext_mask = 29;
inline constexpr std::uint16_t min_mtu = 50;
inline constexpr std::uint16_t max_mtu = 51;
} // namespace ifla

namespace ifla_info {
inline constexpr std::uint16_t kind = 1;
inline constexpr std::uint16_t data = 2;
inline constexpr std::uint16_t slave_kind = 4;
} // namespace ifla_info

namespace if_oper { // IF_OPER_*: RFC 2863 operational states
inline constexpr std::uint8_t unknown = 0;
inline constexpr std::uint8_t notpresent = 1;
inline constexpr std::uint8_t down = 2;
inline constexpr std::uint8_t lowerlayerdown = 3;
inline constexpr std::uint8_t testing = 4;
inline constexpr std::uint8_t dormant = 5;
inline constexpr std::uint8_t up = 6;
} // namespace if_oper

// <linux/veth.h>
inline constexpr std::uint16_t veth_info_peer = 1;

// <linux/if.h>: net_device_flags
namespace iff {
inline constexpr std::uint32_t up = 0x1;
inline constexpr std::uint32_t broadcast = 0x2;
inline constexpr std::uint32_t loopback = 0x8;
inline constexpr std::uint32_t pointopoint = 0x10;
inline constexpr std::uint32_t running = 0x40;
inline constexpr std::uint32_t noarp = 0x80;
inline constexpr std::uint32_t promisc = 0x100;
inline constexpr std::uint32_t multicast = 0x1000;
inline constexpr std::uint32_t lower_up = 0x10000;
inline constexpr std::uint32_t dormant = 0x20000;
} // namespace iff

// <linux/if_addr.h>
namespace ifa {
inline constexpr std::uint16_t address = 1;
inline constexpr std::uint16_t local = 2;
inline constexpr std::uint16_t label = 3;
inline constexpr std::uint16_t broadcast = 4;
inline constexpr std::uint16_t anycast = 5;
inline constexpr std::uint16_t cacheinfo = 6;
inline constexpr std::uint16_t flags = 8;
} // namespace ifa

namespace ifa_f {
inline constexpr std::uint32_t secondary = 0x01;
inline constexpr std::uint32_t nodad = 0x02;
inline constexpr std::uint32_t optimistic = 0x04;
inline constexpr std::uint32_t dadfailed = 0x08;
inline constexpr std::uint32_t homeaddress = 0x10;
inline constexpr std::uint32_t deprecated = 0x20;
inline constexpr std::uint32_t tentative = 0x40;
inline constexpr std::uint32_t permanent = 0x80;
inline constexpr std::uint32_t managetempaddr = 0x100;
inline constexpr std::uint32_t noprefixroute = 0x200;
} // namespace ifa_f

// <linux/neighbour.h>
namespace nda {
inline constexpr std::uint16_t dst = 1;
inline constexpr std::uint16_t lladdr = 2;
inline constexpr std::uint16_t cacheinfo = 3;
inline constexpr std::uint16_t probes = 4;
} // namespace nda

namespace nud {
inline constexpr std::uint16_t incomplete = 0x01;
inline constexpr std::uint16_t reachable = 0x02;
inline constexpr std::uint16_t stale = 0x04;
inline constexpr std::uint16_t delay = 0x08;
inline constexpr std::uint16_t probe = 0x10;
inline constexpr std::uint16_t failed = 0x20;
inline constexpr std::uint16_t noarp = 0x40;
inline constexpr std::uint16_t permanent = 0x80;
inline constexpr std::uint16_t none = 0x00;
} // namespace nud

// <linux/if_tun.h>
namespace tun {
inline constexpr unsigned long setiff = 0x400454ca;     // TUNSETIFF = _IOW('T', 202, int)
inline constexpr unsigned long setpersist = 0x400454cb; // TUNSETPERSIST = _IOW('T', 203, int)
inline constexpr unsigned long setowner = 0x400454cc;   // TUNSETOWNER = _IOW('T', 204, int)
inline constexpr unsigned long getiff = 0x800454d2;     // TUNGETIFF = _IOR('T', 210, unsigned int)
inline constexpr std::uint16_t iff_tun = 0x0001;
inline constexpr std::uint16_t iff_tap = 0x0002;
inline constexpr std::uint16_t iff_multi_queue = 0x0100;
inline constexpr std::uint16_t iff_no_pi = 0x1000;
inline constexpr std::uint16_t iff_vnet_hdr = 0x4000;
} // namespace tun

// <linux/if.h>
inline constexpr std::size_t ifnamsiz = 16; // IFNAMSIZ, including the terminating NUL
// <linux/netdevice.h>
inline constexpr std::size_t max_addr_len = 32; // MAX_ADDR_LEN

} // namespace cz::netlink
