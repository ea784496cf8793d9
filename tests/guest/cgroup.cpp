// Reading cgroup v2 interface files back (guest/runtime/cgroup.hpp): the parsers, on texts as the
// kernel writes them (cgroup-v2.rst's formats; memory.events as Linux 6.1 prints it).
#include "runtime/cgroup.hpp"

#include <doctest/doctest.h>

using cz::guest::keyed_value;
using cz::guest::parse_io_stat;
using cz::guest::single_value;

TEST_SUITE("guest") {

    TEST_CASE("cgroup files: a flat keyed file's values, by whole key") {
        const std::string events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        CHECK(keyed_value(events, "oom_kill") == 2u);
        CHECK(keyed_value(events, "oom") == 3u); // not oom_kill's, nor oom_group_kill's
        CHECK(keyed_value(events, "low") == 0u);
        CHECK(keyed_value(events, "max") == 12u);
        CHECK_FALSE(keyed_value(events, "oom_k").has_value());
        CHECK_FALSE(keyed_value(events, "kill").has_value());
        CHECK_FALSE(keyed_value(events, "").has_value());
        CHECK_FALSE(keyed_value("", "oom_kill").has_value());
        // The last line without its newline; the largest value a counter holds.
        CHECK(keyed_value("a 1\nusage_usec 18446744073709551615", "usage_usec") ==
              18446744073709551615u);
    }

    TEST_CASE("cgroup files: a value that is no number is none") {
        CHECK_FALSE(keyed_value("oom_kill x\n", "oom_kill").has_value());
        CHECK_FALSE(keyed_value("oom_kill \n", "oom_kill").has_value());
        CHECK_FALSE(keyed_value("oom_kill -1\n", "oom_kill").has_value());
        CHECK_FALSE(keyed_value("oom_kill 12 13\n", "oom_kill").has_value());
        CHECK_FALSE(keyed_value("oom_kill 18446744073709551616\n", "oom_kill").has_value());
        CHECK_FALSE(keyed_value("oom_kill\n", "oom_kill").has_value());
    }

    TEST_CASE("cgroup files: single values, and max") {
        CHECK(single_value("16777216\n") == 16777216u);
        CHECK(single_value("0\n") == 0u);
        CHECK(single_value("7") == 7u);
        CHECK(single_value("max\n") == 0u);
        CHECK(single_value("max\n", 42) == 42u);
        CHECK_FALSE(single_value("").has_value());
        CHECK_FALSE(single_value("\n").has_value());
        CHECK_FALSE(single_value("maximum\n").has_value());
        CHECK_FALSE(single_value("12 34\n").has_value());
        CHECK_FALSE(single_value("12\n\n").has_value());
        CHECK_FALSE(single_value("-1\n").has_value());
    }

    TEST_CASE("cgroup files: io.stat, a line per device") {
        auto lines = parse_io_stat("254:0 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n"
                                   "8:16 rbytes=5 wbytes=0 rios=1 wios=0 dbytes=9 dios=1\n");
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].major == 254);
        CHECK(lines[0].minor == 0);
        CHECK(lines[0].rbytes == 1024);
        CHECK(lines[0].wbytes == 2048);
        CHECK(lines[0].rios == 3);
        CHECK(lines[0].wios == 4);
        CHECK(lines[1].major == 8);
        CHECK(lines[1].minor == 16);
        CHECK(lines[1].rbytes == 5);
        CHECK(parse_io_stat("").empty());
        // A line without a device, or with a broken one, is left out; a broken value is 0.
        lines =
            parse_io_stat("rbytes=1\nx:1 rbytes=1\n1: rbytes=1\n1:2 rbytes=x wbytes=7 junk\n1:3");
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].minor == 2);
        CHECK(lines[0].rbytes == 0);
        CHECK(lines[0].wbytes == 7);
        CHECK(lines[1].minor == 3);
        CHECK(lines[1].rbytes == 0);
    }

} // TEST_SUITE
