// Links: cz does, iproute2 checks; iproute2 does, cz checks.
#include <cz/netlink/link.hpp>

#include "netns.hpp"

#include <fmt/format.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

namespace nl = cz::netlink;
using netns::ensure;
using netns::ensure_equal;
using netns::sh;

TEST_SUITE("netlink") {

TEST_CASE("links: create veth and bridge, change every property, delete; ip agrees") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        auto& s = c.s;
        netns::ensure_same_as_ip(s, "fresh namespace");

        nl::create_veth(s, "cz-a", "cz-b");
        nl::create_bridge(s, "cz-br");
        auto a = nl::get_link(s, "cz-a");
        auto b = nl::get_link(s, "cz-b");
        auto br = nl::get_link(s, "cz-br");
        ensure(a.kind == "veth" && b.kind == "veth" && br.kind == "bridge", "kinds");
        ensure(a.link == b.index && b.link == a.index, "veth peers point at each other");
        ensure(nl::get_link(s, a.index).name == "cz-a", "get by index");
        netns::ensure_same_as_ip(s, "after create");

        nl::set_link_up(s, br.index, true);
        nl::set_link_up(s, a.index, true);
        nl::set_link_up(s, b.index, true);
        nl::set_link_mtu(s, a.index, 1400);
        nl::set_link_address(s, a.index, nl::parse_hw_address("02:00:00:c2:00:01"));
        nl::set_link_master(s, b.index, br.index);
        netns::ensure_same_as_ip(s, "after up, mtu, address, master");
        ensure(nl::get_link(s, b.index).slave_kind == "bridge", "bridge port slave kind");
        auto j = netns::ip_json("link show cz-a")[0];
        ensure_equal(j["address"].get<std::string>(), "02:00:00:c2:00:01", "ip sees the MAC");
        ensure(j["mtu"] == 1400, "ip sees the MTU");

        nl::set_link_master(s, b.index, 0); // nomaster
        nl::set_link_up(s, a.index, false);
        nl::rename_link(s, a.index, "cz-renamed");
        ensure(nl::get_link(s, a.index).name == "cz-renamed", "renamed");
        netns::ensure_same_as_ip(s, "after nomaster, down, rename");

        nl::delete_link(s, a.index); // takes its peer with it
        nl::delete_link(s, br.index);
        ensure(nl::list_links(s).size() == 1, "only lo is left");
        netns::ensure_same_as_ip(s, "after delete");
    });
}

TEST_CASE("links: set up with ip, read with cz") {
    CZ_NETNS_TEST([] {
        sh("ip link add ipv0 type veth peer name ipv1");
        sh("ip link add ipbr type bridge");
        sh("ip link set ipv0 mtu 1280 address 02:11:22:33:44:55 up");
        sh("ip link set ipv1 master ipbr up");
        sh("ip link set ipbr up");
        netns::cz_session c;
        auto v0 = nl::get_link(c.s, "ipv0");
        ensure(v0.mtu == 1280, "mtu");
        ensure(nl::to_string(v0.address) == "02:11:22:33:44:55", "address");
        ensure(v0.is_up(), "up");
        auto v1 = nl::get_link(c.s, "ipv1");
        ensure(v1.master == nl::get_link(c.s, "ipbr").index, "master");
        netns::ensure_same_as_ip(c.s, "ip-made links");
    });
}

TEST_CASE("links: dummy devices, as far as the kernel has the driver") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        std::error_code ec;
        nl::create_dummy(c.s, "cz-dummy", ec);
        int ip_status = netns::sh_status("ip link add ip-dummy type dummy");
        if (ec) {
            // No dummy driver in this kernel: iproute2 must fail too, and cz must say why.
            ensure(ec == std::errc::operation_not_supported, "dummy: " + ec.message());
            ensure(ip_status != 0, "ip created a dummy device cz could not");
            ensure(!c.s.error_detail().message.empty(), "the kernel's message is kept");
            throw netns::skipped("kernel has no dummy driver (cz and ip agree): " +
                                 c.s.error_detail().message);
        }
        ensure(ip_status == 0, "ip could not create a dummy device cz could");
        ensure(nl::get_link(c.s, "cz-dummy").kind == "dummy", "kind");
        netns::ensure_same_as_ip(c.s, "dummy devices");
    });
}

TEST_CASE("links: statistics match ip -s after traffic on loopback") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        auto lo = nl::get_link(c.s, "lo");
        nl::set_link_up(c.s, lo.index, true);
        // Five datagrams to ourselves on 127.0.0.1: loopback counts each as sent and received.
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ensure(fd >= 0, "socket");
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < 5; ++i)
            ::sendto(fd, "cz", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        ::close(fd);
        auto st = nl::get_link(c.s, lo.index).stats;
        ensure(st.has_value(), "IFLA_STATS64 present");
        ensure(st->tx_packets >= 5, fmt::format("tx_packets {}", st->tx_packets));
        auto j = netns::ip_json("-s link show lo")[0]["stats64"];
        auto line = [](std::uint64_t rp, std::uint64_t rb, std::uint64_t tp, std::uint64_t tb,
                       std::uint64_t rd, std::uint64_t te) {
            return fmt::format("rx {} pkts {} bytes, tx {} pkts {} bytes, rx drop {}, tx err {}",
                               rp, rb, tp, tb, rd, te);
        };
        ensure_equal(line(st->rx_packets, st->rx_bytes, st->tx_packets, st->tx_bytes,
                          st->rx_dropped, st->tx_errors),
                     line(j["rx"]["packets"], j["rx"]["bytes"], j["tx"]["packets"],
                          j["tx"]["bytes"], j["rx"]["dropped"], j["tx"]["errors"]),
                     "lo statistics");
        // list_links carries the same counters.
        for (const auto& l : nl::list_links(c.s))
            if (l.index == lo.index)
                ensure(l.stats && l.stats->tx_packets == st->tx_packets, "dump statistics");
    });
}

}
