// cz-init's network RPCs (guest/agent/net.hpp) against the host's kernel, each test in a fresh
// network namespace (tests/netlink/netns.hpp; root: the integration suite), with iproute2 as the
// judge of what they did: loopback and a veth link brought up, addresses, on-link and default
// routes, and the errors the kernel gives (a missing interface, an address twice, an MTU out of
// range). The same RPCs in a VM, with traffic, are agent_net_vm.cpp's.
#include "agent/net.hpp"

#include "../netlink/netns.hpp"

#include <cerrno>
#include <string>

using namespace cz::guest;
using netns::ensure;
using netns::sh;

namespace {

template <std::size_t N>
void set(char (&field)[N], const std::string& value) {
    std::error_code ec;
    cz::agent::set_string(field, value, ec);
    ensure(!ec, "test value too long: " + value);
}

net_error link_set(const std::string& interface, bool up, std::uint32_t mtu = 0) {
    cz_agent_IpLinkSet r = cz_agent_IpLinkSet_init_zero;
    set(r.interface, interface);
    r.up = up;
    r.mtu = mtu;
    return ip_link_set(r);
}

net_error addr_add(const std::string& interface, const std::string& address) {
    cz_agent_IpAddrAdd r = cz_agent_IpAddrAdd_init_zero;
    set(r.interface, interface);
    set(r.address, address);
    return ip_addr_add(r);
}

net_error route_link(const std::string& interface, const std::string& destination,
                     const std::string& source = "") {
    cz_agent_IpRouteAddLink r = cz_agent_IpRouteAddLink_init_zero;
    set(r.interface, interface);
    set(r.destination, destination);
    set(r.source, source);
    return ip_route_add_link(r);
}

net_error route_default(const std::string& interface, const std::string& gateway,
                        bool ipv6 = false) {
    cz_agent_IpRouteAddDefault r = cz_agent_IpRouteAddDefault_init_zero;
    set(r.interface, interface);
    set(r.gateway, gateway);
    r.ipv6 = ipv6;
    return ip_route_add_default(r);
}

void ok(const net_error& e, const std::string& what) {
    ensure(!e, what + " failed: " + e.message);
}

// The error must have `code` and `err`, and its message must hold `part`.
void fails(const net_error& e, cz_agent_ErrorCode code, int err, const std::string& part,
           const std::string& what) {
    ensure(bool(e), what + " succeeded");
    ensure(e.code == code && e.sys_errno == err, what + ": code " + std::to_string(e.code) +
                                                     " errno " + std::to_string(e.sys_errno) +
                                                     ": " + e.message);
    ensure(e.message.find(part) != std::string::npos,
           what + ": message '" + e.message + "' lacks '" + part + "'");
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A veth pair `name` - "peer0" with the peer up, so that `name` gets a carrier once up (and the
// kernel's MTU limit of an Ethernet device, 65535, which a dummy link does not have).
void make_veth(const std::string& name) {
    if (netns::sh_status("ip link add " + name + " type veth peer name peer0") != 0)
        throw netns::skipped("the kernel has no veth driver (ip link add type veth failed)");
    sh("ip link set peer0 up");
}

} // namespace

TEST_SUITE("guest") {

    TEST_CASE("net kernel: lo comes up with 127.0.0.1, and goes down again") {
        CZ_NETNS_TEST([] {
            ensure(!has(sh("ip -o link show lo"), ",UP"), "lo is up in a fresh namespace");
            ok(link_set("lo", true), "ip link set lo up");
            ensure(has(sh("ip -o link show lo"), ",UP"),
                   "lo is not up: " + sh("ip -o link show lo"));
            ensure(has(sh("ip -o -4 address show dev lo"), "inet 127.0.0.1/8"),
                   "lo has no 127.0.0.1/8: " + sh("ip -o address show dev lo"));
            ok(link_set("lo", false), "ip link set lo down");
            ensure(!has(sh("ip -o link show lo"), ",UP"), "lo is still up");
        });
    }

    TEST_CASE("net kernel: a link's MTU, addresses and routes as ip shows them") {
        CZ_NETNS_TEST([] {
            make_veth("eth0");
            ok(link_set("eth0", true, 1400), "ip link set eth0 up mtu 1400");
            auto link = sh("ip -o link show eth0");
            ensure(has(link, "mtu 1400") && has(link, ",UP"), "eth0: " + link);

            ok(addr_add("eth0", "10.0.2.15/24"), "ip address add 10.0.2.15/24");
            ok(addr_add("eth0", "fd00::2/64"), "ip address add fd00::2/64");
            auto v4 = sh("ip -o -4 address show dev eth0");
            ensure(has(v4, "inet 10.0.2.15/24 ") && has(v4, "scope global"), "IPv4: " + v4);
            auto v6 = sh("ip -o -6 address show dev eth0 scope global");
            // nodad: usable at once, never tentative.
            ensure(has(v6, "inet6 fd00::2/64 scope global nodad") && !has(v6, "tentative"),
                   "IPv6: " + v6);

            ok(route_link("eth0", "192.0.2.0/24", "10.0.2.15"), "on-link route");
            ok(route_default("eth0", "10.0.2.2"), "default route");
            ok(route_default("", "fd00::1"), "IPv6 default route found by its gateway");
            auto routes = sh("ip -4 route show");
            ensure(has(routes, "default via 10.0.2.2 dev eth0"), "IPv4 routes: " + routes);
            ensure(has(routes, "192.0.2.0/24 dev eth0 scope link src 10.0.2.15"),
                   "IPv4 routes: " + routes);
            auto routes6 = sh("ip -6 route show");
            ensure(has(routes6, "default via fd00::1 dev eth0"), "IPv6 routes: " + routes6);
        });
    }

    TEST_CASE("net kernel: a gateway outside the subnet is reached through an on-link route") {
        CZ_NETNS_TEST([] {
            make_veth("eth0");
            ok(link_set("eth0", true), "up");
            ok(addr_add("eth0", "10.0.2.15/32"), "address");
            fails(route_default("eth0", "172.16.0.1"), cz_agent_ErrorCode_ERROR_SYSTEM, ENETUNREACH,
                  "ip route add default via 172.16.0.1 dev eth0",
                  "default route, gateway off-link");
            ok(route_link("eth0", "172.16.0.1/32"), "route to the gateway");
            ok(route_default("eth0", "172.16.0.1"), "default route via it");
            ok(route_default("eth0", "", true), "IPv6 device default route");
            auto routes = sh("ip -4 route show");
            ensure(has(routes, "default via 172.16.0.1 dev eth0") &&
                       has(routes, "172.16.0.1 dev eth0 scope link"),
                   "routes: " + routes);
            ensure(has(sh("ip -6 route show"), "default dev eth0"), "IPv6: " + sh("ip -6 route"));
        });
    }

    TEST_CASE("net kernel: errors name the interface and carry the kernel's errno and message") {
        CZ_NETNS_TEST([] {
            fails(link_set("eth9", true), cz_agent_ErrorCode_ERROR_NOT_FOUND, ENODEV,
                  "ip link set eth9 up: no interface 'eth9' in the VM (it has: lo)",
                  "missing link");
            fails(addr_add("eth9", "10.0.2.15/24"), cz_agent_ErrorCode_ERROR_NOT_FOUND, ENODEV,
                  "no interface 'eth9'", "address on a missing link");
            fails(route_default("eth9", "10.0.2.2"), cz_agent_ErrorCode_ERROR_NOT_FOUND, ENODEV,
                  "no interface 'eth9'", "route on a missing link");
            fails(addr_add("lo", "10.0.2.15/33"), cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
                  "IpAddrAdd.address '10.0.2.15/33': prefix length 33 is longer than 32",
                  "bad prefix length");

            make_veth("eth0");
            ok(addr_add("eth0", "10.0.2.15/24"), "address");
            fails(addr_add("eth0", "10.0.2.15/24"), cz_agent_ErrorCode_ERROR_ALREADY_EXISTS, EEXIST,
                  "ip address add 10.0.2.15/24 dev eth0: ", "the same address twice");
            fails(link_set("eth0", true, 70000), cz_agent_ErrorCode_ERROR_SYSTEM, EINVAL,
                  "ip link set eth0 up mtu 70000: ", "MTU above the maximum");
            // The MTU failed first: the link stays down.
            ensure(!has(sh("ip -o link show eth0"), ",UP"), "eth0 came up");
            ok(link_set("eth0", true), "up");
            ok(route_default("eth0", "10.0.2.2"), "default route");
            fails(route_default("eth0", "10.0.2.2"), cz_agent_ErrorCode_ERROR_ALREADY_EXISTS,
                  EEXIST, "ip route add default via 10.0.2.2 dev eth0", "the default route twice");
        });
    }

} // TEST_SUITE
