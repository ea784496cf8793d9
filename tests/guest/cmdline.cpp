// cz-init's reading of the kernel command line (guest/init/cmdline.hpp).
#include "init/cmdline.hpp"

#include <doctest/doctest.h>

using cz::guest::kernel_cmdline;

TEST_CASE("kernel command line: words, values, quotes, the last value wins") {
    auto c = kernel_cmdline::parse(
        "console=ttyS0 reboot=t  quiet cz.env=\"A=1 B=2\" cz.log=info cz.log=debug\n");
    CHECK(c.params().size() == 6);
    CHECK(c.get("console") == "ttyS0");
    CHECK(c.get("quiet") == "");
    CHECK(c.get("cz.env") == "A=1 B=2");
    CHECK(c.get("cz.log") == "debug");
    CHECK_FALSE(c.get("cz.missing").has_value());
    CHECK_FALSE(c.get("consol").has_value());
}

TEST_CASE("kernel command line: empty, spaces only, an unterminated quote, '=' in values") {
    CHECK(kernel_cmdline::parse("").params().empty());
    CHECK(kernel_cmdline::parse(" \n\t ").params().empty());
    auto c = kernel_cmdline::parse("a=\"b c d e=f");
    REQUIRE(c.params().size() == 1);
    CHECK(c.get("a") == "b c d e=f");
    CHECK(kernel_cmdline::parse("root=PARTUUID=1234-5").get("root") == "PARTUUID=1234-5");
    CHECK(kernel_cmdline::parse("=x").get("") == "x");
}

TEST_CASE("cz.net: interface, address and gateway, each present, nothing more") {
    cz::guest::net_setting n;
    REQUIRE(cz::guest::parse_net_setting("eth0,10.0.2.15/24,10.0.2.2", n));
    CHECK(n.interface == "eth0");
    CHECK(n.address == "10.0.2.15/24");
    CHECK(n.gateway == "10.0.2.2");
    REQUIRE(cz::guest::parse_net_setting("eth1,fd00::2/64,fd00::1", n));
    CHECK(n.address == "fd00::2/64");
    CHECK(n.gateway == "fd00::1");
    for (const char* bad : {"", "eth0", "eth0,10.0.2.15/24", "eth0,10.0.2.15/24,", ",a,b", "a,,b",
                            "eth0,10.0.2.15/24,10.0.2.2,extra"})
        CHECK_MESSAGE(!cz::guest::parse_net_setting(bad, n), bad);
}
