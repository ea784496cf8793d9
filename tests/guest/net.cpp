// cz-init's network RPCs (guest/agent/net.hpp), decoding: the requests' interface names, CIDR
// texts, gateways and sources into cz/netlink's terms, and the errors for what does not decode.
// No I/O: what the kernel makes of the result is net_kernel.cpp's (a network namespace) and
// agent_net_vm.cpp's (a VM) to check.
#include "agent/net.hpp"

#include "support/support.hpp"

#include <sys/socket.h>

#include <string>

using namespace cz::guest;
namespace nl = cz::netlink;

namespace {

template <std::size_t N>
void set(char (&field)[N], const std::string& value) {
    std::error_code ec;
    cz::agent::set_string(field, value, ec);
    REQUIRE_MESSAGE(!ec, "test value too long: " << value);
}

cz_agent_IpAddrAdd addr_add(const std::string& interface, const std::string& address) {
    cz_agent_IpAddrAdd r = cz_agent_IpAddrAdd_init_zero;
    set(r.interface, interface);
    set(r.address, address);
    return r;
}

cz_agent_IpRouteAddLink route_link(const std::string& interface, const std::string& destination,
                                   const std::string& source = "") {
    cz_agent_IpRouteAddLink r = cz_agent_IpRouteAddLink_init_zero;
    set(r.interface, interface);
    set(r.destination, destination);
    set(r.source, source);
    return r;
}

cz_agent_IpRouteAddDefault route_default(const std::string& interface, const std::string& gateway,
                                         bool ipv6 = false) {
    cz_agent_IpRouteAddDefault r = cz_agent_IpRouteAddDefault_init_zero;
    set(r.interface, interface);
    set(r.gateway, gateway);
    r.ipv6 = ipv6;
    return r;
}

// The error's message, checked to be an INVALID_ARGUMENT with no errno.
std::string invalid_message(const net_error& e) {
    CHECK(e.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT);
    CHECK(e.sys_errno == 0);
    return e.message;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("guest") {

    TEST_CASE("net: CIDR prefixes of both families, up to the family's length") {
        struct good {
            const char* text;
            const char* address;
            int length;
        };
        for (auto g : {good{"10.0.2.15/24", "10.0.2.15", 24}, good{"0.0.0.0/0", "0.0.0.0", 0},
                       good{"192.168.1.1/32", "192.168.1.1", 32}, good{"fd00::2/64", "fd00::2", 64},
                       good{"::/0", "::", 0}, good{"::1/128", "::1", 128},
                       good{"10.0.0.1/008", "10.0.0.1", 8}}) {
            CAPTURE(g.text);
            ip_prefix p;
            auto e = parse_prefix(g.text, "f", p);
            CHECK_MESSAGE(!e, e.message);
            CHECK(p.address.to_string() == g.address);
            CHECK(int(p.length) == g.length);
        }
    }

    TEST_CASE("net: malformed prefixes are refused, naming the field and the text") {
        struct bad {
            const char* text;
            const char* says;
        };
        for (auto b : {bad{"10.0.2.15", "no prefix length"}, bad{"/24", "'' is no IPv4 or IPv6"},
                       bad{"10.0.2.15/", "prefix length '' is no"},
                       bad{"10.0.2.15/33", "prefix length 33 is longer than 32 (IPv4)"},
                       bad{"fd00::2/129", "prefix length 129 is longer than 128 (IPv6)"},
                       bad{"10.0.2.15/2a", "'2a' is no"}, bad{"10.0.2.15/+4", "'+4' is no"},
                       bad{"10.0.2.15/-1", "'-1' is no"}, bad{"10.0.2.15/0024", "'0024' is no"},
                       bad{"10.0.2.15/24/24", "'10.0.2.15/24' is no IPv4"},
                       bad{"10.0.2.256/24", "'10.0.2.256' is no IPv4"},
                       bad{"10.0.2.15 /24", "'10.0.2.15 ' is no IPv4"},
                       bad{"fe80::1%eth0/64", "IPv6 zone"}, bad{"", "no prefix length"}}) {
            CAPTURE(b.text);
            ip_prefix p;
            auto message = invalid_message(parse_prefix(b.text, "IpAddrAdd.address", p));
            CHECK_MESSAGE(contains(message, std::string("IpAddrAdd.address '") + b.text + "'"),
                          message);
            CHECK_MESSAGE(contains(message, b.says), message);
        }
    }

    TEST_CASE("net: interface names as iproute2 takes them") {
        CHECK(!check_interface("eth0", "f"));
        CHECK(!check_interface("lo", "f"));
        CHECK(!check_interface("fifteen-chars-x", "f"));
        CHECK(contains(invalid_message(check_interface("", "IpLinkSet.interface")),
                       "IpLinkSet.interface is empty"));
        for (const char* name : {"sixteen-chars-xx", "a/b", "eth0:1", "eth 0", "eth0\n"}) {
            CAPTURE(name);
            auto message = invalid_message(check_interface(name, "IpLinkSet.interface"));
            CHECK_MESSAGE(contains(message, std::string("IpLinkSet.interface '") + name + "'"),
                          message);
        }
    }

    TEST_CASE("net: IpLinkSet decodes to the interface, its state and MTU") {
        cz_agent_IpLinkSet r = cz_agent_IpLinkSet_init_zero;
        set(r.interface, "eth0");
        r.up = true;
        r.mtu = 1400;
        link_change c;
        REQUIRE(!decode(r, c));
        CHECK(c.interface == "eth0");
        CHECK(c.up);
        CHECK(c.mtu == 1400);
        CHECK(describe(c) == "ip link set eth0 up mtu 1400");
        r.up = false;
        r.mtu = 0;
        REQUIRE(!decode(r, c));
        CHECK(describe(c) == "ip link set eth0 down");
        set(r.interface, "");
        CHECK(contains(invalid_message(decode(r, c)), "IpLinkSet.interface is empty"));
    }

    TEST_CASE("net: IpAddrAdd decodes to an address_spec; IPv6 without DAD") {
        address_change c;
        REQUIRE(!decode(addr_add("eth0", "10.0.2.15/24"), c));
        CHECK(c.interface == "eth0");
        CHECK(c.spec.local == asio::ip::make_address("10.0.2.15"));
        CHECK(c.spec.prefix_len == 24);
        CHECK(c.spec.flags == 0);
        CHECK(!c.spec.peer);
        CHECK(describe(c) == "ip address add 10.0.2.15/24 dev eth0");

        REQUIRE(!decode(addr_add("eth0", "fd00::2/64"), c));
        CHECK(c.spec.local == asio::ip::make_address("fd00::2"));
        CHECK(c.spec.prefix_len == 64);
        CHECK(c.spec.flags == nl::ifa_f::nodad);

        CHECK(contains(invalid_message(decode(addr_add("eth0", "10.0.2.15/40"), c)),
                       "IpAddrAdd.address '10.0.2.15/40': prefix length 40 is longer than 32"));
        CHECK(contains(invalid_message(decode(addr_add("eth/0", "10.0.2.15/24"), c)),
                       "IpAddrAdd.interface 'eth/0'"));
    }

    TEST_CASE("net: IpRouteAddLink decodes to an on-link route to a network") {
        route_change c;
        REQUIRE(!decode(route_link("eth0", "10.0.2.0/24", "10.0.2.15"), c));
        CHECK(c.interface == "eth0");
        CHECK(c.spec.dst == asio::ip::make_address("10.0.2.0"));
        CHECK(c.spec.dst_len == 24);
        CHECK(!c.spec.gateway);
        CHECK(c.spec.prefsrc == asio::ip::make_address("10.0.2.15"));
        CHECK(c.spec.scope == nl::rt_scope::link);
        CHECK(describe(c) == "ip route add 10.0.2.0/24 dev eth0 src 10.0.2.15");

        REQUIRE(!decode(route_link("eth0", "10.0.2.2/32"), c));
        CHECK(!c.spec.prefsrc);
        CHECK(describe(c) == "ip route add 10.0.2.2/32 dev eth0");
        REQUIRE(!decode(route_link("eth0", "fd00:1::/48"), c));
        CHECK(c.spec.dst_len == 48);
        REQUIRE(!decode(route_link("eth0", "0.0.0.0/0"), c));

        CHECK(contains(invalid_message(decode(route_link("eth0", "10.0.2.5/24"), c)),
                       "IpRouteAddLink.destination '10.0.2.5/24': host bits are set (the network "
                       "is 10.0.2.0/24)"));
        CHECK(contains(invalid_message(decode(route_link("eth0", "10.0.2.255/23"), c)),
                       "(the network is 10.0.2.0/23)"));
        CHECK(contains(invalid_message(decode(route_link("eth0", "fd00:1:2:3:4::1/60"), c)),
                       "(the network is fd00:1:2::/60)"));
        CHECK(contains(invalid_message(decode(route_link("eth0", "10.0.2.0/24", "fd00::2"), c)),
                       "IpRouteAddLink.source 'fd00::2' is not of the destination's family"));
        CHECK(contains(invalid_message(decode(route_link("eth0", "10.0.2.0/24", "10.0.2"), c)),
                       "IpRouteAddLink.source '10.0.2' is no IPv4 or IPv6 address"));
        CHECK(contains(invalid_message(decode(route_link("eth0", "10.0.2.0"), c)),
                       "IpRouteAddLink.destination '10.0.2.0': no prefix length"));
        CHECK(contains(invalid_message(decode(route_link("", "10.0.2.0/24"), c)),
                       "IpRouteAddLink.interface is empty"));
    }

    TEST_CASE("net: IpRouteAddDefault decodes to a default route via a gateway or a device") {
        route_change c;
        REQUIRE(!decode(route_default("eth0", "10.0.2.2"), c));
        CHECK(c.interface == "eth0");
        CHECK(!c.spec.dst);
        CHECK(c.spec.gateway == asio::ip::make_address("10.0.2.2"));
        CHECK(!c.spec.scope);
        CHECK(describe(c) == "ip route add default via 10.0.2.2 dev eth0");

        // The gateway's family wins over `ipv6`, which only matters without one.
        REQUIRE(!decode(route_default("", "fd00::1", false), c));
        CHECK(c.interface.empty());
        CHECK(c.spec.gateway == asio::ip::make_address("fd00::1"));
        CHECK(describe(c) == "ip route add default via fd00::1");

        REQUIRE(!decode(route_default("eth0", "", true), c));
        CHECK(!c.spec.gateway);
        CHECK(c.spec.family == AF_INET6);
        CHECK(describe(c) == "ip route add -6 default dev eth0");
        REQUIRE(!decode(route_default("eth0", ""), c));
        CHECK(c.spec.family == AF_INET);

        CHECK(contains(invalid_message(decode(route_default("", ""), c)), "needs an interface"));
        CHECK(contains(invalid_message(decode(route_default("eth0", "10.0.2.2/24"), c)),
                       "IpRouteAddDefault.gateway '10.0.2.2/24' is no IPv4 or IPv6 address"));
        CHECK(contains(invalid_message(decode(route_default("eth0", "0.0.0.0"), c)),
                       "is the unspecified address"));
        CHECK(contains(invalid_message(decode(route_default("e:0", "10.0.2.2"), c)),
                       "IpRouteAddDefault.interface 'e:0'"));
    }

} // TEST_SUITE
