#include <cz/vsock/hybrid.hpp>

#include <doctest/doctest.h>

using namespace cz::vsock;

TEST_SUITE("vsock") {

TEST_CASE("hybrid handshake lines") {
    std::uint32_t port = 0;
    std::error_code ec;
    CHECK(parse_connect_line(cz::as_bytes("CONNECT 1024\n"), port, ec) == 13);
    CHECK(!ec);
    CHECK(port == 1024);
    CHECK(parse_connect_line(cz::as_bytes("connect 52\nrest"), port, ec) == 11);
    CHECK(port == 52);
    CHECK(parse_connect_line(cz::as_bytes("Connect\t4294967295\r\n"), port, ec) == 20);
    CHECK(port == 4294967295u);
    // Needs more.
    CHECK(parse_connect_line(cz::as_bytes("CONNECT 10"), port, ec) == 0);
    CHECK(!ec);
    // Malformed.
    for (const char* bad : {"CONNECT\n", "CONNECT x\n", "CONNECT 4294967296\n", "CONNECTX 1\n",
                            "LISTEN 1\n", "CONNECT -1\n", "CONNECT 1 2\n"}) {
        CAPTURE(bad);
        CHECK(parse_connect_line(cz::as_bytes(bad), port, ec) == 0);
        CHECK(ec == errc::handshake_failed);
    }
    // Too long without a newline.
    CHECK(parse_connect_line(cz::as_bytes(std::string(40, ' ')), port, ec) == 0);
    CHECK(ec == errc::handshake_failed);

    CHECK(parse_ok_line(cz::as_bytes("OK 1073741824\n"), port, ec) == 14);
    CHECK(port == 1073741824u);
    CHECK(parse_ok_line(cz::as_bytes("ERR 5\n"), port, ec) == 0);
    CHECK(ec == errc::handshake_failed);

    CHECK(port_socket_path("/run/vm/vsock.sock", 52) == "/run/vm/vsock.sock_52");
}

}
