#include <cz/netlink/protocol.hpp>

#include <cz/netlink/session.hpp>

#include <asio/io_context.hpp>

#include <doctest/doctest.h>

namespace nl = cz::netlink;

TEST_SUITE("netlink") {

TEST_CASE("raw_protocol and endpoint work as an Asio raw socket") {
    // Opening and binding a NETLINK_ROUTE socket needs no privilege and sends nothing.
    asio::io_context io;
    nl::raw_protocol::socket s(io);
    std::error_code ec;
    s.open(nl::raw_protocol::route(), ec);
    REQUIRE(!ec);
    s.set_option(nl::extended_ack(true), ec);
    CHECK(!ec);
    nl::extended_ack got;
    s.get_option(got, ec);
    CHECK(!ec);
    CHECK(got.value());
    s.bind(nl::endpoint(0), ec);
    REQUIRE(!ec);
    auto local = s.local_endpoint(ec);
    REQUIRE(!ec);
    CHECK(local.port() != 0);
    CHECK(local.protocol().family() == AF_NETLINK);
    CHECK(local.size() == 12);

    // A second socket gets another port id.
    nl::session other(io.get_executor());
    CHECK(other.port() != 0);
    CHECK(other.port() != local.port());

    // An endpoint size the kernel would never write is refused.
    nl::endpoint e;
    CHECK_THROWS(e.resize(64));
    CHECK(nl::raw_protocol::route() == nl::raw_protocol(0));
    CHECK(!(nl::raw_protocol::route() == nl::raw_protocol(16)));
}

}
