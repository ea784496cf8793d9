// The session against the real kernel: leftovers of an earlier request are skipped, a reply
// from the future is an error, a handler's error stops the handler but not the draining.
#include <cz/netlink/session.hpp>

#include <cz/netlink/link.hpp>

#include "netns.hpp"

#include <asio/buffer.hpp>

namespace nl = cz::netlink;
using netns::ensure;

namespace {

// Sends a request for link 1 (answered by a reply and an ACK) stamped `seq` on the session's
// socket, behind the session's back. Not a dump: while a dump is unfinished the kernel refuses
// to start another on the same socket (EBUSY).
void send_raw_request(nl::session& s, std::uint32_t seq) {
    nl::message_builder b;
    b.begin(nl::rtm::getlink, nl::nlm_f::ack);
    nl::link_header h;
    h.index = 1;
    b.put(h);
    b.stamp(seq);
    s.socket().send_to(asio::buffer(b.data().data(), b.data().size()), nl::endpoint(0));
}

} // namespace

TEST_SUITE("netlink") {

TEST_CASE("session: stale replies are skipped, replies from the future are refused") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        nl::create_veth(c.s, "sq0", "sq1");

        // A reply and an ACK to an older sequence number wait in the socket: the next request skips them.
        send_raw_request(c.s, c.s.next_sequence() - 10);
        auto names = netns::cz_links(c.s);
        ensure(c.s.stray_messages() > 0, "the stale reply was seen and skipped");
        netns::ensure_equal(names, netns::ip_links(), "links after skipping a stale reply");

        // A handler that fails on the first message: the error comes back, the rest of the dump
        // is drained, and the session stays usable.
        nl::message_builder b;
        b.begin(nl::rtm::getlink, nl::nlm_f::dump);
        b.put(nl::link_header{});
        int calls = 0;
        std::error_code ec;
        c.s.execute(
            b,
            [&](const nl::message&, std::error_code& hec) {
                ++calls;
                hec = nl::errc::invalid_argument;
            },
            ec);
        ensure(ec == nl::errc::invalid_argument && calls == 1, "handler error: " + ec.message());
        ensure(nl::list_links(c.s, ec).size() == 3 && !ec, "session usable after a handler error");

        // A reply numbered after the request being answered cannot be ours.
        send_raw_request(c.s, c.s.next_sequence() + 100);
        nl::list_links(c.s, ec);
        ensure(ec == nl::errc::sequence_mismatch, "future sequence: " + ec.message());
    });
}

}
