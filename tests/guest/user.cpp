#include "runtime/user.hpp"

#include "support/support.hpp"

using namespace cz::guest;

namespace {

const char* passwd_text = "root:x:0:0:root:/root:/bin/sh\n"
                          "# a comment line\n"
                          "\n"
                          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                          "alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n"
                          "broken:x:notanumber:0::/broken:/bin/sh\n"
                          "nohome:x:1002:1002\n"
                          "alice:x:1001:1001::/second:/bin/sh\n";

const char* group_text = "root:x:0:\n"
                         "daemon:x:1:\n"
                         "wheel:x:10:alice,bob\n"
                         "alice:x:1000:\n"
                         "staff:x:50: bob , alice \n"
                         "bad:x:-1:alice\n";

struct db {
    std::vector<passwd_entry> passwd = parse_passwd(passwd_text);
    std::vector<group_entry> group = parse_group(group_text);
    exec_user resolve(std::string_view spec, error& err) const {
        return resolve_user(spec, exec_user{}, &passwd, &group, err);
    }
};

} // namespace

TEST_SUITE("guest") {

    TEST_CASE("user: /etc/passwd lines, with bad ones skipped") {
        auto p = parse_passwd(passwd_text);
        REQUIRE(p.size() == 5);
        CHECK(p[0].name == "root");
        CHECK(p[0].home == "/root");
        CHECK(p[2].name == "alice");
        CHECK(p[2].uid == 1000);
        CHECK(p[2].gecos == "Alice,,,");
        CHECK(p[2].shell == "/bin/sh");
        CHECK(p[3].name == "nohome"); // short lines are fine; missing fields are empty
        CHECK(p[3].home.empty());
        // The line with a non-numeric uid is gone, not read as uid 0.
        for (const auto& e : p)
            CHECK(e.name != "broken");
        CHECK(parse_passwd("x:x:2147483648:0::/:/bin/sh\n").empty()); // above runc's range
        CHECK(parse_passwd("x:x:+1:0::/:/bin/sh\n").empty());
        CHECK(parse_passwd(":x:1:1::/:/bin/sh\n").empty());          // no name
        CHECK(parse_passwd("x:x:1:1::/:/bin/sh").size() == 1);       // no final newline
        CHECK(parse_passwd("x:x:1:1::/:/bin/sh:extra").size() == 1); // shell keeps the rest
        CHECK(parse_passwd("x:x:1:1::/:/bin/sh:extra")[0].shell == "/bin/sh:extra");
    }

    TEST_CASE("user: /etc/group members") {
        auto g = parse_group(group_text);
        REQUIRE(g.size() == 5);
        CHECK(g[2].name == "wheel");
        CHECK(g[2].members == std::vector<std::string>{"alice", "bob"});
        CHECK(g[4].members == std::vector<std::string>{"bob", "alice"});
        CHECK(g[0].members.empty());
    }

    TEST_CASE("user: resolution as runc does it") {
        db d;
        error err;
        SUBCASE("a name: its ids, home and supplementary groups") {
            auto u = d.resolve("alice", err);
            REQUIRE(!err);
            CHECK(u.uid == 1000);
            CHECK(u.gid == 1000);
            CHECK(u.home == "/home/alice");
            CHECK(u.supplementary_gids == std::vector<std::uint32_t>{10, 50});
        }
        SUBCASE("a uid in passwd: the same, found by number") {
            auto u = d.resolve("1000", err);
            REQUIRE(!err);
            CHECK(u.gid == 1000);
            CHECK(u.home == "/home/alice");
            CHECK(u.supplementary_gids.size() == 2);
        }
        SUBCASE("a uid not in passwd works, with HOME / and no groups") {
            auto u = d.resolve("4242", err);
            REQUIRE(!err);
            CHECK(u.uid == 4242);
            CHECK(u.gid == 0);
            CHECK(u.home == "/");
            CHECK(u.supplementary_gids.empty());
        }
        SUBCASE("name:group: the explicit group, no supplementary groups") {
            auto u = d.resolve("alice:staff", err);
            REQUIRE(!err);
            CHECK(u.uid == 1000);
            CHECK(u.gid == 50);
            CHECK(u.supplementary_gids.empty());
        }
        SUBCASE("uid:gid with neither in the files") {
            auto u = d.resolve("4242:4343", err);
            REQUIRE(!err);
            CHECK(u.uid == 4242);
            CHECK(u.gid == 4343);
        }
        SUBCASE("the first matching entry wins") {
            auto u = d.resolve("alice", err);
            CHECK(u.home == "/home/alice");
        }
        SUBCASE("an entry without home gets /") {
            auto u = d.resolve("nohome", err);
            REQUIRE(!err);
            CHECK(u.home == "/");
        }
        SUBCASE("empty: looked up by the default uid") {
            auto u = d.resolve("", err);
            REQUIRE(!err);
            CHECK(u.uid == 0);
            CHECK(u.home == "/root");
        }
        SUBCASE("unknown names and bad numbers are errors") {
            d.resolve("mallory", err);
            CHECK(err.code == errc::unknown_user);
            CHECK(err.message == "user \"mallory\": not found in /etc/passwd");
            d.resolve("alice:nogroup", err);
            CHECK(err.code == errc::unknown_group);
            CHECK(err.message.find("nogroup") != std::string::npos);
            d.resolve("2147483648", err);
            CHECK(err.code == errc::id_out_of_range);
            d.resolve("0:99999999999", err);
            CHECK(err.code == errc::id_out_of_range);
            d.resolve("-1", err);
            CHECK(err.code == errc::unknown_user);
            CHECK_THROWS_AS(resolve_user("mallory", {}, &d.passwd, &d.group), runtime_error);
        }
        SUBCASE("without the files: numbers work, names do not") {
            auto u = resolve_user("12:34", exec_user{}, nullptr, nullptr, err);
            REQUIRE(!err);
            CHECK(u.uid == 12);
            CHECK(u.gid == 34);
            CHECK(u.home == "/");
            resolve_user("alice", exec_user{}, nullptr, nullptr, err);
            CHECK(err.code == errc::unknown_user);
        }
    }

} // TEST_SUITE
