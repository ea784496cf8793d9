// Reading cgroup v2 interface files back (guest/runtime/cgroup.hpp): the parsers, on texts as the
// kernel writes them (cgroup-v2.rst's formats; memory.events as Linux 6.1 prints it).
#include "runtime/cgroup.hpp"

#include <doctest/doctest.h>

using cz::guest::keyed_value;

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

} // TEST_SUITE
