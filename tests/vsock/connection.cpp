#include <cz/vsock/connection.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace cz::vsock;
using state = connection_state;
using verdict = connection::verdict;

namespace {

constexpr std::uint32_t host_port = 1000;
constexpr std::uint32_t guest_port = 5000;

// A guest packet for the connection (host_port, guest_port), with the guest's credit.
packet_header from_guest(op o, std::uint32_t buf_alloc = 64 * 1024, std::uint32_t fwd_cnt = 0) {
    packet_header h;
    h.src_cid(3).dst_cid(2).src_port(guest_port).dst_port(host_port).type(type_stream).op(o);
    h.buf_alloc(buf_alloc).fwd_cnt(fwd_cnt);
    return h;
}

// A TX chain holding `payload` (the header is not needed: the muxer has read it already).
struct tx_chain {
    std::vector<std::byte> bytes;
    descriptor_chain chain;
    explicit tx_chain(std::size_t n) : bytes(n, std::byte{0x5a}) {
        if (n != 0) chain.readable.push_back({bytes.data(), static_cast<std::uint32_t>(n)});
        chain.readable_len = n;
    }
};

// An RX buffer of `n` bytes.
struct rx_chain {
    std::vector<std::byte> bytes;
    descriptor_chain chain;
    explicit rx_chain(std::size_t n = 4096) : bytes(n) {
        chain.writable.push_back({bytes.data(), static_cast<std::uint32_t>(n)});
        chain.writable_len = n;
    }
    packet_header header() const {
        return packet_header::from_bytes(cz::bytes_view(bytes).first(packet_header::wire_size));
    }
};

connection::guest_outcome deliver(connection& c, const packet_header& h, std::size_t payload = 0,
                                  const connection_limits& lim = {}) {
    tx_chain t(payload);
    return c.on_guest_packet(h, true, t.chain, 0, lim);
}

op next_rx(connection& c, const connection_limits& lim = {}) {
    rx_chain r;
    auto out = c.fill_rx(r.chain, lim);
    CHECK(out.written >= packet_header::wire_size);
    CHECK(r.header().op() == out.sent);
    return out.sent;
}

// A guest-initiated connection, accepted, with its RESPONSE sent.
connection established() {
    connection c = connection::incoming(1, from_guest(op::request));
    REQUIRE(c.accept());
    REQUIRE(next_rx(c) == op::response);
    REQUIRE(c.state() == state::established);
    return c;
}

} // namespace

