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
