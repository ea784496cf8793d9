#include <cz/agent/credit.hpp>

#include "support/support.hpp"

#include <deque>
#include <random>

namespace agent = cz::agent;

TEST_SUITE("agent") {

    TEST_CASE("send_credit: spend, run out, get it back; no more than the window") {
        agent::send_credit out(1000);
        CHECK(out.available() == 1000);
        CHECK(out.take(600) == 600);
        CHECK(out.take(600) == 400);
        CHECK(out.take(1) == 0);
        std::error_code ec;
        out.grant(500, ec);
        CHECK(!ec);
        CHECK(out.available() == 500);
        out.grant(501, ec); // only 500 are outstanding
        CHECK(ec == agent::errc::credit_overflow);
        CHECK(out.available() == 500);
        out.grant(500, ec);
        CHECK(!ec);
        CHECK(out.available() == 1000);
        out.grant(1, ec);
        CHECK(ec == agent::errc::credit_overflow);
    }

    TEST_CASE("receive_credit: a sender beyond its credit, data after eof") {
        agent::receive_credit in(1000);
        std::error_code ec;
        in.on_data(1000, false, ec);
        CHECK(!ec);
        in.on_data(1, false, ec);
        CHECK(ec == agent::errc::credit_exceeded);
        CHECK(in.held() == 1000);
        in.on_data(0, false, ec); // an empty frame costs nothing
        CHECK(!ec);
        CHECK(in.on_consumed(499) == 0); // below half the window: nothing granted yet
        CHECK(in.on_consumed(1) == 500);
        CHECK(in.sender_credit() == 500);
        in.on_data(500, true, ec);
        CHECK(!ec);
        CHECK(in.eof());
        in.on_data(0, true, ec);
        CHECK(ec == agent::errc::data_after_eof);
        in.on_data(1, false, ec);
        CHECK(ec == agent::errc::data_after_eof);
        CHECK(in.on_consumed(1000) == 0); // nothing to grant after eof
        CHECK(in.held() == 0);
        CHECK(in.on_consumed(5) == 0); // more than held: clamped
    }

    TEST_CASE("stream_buffer keeps the bytes in order within the window") {
        agent::stream_buffer in(8);
        std::error_code ec;
        in.push(cz::as_bytes("abcde"), false, ec);
        CHECK(!ec);
        in.push(cz::as_bytes("fghi"), false, ec);
        CHECK(ec == agent::errc::credit_exceeded);
        in.push(cz::as_bytes("fgh"), false, ec);
        CHECK(!ec);
        CHECK(cz::as_chars(in.front()) == "abcdefgh");
        std::array<std::byte, 3> buf;
        std::uint32_t grant = 99;
        CHECK(in.read(buf, grant) == 3);
        CHECK(grant == 0);
        CHECK(cz::as_chars(cz::bytes_view(buf)) == "abc");
        CHECK(in.read(buf, grant) == 3);
        CHECK(grant == 6);
        in.push(cz::as_bytes("ijklmn"), true, ec);
        CHECK(!ec);
        CHECK(cz::as_chars(in.front()) == "ghijklmn");
        CHECK_FALSE(in.finished());
        CHECK(in.consume(8) == 0);
        CHECK(in.finished());
    }

    TEST_CASE("a sender and a receiver in random order: all bytes, in order, bounded, no stall") {
        for (unsigned seed = 1; seed <= 50; ++seed) {
            CAPTURE(seed);
            std::mt19937 rng(seed);
            const std::uint32_t window = 4096 + rng() % 65536;
            const std::size_t total = 1 << 20;
            agent::send_credit sender(window);
            agent::stream_buffer receiver(window);
            std::deque<cz::byte_buffer> data_in_flight;
            std::deque<std::uint32_t> credit_in_flight;
            std::size_t sent = 0, received = 0;
            std::error_code ec;
            for (std::size_t step = 0; received < total; ++step) {
                REQUIRE(step < 10'000'000);
                switch (rng() % 4) {
                case 0: { // the sender sends what its credit allows
                    auto n = sender.take(std::min<std::size_t>(1 + rng() % 20000, total - sent));
                    if (n == 0) break;
                    cz::byte_buffer chunk(n);
                    for (auto& b : chunk)
                        b = std::byte(sent++ % 251);
                    data_in_flight.push_back(std::move(chunk));
                    break;
                }
                case 1: // a data frame arrives
                    if (data_in_flight.empty()) break;
                    receiver.push(data_in_flight.front(),
                                  sent == total && data_in_flight.size() == 1, ec);
                    REQUIRE(!ec);
                    REQUIRE(receiver.held() <= window);
                    data_in_flight.pop_front();
                    break;
                case 2: { // the consumer reads some
                    cz::byte_buffer buf(1 + rng() % 30000);
                    std::uint32_t grant = 0;
                    auto n = receiver.read(buf, grant);
                    bool in_order = true;
                    for (std::size_t i = 0; i < n; ++i)
                        in_order &= buf[i] == std::byte(received++ % 251);
                    REQUIRE(in_order);
                    if (grant) credit_in_flight.push_back(grant);
                    break;
                }
                case 3: // a credit frame arrives
                    if (credit_in_flight.empty()) break;
                    sender.grant(credit_in_flight.front(), ec);
                    REQUIRE(!ec);
                    credit_in_flight.pop_front();
                    break;
                }
                // Never stuck: a sender without credit always has something on its way back to it.
                if (sent < total && sender.available() == 0)
                    REQUIRE((!credit_in_flight.empty() || !data_in_flight.empty() ||
                             receiver.held() > 0));
            }
            CHECK(sent == total);
            CHECK(receiver.finished());
        }
    }

} // TEST_SUITE
