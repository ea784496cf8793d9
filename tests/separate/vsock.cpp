// cz/vsock as a program compiled with CZ_SEPARATE_COMPILATION uses it: the out-of-line code
// comes from vsock_src.cpp and the program links with dependency('cz-vsock') alone (no codec, no
// libcrypto). guest_memory is moved (its move assignment is out of line).
#include <cz/vsock.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <cstdint>
#include <vector>

namespace vs = cz::vsock;

TEST_SUITE("separate compilation: vsock") {

    TEST_CASE("guest memory: bounds-checked translation survives a move") {
        std::vector<std::byte> ram(4096);
        vs::guest_memory mem;
        std::error_code ec;
        mem.add_region(
            {.gpa = 0x10000, .size = ram.size(), .uaddr = 0x7f0000000000, .host = ram.data()}, ec);
        REQUIRE(!ec);

        vs::guest_memory moved(std::move(mem));
        vs::guest_memory assigned;
        assigned = std::move(moved);
        CHECK(assigned.translate(0x10000 + 100, 16) == ram.data() + 100);
        CHECK(assigned.translate(0x10000 + 4090, 16) == nullptr); // runs past the region
        CHECK(assigned.uva_to_gpa(0x7f0000000000 + 8, 8, ec) == 0x10008);
        CHECK(!ec);
        assigned.uva_to_gpa(0x1000, 8, ec);
        CHECK(ec == vs::errc::address_out_of_range);

        // A region overlapping the first is refused.
        assigned.add_region({.gpa = 0x10800, .size = 16, .uaddr = 0, .host = ram.data()}, ec);
        CHECK(ec);
    }

    TEST_CASE("hybrid vsock handshake lines") {
        std::uint32_t port = 0;
        std::error_code ec;
        CHECK(vs::parse_connect_line(cz::as_bytes("CONNECT 1024\nrest"), port, ec) == 13);
        CHECK(!ec);
        CHECK(port == 1024);
        CHECK(vs::parse_connect_line(cz::as_bytes("CONNECT 10"), port, ec) == 0); // needs more
        CHECK(!ec);
        vs::parse_connect_line(cz::as_bytes("CONNECT x\n"), port, ec);
        CHECK(ec == vs::errc::handshake_failed);
        CHECK(vs::parse_ok_line(cz::as_bytes("OK 7\n"), port, ec) == 5);
        CHECK(port == 7);
        CHECK(vs::port_socket_path("/run/vm/vsock.sock", 52) == "/run/vm/vsock.sock_52");
    }

} // TEST_SUITE
