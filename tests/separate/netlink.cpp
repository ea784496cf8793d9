// cz/netlink as a program compiled with CZ_SEPARATE_COMPILATION uses it: the out-of-line code
// comes from netlink_src.cpp and the program links with dependency('cz-netlink') alone (fmt and
// threads, Asio being header-only; no codec, no libcrypto).
#include <cz/netlink.hpp>

#include <asio/io_context.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <algorithm>
#include <array>
#include <optional>

namespace nl = cz::netlink;

TEST_SUITE("separate compilation: netlink") {

    TEST_CASE("a request built, stamped and parsed back") {
        nl::message_builder b;
        b.begin(nl::rtm::getlink, nl::nlm_f::request);
        b.put(nl::link_header{});
        b.attr_string(nl::ifla::ifname, "lo");
        REQUIRE(!b.error());
        CHECK(b.stamp(41) == 1);

        nl::message_reader messages(b.data());
        nl::message m;
        std::error_code ec;
        REQUIRE(messages.next(m, ec));
        CHECK(m.header.type == nl::rtm::getlink);
        CHECK(m.header.seq == 41);
        std::array<std::optional<cz::bytes_view>, nl::ifla::ifname + 1> table;
        REQUIRE(nl::parse_attributes(m.payload.subspan(sizeof(nl::link_header)), table, ec));
        REQUIRE(table[nl::ifla::ifname]);
        CHECK(nl::get_string(*table[nl::ifla::ifname]) == "lo");
        CHECK_FALSE(messages.next(m, ec));
        CHECK(!ec);
    }

    TEST_CASE("the kernel's loopback link, listed and looked up") {
        // Dumping links needs no privilege; every network namespace has lo.
        asio::io_context io;
        nl::session s(io.get_executor());
        auto links = nl::list_links(s);
        auto lo =
            std::find_if(links.begin(), links.end(), [](const auto& l) { return l.name == "lo"; });
        REQUIRE(lo != links.end());
        CHECK((lo->flags & nl::iff::loopback) != 0);
        CHECK(nl::get_link(s, "lo").index == lo->index);
        std::error_code ec;
        nl::get_link(s, "cz-no-such-link", ec);
        CHECK(ec);
    }

} // TEST_SUITE
