// Routes: plain, via a gateway, default, on-link to a gateway outside the subnet, IPv6.
#include <cz/netlink/route.hpp>

#include <cz/netlink/address.hpp>
#include <cz/netlink/link.hpp>

#include "netns.hpp"

#include <sys/socket.h>

namespace nl = cz::netlink;
using netns::ensure;
using netns::sh;

namespace {
asio::ip::address addr(const char* a) { return asio::ip::make_address(a); }

int setup_link(nl::session& s) {
    nl::create_veth(s, "rt0", "rt1");
    int i = nl::get_link(s, "rt0").index;
    nl::set_link_up(s, i, true);
    nl::address_spec a;
    a.index = i;
    a.local = addr("10.0.0.1");
    a.prefix_len = 24;
    nl::add_address(s, a);
    a.local = addr("2001:db8::1");
    a.prefix_len = 64;
    a.flags = nl::ifa_f::nodad;
    nl::add_address(s, a);
    return i;
}
} // namespace

TEST_SUITE("netlink") {

TEST_CASE("routes: cz adds and deletes IPv4 and IPv6 routes, ip agrees") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        auto& s = c.s;
        int i = setup_link(s);

        nl::route_spec via;
        via.dst = addr("10.1.0.0");
        via.dst_len = 16;
        via.gateway = addr("10.0.0.2");
        nl::route_spec scoped; // no gateway: scope link, as ip does
        scoped.dst = addr("192.168.9.1");
        scoped.dst_len = 32;
        scoped.oif = i;
        nl::route_spec deflt;
        deflt.gateway = addr("10.0.0.254");
        deflt.oif = i;
        nl::route_spec onlink; // a gateway outside 10.0.0.0/24
        onlink.dst = addr("172.16.0.0");
        onlink.dst_len = 12;
        onlink.gateway = addr("192.0.2.1");
        onlink.oif = i;
        onlink.onlink = true;
        nl::route_spec metric;
        metric.dst = addr("10.2.0.0");
        metric.dst_len = 16;
        metric.oif = i;
        metric.prefsrc = addr("10.0.0.1");
        metric.priority = 50;
        nl::route_spec v6;
        v6.dst = addr("2001:db8:100::");
        v6.dst_len = 48;
        v6.gateway = addr("2001:db8::2");
        nl::route_spec v6default;
        v6default.gateway = addr("fe80::1");
        v6default.oif = i;
        for (const auto* r : {&via, &scoped, &deflt, &onlink, &metric, &v6, &v6default})
            nl::add_route(s, *r);
        netns::ensure_same_as_ip(s, "after adding routes");

        int defaults = 0;
        for (const auto& r : nl::list_routes(s, AF_INET))
            if (r.table == nl::rt_table::main && r.is_default()) {
                ++defaults;
                ensure(r.gateway == addr("10.0.0.254") && r.oif == i, "default route");
                ensure(r.protocol == nl::rtprot::boot, "protocol boot, as ip");
            }
        ensure(defaults == 1, "one IPv4 default route");

        // Without onlink the kernel refuses a gateway it cannot reach.
        nl::route_spec unreachable = onlink;
        unreachable.dst = addr("172.32.0.0");
        unreachable.onlink = false;
        std::error_code ec;
        nl::add_route(s, unreachable, ec);
        ensure(ec == std::errc::network_unreachable, "unreachable gateway: " + ec.message());

        for (const auto* r : {&via, &deflt, &onlink, &v6, &v6default}) nl::delete_route(s, *r);
        netns::ensure_same_as_ip(s, "after deleting routes");
        nl::delete_route(s, via, ec);
        ensure(ec == std::errc::no_such_process, "deleting twice: ESRCH, got " + ec.message());
    });
}

TEST_CASE("routes: ip adds, cz reads") {
    CZ_NETNS_TEST([] {
        sh("ip link add ip0 type veth peer name ip1");
        sh("ip link set ip0 up");
        sh("ip addr add 10.5.0.1/24 dev ip0");
        sh("ip -6 addr add 2001:db8:7::1/64 dev ip0 nodad");
        sh("ip route add default via 10.5.0.1");
        sh("ip route add 10.6.0.0/16 via 10.5.0.9 metric 7");
        sh("ip route add 8.8.0.0/16 via 203.0.113.1 dev ip0 onlink");
        sh("ip -6 route add default via 2001:db8:7::2");
        netns::cz_session c;
        bool onlink = false;
        for (const auto& r : nl::list_routes(c.s, AF_INET))
            if (r.gateway == asio::ip::make_address("203.0.113.1"))
                onlink = (r.flags & nl::rtnh_f::onlink) != 0;
        ensure(onlink, "cz sees the onlink flag");
        netns::ensure_same_as_ip(c.s, "ip-made routes");
    });
}

}
