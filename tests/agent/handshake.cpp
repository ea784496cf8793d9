#include <cz/agent/handshake.hpp>

#include "support/support.hpp"

namespace agent = cz::agent;

TEST_SUITE("agent") {

    TEST_CASE("the handshake settles on the highest common version and each side's limits") {
        auto host = agent::make_hello(agent::role::host, 1 << 20, 256 << 10);
        auto guest = agent::make_hello(agent::role::guest, 128 << 10, 64 << 10);
        std::error_code ec;
        auto h = agent::negotiate(host, guest, ec);
        REQUIRE(!ec);
        CHECK(h.version == agent::max_protocol_version);
        CHECK(h.peer_role == agent::role::guest);
        CHECK(h.send_max_frame == (128u << 10));
        CHECK(h.receive_max_frame == (1u << 20));
        CHECK(h.send_window == (64u << 10));
        CHECK(h.receive_window == (256u << 10));
        auto g = agent::negotiate(guest, host, ec);
        REQUIRE(!ec);
        CHECK(g.version == h.version);
        CHECK(g.peer_role == agent::role::host);
        CHECK(g.send_max_frame == h.receive_max_frame);
        CHECK(g.send_window == h.receive_window);

        // Overlapping ranges: the highest version in both.
        host.min_version = 1;
        host.max_version = 5;
        guest.min_version = 3;
        guest.max_version = 9;
        CHECK(agent::negotiate(host, guest, ec).version == 5);
        CHECK(!ec);
        CHECK(agent::negotiate(guest, host, ec).version == 5);
    }

    TEST_CASE("a handshake without a common version fails") {
        auto host = agent::make_hello(agent::role::host);
        auto guest = agent::make_hello(agent::role::guest);
        guest.min_version = agent::max_protocol_version + 1;
        guest.max_version = agent::max_protocol_version + 3;
        std::error_code ec;
        agent::negotiate(host, guest, ec);
        CHECK(ec == agent::errc::version_mismatch);
        agent::negotiate(guest, host, ec);
        CHECK(ec == agent::errc::version_mismatch);
    }

    TEST_CASE("unusable hellos") {
        auto host = agent::make_hello(agent::role::host);
        std::error_code ec;
        auto check_bad = [&](agent::hello theirs) {
            agent::negotiate(host, theirs, ec);
            CHECK(ec == agent::errc::bad_hello);
        };
        check_bad(agent::make_hello(agent::role::host)); // two hosts
        auto g = agent::make_hello(agent::role::guest);
        g.role = cz_agent_Role_ROLE_UNSPECIFIED;
        check_bad(g);
        g = agent::make_hello(agent::role::guest, agent::min_frame_size_limit - 1);
        check_bad(g);
        g = agent::make_hello(agent::role::guest, agent::default_max_frame_size,
                              agent::min_stream_window - 1);
        check_bad(g);
        g = agent::make_hello(agent::role::guest);
        g.min_version = 3;
        g.max_version = 2;
        check_bad(g);
        g.min_version = 0;
        g.max_version = 0;
        check_bad(g);
        g = agent::make_hello(agent::role::guest, agent::min_frame_size_limit,
                              agent::min_stream_window);
        agent::negotiate(host, g, ec);
        CHECK(!ec); // the minimums themselves are fine
    }

} // TEST_SUITE