TEST_SUITE("vsock") {

    TEST_CASE("connection: host-initiated: REQUEST owed, RESPONSE establishes, timeout refuses") {
        connection c = connection::outgoing(7, (1u << 30) + 1, 1024);
        CHECK(c.state() == state::local_init);
        CHECK(c.pending_rx().contains(pending_packet::request));
        CHECK(c.has_deadline());
        CHECK(c.wants_rx());
        CHECK(next_rx(c) == op::request);
        CHECK(c.pending_rx().empty());
        CHECK(!c.wants_rx()); // nothing more until the guest answers
        // Nothing but RESPONSE or RST is legal now: a CREDIT_UPDATE (or data) kills it.
        SUBCASE("RESPONSE") {
            packet_header h = from_guest(op::response);
            h.src_port(1024).dst_port((1u << 30) + 1);
            auto out = deliver(c, h);
            CHECK(out.what == verdict::ok);
            CHECK(out.connected);
            CHECK(c.state() == state::established);
            CHECK(!c.has_deadline());
            // A second RESPONSE is a violation.
            out = deliver(c, h);
            CHECK(out.what == verdict::violation);
            CHECK(c.state() == state::killed);
            CHECK(c.close_reason() == errc::connection_reset);
        }
        SUBCASE("data before the guest accepted") {
            auto out = deliver(c, from_guest(op::rw).len(10), 10);
            CHECK(out.what == verdict::violation);
            CHECK(c.state() == state::killed);
            CHECK(c.close_reason() == errc::connection_reset);
        }
        SUBCASE("RST: refused") {
            auto out = deliver(c, from_guest(op::rst));
            CHECK(out.what == verdict::reset_by_peer);
            CHECK(c.state() == state::killed);
            CHECK(c.close_reason() == errc::connection_refused);
            // A second RST on the dead connection changes nothing but is not legal either.
            CHECK(deliver(c, from_guest(op::rst)).what == verdict::violation);
            CHECK(c.close_reason() == errc::connection_refused);
        }
        SUBCASE("timeout") {
            auto t0 = connection::clock::now();
            std::chrono::milliseconds req(2000), shut(500);
            CHECK(!c.deadline_passed(t0, req, shut)); // starts counting here
            CHECK(!c.deadline_passed(t0 + std::chrono::milliseconds(1999), req, shut));
            CHECK(c.deadline_passed(t0 + std::chrono::milliseconds(2000), req, shut));
            c.kill();
            CHECK(c.state() == state::killed);
            CHECK(c.close_reason() == errc::connection_refused);
        }
    }

    TEST_CASE("connection: guest-initiated: nothing is legal before the host answers") {
        connection c = connection::incoming(1, from_guest(op::request));
        CHECK(c.state() == state::peer_init);
        CHECK(c.local_port() == host_port);
        CHECK(c.peer_port() == guest_port);
        CHECK(c.can_refuse());
        CHECK(!c.wants_rx());
        SUBCASE("data before accept") {
            auto out = deliver(c, from_guest(op::rw).len(4), 4);
            CHECK(out.what == verdict::violation);
            CHECK(!out.tx_data);
            CHECK(c.state() == state::killed);
        }
        SUBCASE("a second REQUEST") {
            CHECK(deliver(c, from_guest(op::request)).what == verdict::violation);
        }
        SUBCASE("RST: reset") {
            CHECK(deliver(c, from_guest(op::rst)).what == verdict::reset_by_peer);
            CHECK(c.close_reason() == errc::connection_reset);
        }
        SUBCASE("accept once") {
            CHECK(c.accept());
            CHECK(!c.accept());
            CHECK(!c.can_refuse());
            CHECK(c.pending_rx().contains(pending_packet::response));
            CHECK(next_rx(c) == op::response);
            CHECK(!c.wants_rx());
        }
    }

    TEST_CASE("connection: guest data within credit; beyond it is a violation") {
        connection_limits lim;
        lim.buf_alloc = 8192;
        connection c = established();
        auto out = deliver(c, from_guest(op::rw).len(5000), 5000, lim);
        CHECK(out.what == verdict::ok);
        CHECK(out.tx_data);
        CHECK(c.pending_tx().size() == 5000);
        out = deliver(c, from_guest(op::rw).len(1000), 1000, lim);
        CHECK(out.what == verdict::ok);
        CHECK(!out.tx_data); // the host was told already
        // 5000 + 1000 + 3000 > 8192 bytes in flight.
        out = deliver(c, from_guest(op::rw).len(3000), 3000, lim);
        CHECK(out.what == verdict::violation);
        CHECK(out.credit_violation);
        CHECK(c.state() == state::killed);
        CHECK(c.close_reason() == errc::connection_reset);
    }

    TEST_CASE("connection: an RW whose payload is missing is a violation") {
        connection c = established();
        tx_chain t(10);
        auto out = c.on_guest_packet(from_guest(op::rw).len(100), false, t.chain, 0, {});
        CHECK(out.what == verdict::violation);
        CHECK(c.state() == state::killed);
    }

    TEST_CASE("connection: credit the guest cannot have: fwd_cnt ahead of what it was sent") {
        connection_limits lim;
        connection c = established();
        std::vector<std::byte> data(3000, std::byte{1});
        CHECK(c.send(data, lim) == 3000);
        // buf_alloc 2^32-1 and fwd_cnt 2 ahead of the 0 bytes sent: in-flight wraps to 2^32-2, so
        // the credit is 1 byte, not 4 GiB.
        deliver(c, from_guest(op::credit_update, 0xffffffffu, 2));
        CHECK(c.peer_credit() == 1);
        rx_chain r;
        auto out = c.fill_rx(r.chain, lim);
        CHECK(out.sent == op::rw);
        CHECK(out.written == packet_header::wire_size + 1);
        // fwd_cnt 1 ahead of the 1 byte sent: in-flight 2^32-1 >= buf_alloc: no credit at all,
        // and one CREDIT_REQUEST.
        deliver(c, from_guest(op::credit_update, 0xffffffffu, 2));
        CHECK(c.peer_credit() == 0);
        CHECK(next_rx(c) == op::credit_request);
        CHECK(!c.wants_rx()); // asked once; waits for credit
        // A real grant releases the rest, never more than buffered.
        deliver(c, from_guest(op::credit_update, 64 * 1024, 1));
        rx_chain r2(8192);
        out = c.fill_rx(r2.chain, lim);
        CHECK(out.sent == op::rw);
        CHECK(out.written == packet_header::wire_size + 2999);
        CHECK(!c.wants_rx());
    }

    TEST_CASE(
        "connection: half-closes are flags; SHUTDOWN both ways with data waiting is peer_closed") {
        connection_limits lim;
        connection c = established();
        // Host EOF: SHUTDOWN(SEND) owed after the buffered data; closing twice is a no-op.
        std::vector<std::byte> data(100, std::byte{2});
        c.send(data, lim);
        CHECK(c.close_send());
        CHECK(!c.close_send());
        CHECK(c.host_send_closed());
        CHECK(c.send(data, lim) == 0);
        CHECK(c.pending_rx().contains(pending_packet::shutdown));
        CHECK(next_rx(c) == op::rw);
        CHECK(next_rx(c) == op::shutdown);
        CHECK(!c.pending_rx().contains(pending_packet::shutdown));
        CHECK(c.state() == state::established);

        deliver(c, from_guest(op::rw).len(10), 10, lim);
        auto out = deliver(c, from_guest(op::shutdown).flags(shutdown_send), 0, lim);
        CHECK(out.what == verdict::ok);
        CHECK(c.state() == state::established); // the guest still receives
        // Data after SHUTDOWN(SEND) would be a violation; instead it closes the other half.
        out = deliver(c, from_guest(op::shutdown).flags(shutdown_rcv | shutdown_send), 0, lim);
        CHECK(out.rcv_shutdown);
        CHECK(out.deadline_started);
        CHECK(c.state() == state::peer_closed);
        CHECK(c.has_deadline());
        // A repeated SHUTDOWN changes nothing.
        out = deliver(c, from_guest(op::shutdown).flags(shutdown_rcv | shutdown_send), 0, lim);
        CHECK(out.what == verdict::ok);
        CHECK(!out.rcv_shutdown);
        CHECK(!out.deadline_started);
        // Nothing is told until the data is taken; then SHUTDOWN(SEND) once and a clean close.
        auto news = c.check_drained();
        CHECK(!news.peer_send_shutdown);
        CHECK(!news.clean_close);
        c.consume_tx(10, lim);
        news = c.check_drained();
        CHECK(news.peer_send_shutdown);
        CHECK(news.clean_close);
        CHECK(c.state() == state::killed);
        CHECK(!c.close_reason());
        CHECK(!c.check_drained().peer_send_shutdown);
    }

    TEST_CASE("connection: data after SHUTDOWN(SEND) is a violation") {
        connection c = established();
        deliver(c, from_guest(op::shutdown).flags(shutdown_send));
        auto out = deliver(c, from_guest(op::rw).len(1), 1);
        CHECK(out.what == verdict::violation);
        CHECK(c.state() == state::killed);
    }

    TEST_CASE("connection: peer_closed times out with the shutdown timeout") {
        connection c = established();
        deliver(c, from_guest(op::rw).len(10), 10);
        deliver(c, from_guest(op::shutdown).flags(shutdown_rcv | shutdown_send));
        REQUIRE(c.state() == state::peer_closed);
        auto t0 = connection::clock::now();
        std::chrono::milliseconds req(100), shut(2000);
        CHECK(!c.deadline_passed(t0, req, shut));
        CHECK(!c.deadline_passed(t0 + std::chrono::milliseconds(1000), req, shut));
        CHECK(c.deadline_passed(t0 + std::chrono::milliseconds(2000), req, shut));
        c.kill();
        CHECK(c.close_reason() == errc::connection_reset);
    }

    TEST_CASE("connection: CREDIT_REQUEST owes a CREDIT_UPDATE; freed space owes one past half") {
        connection_limits lim;
        connection c = established();
        deliver(c, from_guest(op::credit_request));
        CHECK(c.pending_rx().contains(pending_packet::credit_update));
        CHECK(next_rx(c) == op::credit_update);
        CHECK(c.pending_rx().empty());
        // The guest's window is min(buf_alloc, its own 64 KiB): 32 KiB freed owes an update.
        for (int i = 0; i < 8; ++i)
            deliver(c, from_guest(op::rw).len(4096), 4096, lim);
        c.consume_tx(32 * 1024 - 1, lim);
        CHECK(!c.pending_rx().contains(pending_packet::credit_update));
        c.consume_tx(1, lim);
        CHECK(c.pending_rx().contains(pending_packet::credit_update));
        rx_chain r;
        c.fill_rx(r.chain, lim);
        CHECK(r.header().fwd_cnt() == 32 * 1024);
    }

    TEST_CASE("connection: flag_set") {
        flag_set<pending_packet> s;
        CHECK(s.empty());
        s.insert(pending_packet::shutdown);
        s.insert(pending_packet::request);
        CHECK(s.contains(pending_packet::shutdown));
        CHECK(!s.contains(pending_packet::response));
        CHECK(s.take(pending_packet::shutdown));
        CHECK(!s.take(pending_packet::shutdown));
        s.erase(pending_packet::request);
        CHECK(s.empty());
    }
}
