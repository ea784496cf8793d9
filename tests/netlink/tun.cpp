// TAP and TUN devices through /dev/net/tun.
#include <cz/netlink/tun.hpp>

#include <cz/netlink/link.hpp>

#include "netns.hpp"

#include <unistd.h>

namespace nl = cz::netlink;
using netns::ensure;
using netns::ensure_equal;

TEST_SUITE("netlink") {

TEST_CASE("tun: TAP and TUN devices, transient and persistent; ip agrees") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        std::string name = "cz-tap0";
        {
            auto fd = nl::open_tun(name, {});
            ensure(fd.valid(), "fd");
            ensure_equal(name, "cz-tap0", "name kept");
            auto l = nl::get_link(c.s, name);
            ensure_equal(l.kind, "tun", "cz: kind");
            auto j = netns::ip_json("-d link show cz-tap0")[0];
            ensure_equal(j["linkinfo"]["info_kind"].get<std::string>(), "tun", "ip: kind");
            ensure_equal(j["linkinfo"]["info_data"]["type"].get<std::string>(), "tap", "ip: tap");
            ensure_equal(j["link_type"].get<std::string>(), "ether", "tap is Ethernet");
            netns::ensure_same_as_ip(c.s, "with a tap device");
        }
        std::error_code ec;
        nl::get_link(c.s, "cz-tap0", ec);
        ensure(ec == std::errc::no_such_device, "a transient tap disappears with its fd");

        std::string picked; // the kernel picks the name
        nl::tun_options tun;
        tun.mode = nl::tun_mode::tun;
        tun.persist = true;
        { auto fd = nl::open_tun(picked, tun); }
        ensure(picked.rfind("tun", 0) == 0, "kernel-picked name: " + picked);
        auto j = netns::ip_json("-d link show " + picked)[0];
        ensure_equal(j["linkinfo"]["info_data"]["type"].get<std::string>(), "tun", "ip: tun");
        ensure_equal(j["link_type"].get<std::string>(), "none", "tun has no link layer");
        auto l = nl::get_link(c.s, picked); // persistent: still there
        ensure(l.address.empty(), "tun has no hardware address");
        netns::ensure_same_as_ip(c.s, "with a persistent tun device");
        nl::delete_link(c.s, l.index);
        nl::get_link(c.s, picked, ec);
        ensure(ec == std::errc::no_such_device, "deleted");

        // Attaching a TUN-mode fd to a name that is a TAP device is refused.
        std::string again = "cz-tap1";
        nl::tun_options tap;
        tap.persist = true;
        { auto fd = nl::open_tun(again, tap); }
        nl::open_tun(again, tun, ec);
        ensure(ec == std::errc::invalid_argument, "mode mismatch: " + ec.message());
        std::string bad = "a/b";
        nl::open_tun(bad, tap, ec);
        ensure(ec == nl::errc::invalid_name, "bad name");
    });
}

}
