// Checks every constant and wire struct cz/netlink re-declares against the kernel's headers:
// a wrong value is a compile error. This file may include <linux/*.h>; cz's headers may not.
#include <cz/netlink/constants.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/protocol.hpp>

#include <doctest/doctest.h>

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/netdevice.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cstddef>

namespace nl = cz::netlink;

static_assert(nl::netlink_route == NETLINK_ROUTE);
static_assert(nl::sol_netlink == SOL_NETLINK);
static_assert(nl::netlink_cap_ack == NETLINK_CAP_ACK);
static_assert(nl::netlink_ext_ack == NETLINK_EXT_ACK);
static_assert(nl::netlink_get_strict_chk == NETLINK_GET_STRICT_CHK);

static_assert(nl::nlmsg::noop == NLMSG_NOOP && nl::nlmsg::error == NLMSG_ERROR);
static_assert(nl::nlmsg::done == NLMSG_DONE && nl::nlmsg::overrun == NLMSG_OVERRUN);
static_assert(nl::nlmsg::min_type == NLMSG_MIN_TYPE);

static_assert(nl::nlm_f::request == NLM_F_REQUEST && nl::nlm_f::multi == NLM_F_MULTI);
static_assert(nl::nlm_f::ack == NLM_F_ACK && nl::nlm_f::echo == NLM_F_ECHO);
static_assert(nl::nlm_f::dump_intr == NLM_F_DUMP_INTR);
static_assert(nl::nlm_f::dump_filtered == NLM_F_DUMP_FILTERED);
static_assert(nl::nlm_f::root == NLM_F_ROOT && nl::nlm_f::match == NLM_F_MATCH);
static_assert(nl::nlm_f::atomic == NLM_F_ATOMIC && nl::nlm_f::dump == NLM_F_DUMP);
static_assert(nl::nlm_f::replace == NLM_F_REPLACE && nl::nlm_f::excl == NLM_F_EXCL);
static_assert(nl::nlm_f::create == NLM_F_CREATE && nl::nlm_f::append == NLM_F_APPEND);
static_assert(nl::nlm_f::capped == NLM_F_CAPPED && nl::nlm_f::ack_tlvs == NLM_F_ACK_TLVS);

static_assert(nl::nlmsgerr_attr::msg == NLMSGERR_ATTR_MSG);
static_assert(nl::nlmsgerr_attr::offs == NLMSGERR_ATTR_OFFS);
static_assert(nl::nlmsgerr_attr::cookie == NLMSGERR_ATTR_COOKIE);

static_assert(nl::nla_f::nested == NLA_F_NESTED);
static_assert(nl::nla_f::net_byteorder == NLA_F_NET_BYTEORDER);
static_assert(nl::nla_f::type_mask == std::uint16_t(NLA_TYPE_MASK)); // an int in the kernel header

static_assert(nl::rtm::newlink == RTM_NEWLINK && nl::rtm::dellink == RTM_DELLINK);
static_assert(nl::rtm::getlink == RTM_GETLINK && nl::rtm::setlink == RTM_SETLINK);
static_assert(nl::rtm::newaddr == RTM_NEWADDR && nl::rtm::deladdr == RTM_DELADDR);
static_assert(nl::rtm::getaddr == RTM_GETADDR);
static_assert(nl::rtm::newroute == RTM_NEWROUTE && nl::rtm::delroute == RTM_DELROUTE);
static_assert(nl::rtm::getroute == RTM_GETROUTE);
static_assert(nl::rtm::newneigh == RTM_NEWNEIGH && nl::rtm::delneigh == RTM_DELNEIGH);
static_assert(nl::rtm::getneigh == RTM_GETNEIGH);

static_assert(nl::rtext_filter::vf == RTEXT_FILTER_VF);
static_assert(nl::rtext_filter::skip_stats == RTEXT_FILTER_SKIP_STATS);

static_assert(nl::rta::dst == RTA_DST && nl::rta::src == RTA_SRC && nl::rta::iif == RTA_IIF);
static_assert(nl::rta::oif == RTA_OIF && nl::rta::gateway == RTA_GATEWAY);
static_assert(nl::rta::priority == RTA_PRIORITY && nl::rta::prefsrc == RTA_PREFSRC);
static_assert(nl::rta::metrics == RTA_METRICS && nl::rta::multipath == RTA_MULTIPATH);
static_assert(nl::rta::table == RTA_TABLE && nl::rta::pref == RTA_PREF);

