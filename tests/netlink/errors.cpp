// Errors: each a specific error code, with the kernel's extended-ACK message where it sends one.
#include <cz/netlink.hpp>

#include "netns.hpp"

#include <fmt/format.h>

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace nl = cz::netlink;
using netns::ensure;
using netns::sh;

namespace {

int make_link(nl::session& s) {
    nl::create_veth(s, "er0", "er1");
    return nl::get_link(s, "er0").index;
}

nl::address_spec spec(int index, const char* addr, std::uint8_t prefix) {
    nl::address_spec a;
    a.index = index;
    a.local = asio::ip::make_address(addr);
    a.prefix_len = prefix;
    return a;
}

// The text iproute2 prints for the same failure: "Error: <extack message>" or
// "RTNETLINK answers: <strerror>".
std::string ip_error(const std::string& command) {
    return sh(command + " 2>&1 || true");
}

} // namespace

TEST_SUITE("netlink") {

TEST_CASE("errors: missing device") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        std::error_code ec;
        nl::get_link(c.s, "cz-missing", ec);
        ensure(ec == std::errc::no_such_device, "get_link by name: " + ec.message());
        nl::get_link(c.s, 4242, ec);
        ensure(ec == std::errc::no_such_device, "get_link by index: " + ec.message());
        nl::set_link_up(c.s, 4242, true, ec);
        ensure(ec == std::errc::no_such_device, "set up: " + ec.message());
        nl::add_address(c.s, spec(4242, "10.0.0.1", 24), ec);
        ensure(ec == std::errc::no_such_device, "add address: " + ec.message());
        ensure(!c.s.error_detail().message.empty(), "the kernel names the missing device");
        MESSAGE("kernel on a missing device: '", c.s.error_detail().message, "'");
        // The throwing overload names the operation and the link.
        try {
            nl::delete_link(c.s, 4242);
            ensure(false, "delete_link of a missing link did not throw");
        } catch (const cz::system_error& e) {
            ensure(e.code() == std::errc::no_such_device, "thrown code");
            ensure(std::string(e.what()).find("delete link 4242") != std::string::npos,
                   std::string("what(): ") + e.what());
        }
        ensure(ip_error("ip link del cz-missing").find("Cannot find device") != std::string::npos,
               "ip agrees there is no device");
    });
}

TEST_CASE("errors: duplicate address, with the kernel's message") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        int i = make_link(c.s);
        nl::add_address(c.s, spec(i, "10.0.0.1", 24));
        std::error_code ec;
        nl::add_address(c.s, spec(i, "10.0.0.1", 24), ec);
        ensure(ec == std::errc::file_exists, "duplicate: " + ec.message());
        const auto& k = c.s.error_detail();
        ensure(!k.message.empty(), "the kernel sent an extended ACK message");
        // iproute2 prints the same message: "Error: <message>".
        std::string ip_says = ip_error("ip addr add 10.0.0.1/24 dev er0");
        ensure(ip_says.find(k.message) != std::string::npos,
               fmt::format("ip says '{}', cz has '{}'", ip_says, k.message));
        try {
            nl::add_address(c.s, spec(i, "10.0.0.1", 24));
            ensure(false, "no throw");
        } catch (const cz::system_error& e) {
            ensure(std::string(e.what()).find(k.message) != std::string::npos,
                   std::string("thrown text keeps the kernel's message: ") + e.what());
        }
        // Deleting an address that is not there.
        nl::delete_address(c.s, spec(i, "10.0.0.99", 24), ec);
        ensure(ec == std::errc::address_not_available, "delete missing: " + ec.message());
    });
}

TEST_CASE("errors: bad prefix lengths are refused by the kernel, with its message") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        int i = make_link(c.s);
        std::error_code ec;
        nl::add_address(c.s, spec(i, "10.0.0.1", 33), ec);
        ensure(ec == std::errc::invalid_argument, "IPv4 /33: " + ec.message());
        std::string v4_message = c.s.error_detail().message;
        ensure(!v4_message.empty(), "IPv4 /33: the kernel explains");
        MESSAGE("kernel on /33: ", v4_message);
        nl::add_address(c.s, spec(i, "2001:db8::1", 129), ec);
        ensure(ec == std::errc::invalid_argument, "IPv6 /129: " + ec.message());
        ensure(!c.s.error_detail().message.empty(), "IPv6 /129: the kernel explains");
        MESSAGE("kernel on /129: ", c.s.error_detail().message);
        // Routes: cz checks dst_len itself, before the kernel.
        nl::route_spec r;
        r.dst = asio::ip::make_address("10.0.0.0");
        r.dst_len = 33;
        nl::add_route(c.s, r, ec);
        ensure(ec == nl::errc::invalid_argument, "route /33: " + ec.message());
        ensure(netns::ip_addresses().empty(), "nothing was added");
    });
}

TEST_CASE("errors: permission denied without CAP_NET_ADMIN") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        int i = make_link(c.s);
        // Drop CAP_NET_ADMIN from this (child) process: effective, permitted, bounding set.
        ensure(::prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) == 0, "PR_CAPBSET_DROP");
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        ensure(::syscall(SYS_capget, &header, data) == 0, "capget");
        data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
        data[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
        data[CAP_NET_ADMIN / 32].inheritable &= ~(1u << (CAP_NET_ADMIN % 32));
        ensure(::syscall(SYS_capset, &header, data) == 0, "capset");

        std::error_code ec;
        nl::add_address(c.s, spec(i, "10.0.0.1", 24), ec);
        ensure(ec == std::errc::operation_not_permitted, "add address: " + ec.message());
        // rtnetlink checks CAP_NET_ADMIN before any handler runs, so no extended ACK here.
        MESSAGE("kernel without CAP_NET_ADMIN: '", c.s.error_detail().message, "'");
        nl::set_link_up(c.s, i, true, ec);
        ensure(ec == std::errc::operation_not_permitted, "set up: " + ec.message());
        nl::create_bridge(c.s, "cz-nope", ec);
        ensure(ec == std::errc::operation_not_permitted, "create: " + ec.message());
        std::string name = "cz-tapx";
        nl::open_tun(name, {}, ec);
        ensure(ec == std::errc::operation_not_permitted, "tun: " + ec.message());
        // Reading needs no privilege.
        ensure(nl::get_link(c.s, i).name == "er0", "reading still works");
        ensure(ip_error("ip addr add 10.0.0.1/24 dev er0").find("Operation not permitted") !=
                   std::string::npos,
               "ip is refused too");
    });
}

TEST_CASE("errors: invalid names are caught before the kernel sees them") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        std::error_code ec;
        nl::create_bridge(c.s, "this-name-is-too-long", ec);
        ensure(ec == nl::errc::invalid_name, "long name");
        nl::create_veth(c.s, "ok0", "bad/peer", ec);
        ensure(ec == nl::errc::invalid_name, "bad peer name");
        nl::create_veth(c.s, "dup0", "dup1");
        nl::create_veth(c.s, "dup0", "dup2", ec);
        ensure(ec == std::errc::file_exists, "duplicate link: " + ec.message());
    });
}

}
