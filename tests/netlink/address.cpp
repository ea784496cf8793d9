// Addresses: add, list, delete, IPv4 and IPv6, prefixes, broadcast, peers; ip is the reference.
#include <cz/netlink/address.hpp>

#include "netns.hpp"

#include <sys/socket.h>

namespace nl = cz::netlink;
using netns::ensure;
using netns::sh;

namespace {
nl::address_spec spec(int index, const char* addr, std::uint8_t prefix) {
    nl::address_spec a;
    a.index = index;
    a.local = asio::ip::make_address(addr);
    a.prefix_len = prefix;
    return a;
}
} // namespace

TEST_SUITE("netlink") {

TEST_CASE("addresses: cz adds and deletes, ip agrees") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        auto& s = c.s;
        nl::create_veth(s, "cz0", "cz1");
        int i = nl::get_link(s, "cz0").index;
        nl::set_link_up(s, i, true);

        auto plain = spec(i, "10.0.0.1", 24);
        auto with_brd = spec(i, "10.0.1.1", 24);
        with_brd.broadcast = nl::broadcast_for(with_brd.local.to_v4(), 24);
        auto labelled = spec(i, "10.0.2.1", 16);
        labelled.label = "cz0:x";
        auto peer = spec(i, "10.9.0.1", 32);
        peer.peer = asio::ip::make_address("10.9.0.2");
        auto v6 = spec(i, "2001:db8::1", 64);
        v6.flags = nl::ifa_f::nodad;
        auto v6b = spec(i, "2001:db8:1::1", 48);
        v6b.flags = nl::ifa_f::nodad | nl::ifa_f::noprefixroute;
        auto host = spec(1, "127.0.0.2", 8);
        for (const auto* a : {&plain, &with_brd, &labelled, &peer, &v6, &v6b, &host})
            nl::add_address(s, *a);
        netns::ensure_same_as_ip(s, "after adding 7 addresses");

        auto v4 = nl::list_addresses(s, AF_INET, i);
        ensure(v4.size() == 4, "4 IPv4 addresses on cz0");
        for (const auto& a : v4) ensure(a.index == i && a.family == AF_INET, "filtered");
        ensure(nl::list_addresses(s, AF_INET6, 1).empty(), "lo has no IPv6 address (down)");

        for (const auto* a : {&plain, &peer, &v6, &host}) nl::delete_address(s, *a);
        netns::ensure_same_as_ip(s, "after deleting 4");
    });
}

TEST_CASE("addresses: ip adds, cz reads") {
    CZ_NETNS_TEST([] {
        sh("ip link add ip0 type veth peer name ip1");
        sh("ip addr add 192.168.7.1/24 brd + dev ip0");
        sh("ip addr add 192.168.8.1 peer 192.168.8.2/32 dev ip0");
        sh("ip addr add 2001:db8:5::7/64 dev ip0 nodad");
        sh("ip link set ip0 up");
        netns::cz_session c;
        bool found = false;
        for (const auto& a : nl::list_addresses(c.s, AF_INET))
            if (a.local.to_string() == "192.168.7.1") {
                found = true;
                ensure(a.prefix_len == 24 && a.broadcast &&
                           a.broadcast->to_string() == "192.168.7.255",
                       "brd +");
            }
        ensure(found, "cz lists ip's address");
        netns::ensure_same_as_ip(c.s, "ip-made addresses");
    });
}

}
