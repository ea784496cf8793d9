// Neighbours: permanent entries for IPv4 and IPv6.
#include <cz/netlink/neighbour.hpp>

#include <cz/netlink/link.hpp>

#include "netns.hpp"

namespace nl = cz::netlink;
using netns::ensure;
using netns::sh;

TEST_SUITE("netlink") {

TEST_CASE("neighbours: cz adds, ip agrees; ip adds, cz agrees") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        auto& s = c.s;
        nl::create_veth(s, "nb0", "nb1");
        int i = nl::get_link(s, "nb0").index;
        nl::set_link_up(s, i, true);
        nl::neighbour_spec v4;
        v4.index = i;
        v4.dst = asio::ip::make_address("10.0.0.5");
        v4.lladdr = nl::parse_hw_address("02:00:00:00:00:05");
        nl::neighbour_spec v6 = v4;
        v6.dst = asio::ip::make_address("2001:db8::5");
        v6.lladdr = nl::parse_hw_address("02:00:00:00:00:06");
        nl::neighbour_spec stale = v4;
        stale.dst = asio::ip::make_address("10.0.0.6");
        stale.state = nl::nud::stale;
        nl::add_neighbour(s, v4);
        nl::add_neighbour(s, v6);
        nl::add_neighbour(s, stale);
        netns::ensure_same_as_ip(s, "after cz neigh add");

        std::error_code ec;
        nl::add_neighbour(s, v4, ec);
        ensure(ec == std::errc::file_exists, "adding twice: EEXIST, got " + ec.message());
        v4.lladdr = nl::parse_hw_address("02:00:00:00:00:55");
        v4.replace = true;
        nl::add_neighbour(s, v4);

        sh("ip neigh add 10.0.0.7 lladdr 02:00:00:00:00:07 dev nb0");
        sh("ip -6 neigh add 2001:db8::7 lladdr 02:00:00:00:00:08 dev nb0 nud reachable");
        netns::ensure_same_as_ip(s, "after replace and ip neigh add");
        nl::delete_neighbour(s, v6);
        netns::ensure_same_as_ip(s, "after delete");
    });
}

}