static_assert(nl::rt_table::unspec == RT_TABLE_UNSPEC && nl::rt_table::main == RT_TABLE_MAIN);
static_assert(nl::rt_table::local == RT_TABLE_LOCAL);
static_assert(nl::rtprot::unspec == RTPROT_UNSPEC && nl::rtprot::kernel == RTPROT_KERNEL);
static_assert(nl::rtprot::boot == RTPROT_BOOT && nl::rtprot::static_ == RTPROT_STATIC);
static_assert(nl::rt_scope::universe == RT_SCOPE_UNIVERSE && nl::rt_scope::site == RT_SCOPE_SITE);
static_assert(nl::rt_scope::link == RT_SCOPE_LINK && nl::rt_scope::host == RT_SCOPE_HOST);
static_assert(nl::rt_scope::nowhere == RT_SCOPE_NOWHERE);
static_assert(nl::rtn::unspec == RTN_UNSPEC && nl::rtn::unicast == RTN_UNICAST);
static_assert(nl::rtn::local == RTN_LOCAL && nl::rtn::broadcast == RTN_BROADCAST);
static_assert(nl::rtn::anycast == RTN_ANYCAST && nl::rtn::multicast == RTN_MULTICAST);
static_assert(nl::rtn::blackhole == RTN_BLACKHOLE && nl::rtn::unreachable == RTN_UNREACHABLE);
static_assert(nl::rtn::prohibit == RTN_PROHIBIT);
static_assert(nl::rtnh_f::onlink == RTNH_F_ONLINK);

static_assert(nl::ifla::address == IFLA_ADDRESS && nl::ifla::broadcast == IFLA_BROADCAST);
static_assert(nl::ifla::ifname == IFLA_IFNAME && nl::ifla::mtu == IFLA_MTU);
static_assert(nl::ifla::link == IFLA_LINK && nl::ifla::qdisc == IFLA_QDISC);
static_assert(nl::ifla::master == IFLA_MASTER && nl::ifla::txqlen == IFLA_TXQLEN);
static_assert(nl::ifla::operstate == IFLA_OPERSTATE && nl::ifla::linkinfo == IFLA_LINKINFO);
static_assert(nl::ifla::stats64 == IFLA_STATS64 && nl::ifla::ext_mask == IFLA_EXT_MASK);
static_assert(nl::ifla::min_mtu == IFLA_MIN_MTU && nl::ifla::max_mtu == IFLA_MAX_MTU);
static_assert(nl::ifla_info::kind == IFLA_INFO_KIND && nl::ifla_info::data == IFLA_INFO_DATA);
static_assert(nl::ifla_info::slave_kind == IFLA_INFO_SLAVE_KIND);
static_assert(nl::if_oper::unknown == IF_OPER_UNKNOWN && nl::if_oper::notpresent == IF_OPER_NOTPRESENT);
static_assert(nl::if_oper::down == IF_OPER_DOWN && nl::if_oper::lowerlayerdown == IF_OPER_LOWERLAYERDOWN);
static_assert(nl::if_oper::testing == IF_OPER_TESTING && nl::if_oper::dormant == IF_OPER_DORMANT);
static_assert(nl::if_oper::up == IF_OPER_UP);
static_assert(nl::veth_info_peer == VETH_INFO_PEER);

static_assert(nl::iff::up == IFF_UP && nl::iff::broadcast == IFF_BROADCAST);
static_assert(nl::iff::loopback == IFF_LOOPBACK && nl::iff::pointopoint == IFF_POINTOPOINT);
static_assert(nl::iff::running == IFF_RUNNING && nl::iff::noarp == IFF_NOARP);
static_assert(nl::iff::promisc == IFF_PROMISC && nl::iff::multicast == IFF_MULTICAST);
static_assert(nl::iff::lower_up == IFF_LOWER_UP && nl::iff::dormant == IFF_DORMANT);

static_assert(nl::ifa::address == IFA_ADDRESS && nl::ifa::local == IFA_LOCAL);
static_assert(nl::ifa::label == IFA_LABEL && nl::ifa::broadcast == IFA_BROADCAST);
static_assert(nl::ifa::anycast == IFA_ANYCAST && nl::ifa::cacheinfo == IFA_CACHEINFO);
static_assert(nl::ifa::flags == IFA_FLAGS);
static_assert(nl::ifa_f::secondary == IFA_F_SECONDARY && nl::ifa_f::nodad == IFA_F_NODAD);
static_assert(nl::ifa_f::optimistic == IFA_F_OPTIMISTIC && nl::ifa_f::dadfailed == IFA_F_DADFAILED);
static_assert(nl::ifa_f::homeaddress == IFA_F_HOMEADDRESS);
static_assert(nl::ifa_f::deprecated == IFA_F_DEPRECATED && nl::ifa_f::tentative == IFA_F_TENTATIVE);
static_assert(nl::ifa_f::permanent == IFA_F_PERMANENT);
static_assert(nl::ifa_f::managetempaddr == IFA_F_MANAGETEMPADDR);
static_assert(nl::ifa_f::noprefixroute == IFA_F_NOPREFIXROUTE);

static_assert(nl::nda::dst == NDA_DST && nl::nda::lladdr == NDA_LLADDR);
static_assert(nl::nda::cacheinfo == NDA_CACHEINFO && nl::nda::probes == NDA_PROBES);
static_assert(nl::nud::incomplete == NUD_INCOMPLETE && nl::nud::reachable == NUD_REACHABLE);
static_assert(nl::nud::stale == NUD_STALE && nl::nud::delay == NUD_DELAY);
static_assert(nl::nud::probe == NUD_PROBE && nl::nud::failed == NUD_FAILED);
static_assert(nl::nud::noarp == NUD_NOARP && nl::nud::permanent == NUD_PERMANENT);
static_assert(nl::nud::none == NUD_NONE);

static_assert(nl::tun::setiff == TUNSETIFF && nl::tun::setpersist == TUNSETPERSIST);
static_assert(nl::tun::setowner == TUNSETOWNER && nl::tun::getiff == TUNGETIFF);
static_assert(nl::tun::iff_tun == IFF_TUN && nl::tun::iff_tap == IFF_TAP);
static_assert(nl::tun::iff_multi_queue == IFF_MULTI_QUEUE && nl::tun::iff_no_pi == IFF_NO_PI);
static_assert(nl::tun::iff_vnet_hdr == IFF_VNET_HDR);

static_assert(nl::ifnamsiz == IFNAMSIZ && nl::max_addr_len == MAX_ADDR_LEN);

// Wire structs: same size and field offsets as the kernel's.
static_assert(sizeof(nl::message_header) == sizeof(nlmsghdr));
static_assert(offsetof(nl::message_header, length) == offsetof(nlmsghdr, nlmsg_len));
static_assert(offsetof(nl::message_header, type) == offsetof(nlmsghdr, nlmsg_type));
static_assert(offsetof(nl::message_header, flags) == offsetof(nlmsghdr, nlmsg_flags));
static_assert(offsetof(nl::message_header, seq) == offsetof(nlmsghdr, nlmsg_seq));
static_assert(offsetof(nl::message_header, port) == offsetof(nlmsghdr, nlmsg_pid));
static_assert(sizeof(nl::error_header) == sizeof(nlmsgerr));
static_assert(offsetof(nl::error_header, request) == offsetof(nlmsgerr, msg));
static_assert(sizeof(nl::attribute_header) == sizeof(nlattr));
static_assert(offsetof(nl::attribute_header, type) == offsetof(nlattr, nla_type));
static_assert(sizeof(nl::link_header) == sizeof(ifinfomsg));
static_assert(offsetof(nl::link_header, type) == offsetof(ifinfomsg, ifi_type));
static_assert(offsetof(nl::link_header, index) == offsetof(ifinfomsg, ifi_index));
static_assert(offsetof(nl::link_header, flags) == offsetof(ifinfomsg, ifi_flags));
static_assert(offsetof(nl::link_header, change) == offsetof(ifinfomsg, ifi_change));
static_assert(sizeof(nl::address_header) == sizeof(ifaddrmsg));
static_assert(offsetof(nl::address_header, prefix_len) == offsetof(ifaddrmsg, ifa_prefixlen));
static_assert(offsetof(nl::address_header, scope) == offsetof(ifaddrmsg, ifa_scope));
static_assert(offsetof(nl::address_header, index) == offsetof(ifaddrmsg, ifa_index));
static_assert(sizeof(nl::route_header) == sizeof(rtmsg));
static_assert(offsetof(nl::route_header, table) == offsetof(rtmsg, rtm_table));
static_assert(offsetof(nl::route_header, protocol) == offsetof(rtmsg, rtm_protocol));
static_assert(offsetof(nl::route_header, scope) == offsetof(rtmsg, rtm_scope));
static_assert(offsetof(nl::route_header, type) == offsetof(rtmsg, rtm_type));
static_assert(offsetof(nl::route_header, flags) == offsetof(rtmsg, rtm_flags));
static_assert(sizeof(nl::neighbour_header) == sizeof(ndmsg));
static_assert(offsetof(nl::neighbour_header, index) == offsetof(ndmsg, ndm_ifindex));
static_assert(offsetof(nl::neighbour_header, state) == offsetof(ndmsg, ndm_state));
static_assert(offsetof(nl::neighbour_header, flags) == offsetof(ndmsg, ndm_flags));
static_assert(offsetof(nl::neighbour_header, type) == offsetof(ndmsg, ndm_type));
static_assert(sizeof(nl::sockaddr_netlink) == sizeof(sockaddr_nl));
static_assert(offsetof(nl::sockaddr_netlink, port) == offsetof(sockaddr_nl, nl_pid));
static_assert(offsetof(nl::sockaddr_netlink, groups) == offsetof(sockaddr_nl, nl_groups));

TEST_SUITE("netlink") {

// The static_asserts above are the test; this checks the one value that is computed rather
// than spelled out: the kernel's alignment macros against cz::netlink::align.
TEST_CASE("alignment matches NLMSG_ALIGN and NLA_ALIGN") {
    for (std::size_t n = 0; n < 64; ++n) {
        CHECK(nl::align(n) == NLMSG_ALIGN(n));
        CHECK(nl::align(n) == std::size_t(NLA_ALIGN(n)));
    }
    CHECK(NLMSG_HDRLEN == sizeof(nl::message_header));
    CHECK(NLA_HDRLEN == sizeof(nl::attribute_header));
}

}
