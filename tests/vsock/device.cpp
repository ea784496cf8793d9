#include <cz/vsock/device.hpp>

#include "fake_guest.hpp"

#include <doctest/doctest.h>

#include <numeric>

using namespace cz::vsock;
using cz::vsock::test::guest_driver;

namespace {

std::vector<device_event> events(device& d) {
    std::vector<device_event> out;
    device_event ev;
    while (d.connections().poll_event(ev)) out.push_back(ev);
    return out;
}

cz::byte_buffer pattern(std::size_t n, unsigned seed = 1) {
    cz::byte_buffer b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = std::byte((i * 31 + seed) & 0xff);
    return b;
}

// A connection the guest opened to host port 1000 from guest port 5000, accepted.
connection_id guest_connect(device& dev, guest_driver& g, std::uint32_t gport = 5000,
                            std::uint32_t hport = 1000) {
    g.send(g.hdr(op::request, gport, hport));
    auto ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::guest_connect);
    CHECK(ev[0].port == hport);
    dev.connections().accept(ev[0].id);
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::response);
    CHECK(rx[0].h.src_cid() == 2);
    CHECK(rx[0].h.dst_cid() == 3);
    CHECK(rx[0].h.src_port() == hport);
    CHECK(rx[0].h.dst_port() == gport);
    CHECK(rx[0].h.buf_alloc() == dev.connections().config().buf_alloc);
    return ev[0].id;
}

} // namespace

TEST_SUITE("vsock") {

TEST_CASE("device: guest connects, sends data, host consumes and credit flows back") {
    device dev;
    guest_driver g(dev);
    auto id = guest_connect(dev, g);
    auto data = pattern(3000);
    g.send(g.hdr(op::rw, 5000, 1000).len(3000), data, /*split=*/true);
    auto ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::tx_data);
    auto& mux = dev.connections();
    auto pending = mux.pending_tx(id);
    REQUIRE(pending.size() == 3000);
    CHECK(std::equal(pending.begin(), pending.end(), data.begin()));
    mux.consume_tx(id, 3000);
    CHECK(g.receive().empty()); // far from the credit threshold: no unprompted update
    // CREDIT_REQUEST is answered with CREDIT_UPDATE carrying fwd_cnt.
    g.send(g.hdr(op::credit_request, 5000, 1000));
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::credit_update);
    CHECK(rx[0].h.fwd_cnt() == 3000);
}

TEST_CASE("device: unprompted credit update when the guest's view of free space runs low") {
    device dev;
    guest_driver g(dev);
    auto id = guest_connect(dev, g);
    auto& mux = dev.connections();
    auto chunk = pattern(60000);
    std::uint32_t sent = 0;
    while (sent + 60000 <= 256 * 1024) {
        g.send(g.hdr(op::rw, 5000, 1000).len(60000), chunk);
        sent += 60000;
    }
    events(dev);
    std::size_t consumed = 0;
    while (!mux.pending_tx(id).empty()) {
        auto n = mux.pending_tx(id).size();
        mux.consume_tx(id, n);
        consumed += n;
    }
    CHECK(consumed == sent);
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::credit_update);
    CHECK(rx[0].h.fwd_cnt() == sent);
}

TEST_CASE("device: a guest sending beyond its credit is reset") {
    device_config cfg;
    cfg.buf_alloc = 8192;
    device dev(cfg);
    guest_driver g(dev);
    guest_connect(dev, g);
    auto data = pattern(5000);
    g.send(g.hdr(op::rw, 5000, 1000).len(5000), data);
    g.send(g.hdr(op::rw, 5000, 1000).len(5000), data); // 10000 > 8192 in flight
    auto ev = events(dev);
    REQUIRE(ev.size() == 2);
    CHECK(ev[1].kind == event_kind::closed);
    CHECK(ev[1].ec == errc::connection_reset);
    CHECK(dev.connections().stats().credit_violations == 1);
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::rst);
    CHECK(dev.connections().connection_count() == 0);
}

TEST_CASE("device: host connects, guest accepts, host data respects the guest's credit") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    std::error_code ec;
    auto id = mux.connect(1024, ec);
    REQUIRE(!ec);
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::request);
    CHECK(rx[0].h.dst_port() == 1024);
    std::uint32_t local = rx[0].h.src_port();
    CHECK(local >= (1u << 30));
    CHECK(local < (1u << 31));
    // Data written before the guest accepted waits.
    auto data = pattern(20000, 7);
    CHECK(mux.send(id, data) == 20000);
    CHECK(g.receive().empty());
    g.buf_alloc = 10000;
    g.send(g.hdr(op::response, 1024, local));
    auto ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::connected);
    CHECK(ev[0].port == local);
    rx = g.receive();
    // 10000 bytes of credit: RW packets up to the 4 KiB buffers (4052 payload), then a
    // CREDIT_REQUEST when credit runs out.
    std::size_t got = 0;
    cz::byte_buffer received;
    bool asked = false;
    for (auto& p : rx) {
        if (p.h.op() == op::rw) {
            CHECK(p.h.len() == p.payload.size());
            CHECK(p.payload.size() <= 4096 - 44);
            received.insert(received.end(), p.payload.begin(), p.payload.end());
            got += p.payload.size();
        } else {
            CHECK(p.h.op() == op::credit_request);
            asked = true;
        }
    }
    CHECK(got == 10000);
    CHECK(asked);
    // The guest consumed everything: its update releases the rest.
    g.fwd_cnt = 10000;
    g.send(g.hdr(op::credit_update, 1024, local));
    g.buf_alloc = 1 << 20;
    g.send(g.hdr(op::credit_update, 1024, local));
    for (auto& p : g.receive()) {
        REQUIRE(p.h.op() == op::rw);
        received.insert(received.end(), p.payload.begin(), p.payload.end());
    }
    CHECK(received == data);
}

TEST_CASE("device: host connection refused by the guest, and REQUEST timeout") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    std::error_code ec;
    auto id = mux.connect(77, ec);
    auto rx = g.receive();
    REQUIRE(rx.size() == 1);
    g.send(g.hdr(op::rst, 77, rx[0].h.src_port()));
    auto ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id == id);
    CHECK(ev[0].kind == event_kind::closed);
    CHECK(ev[0].ec == errc::connection_refused);
    CHECK(g.receive().empty()); // never answer an RST with an RST

    auto id2 = mux.connect(78, ec);
    g.receive();
    auto t0 = muxer::clock::now();
    mux.tick(t0);
    mux.tick(t0 + std::chrono::milliseconds(1999));
    CHECK(events(dev).empty());
    mux.tick(t0 + std::chrono::milliseconds(2001));
    ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id == id2);
    CHECK(ev[0].ec == errc::connection_refused);
    rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::rst);
}

TEST_CASE("device: half-close in both directions, then a clean close") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    auto id = guest_connect(dev, g);
    // Host EOF -> SHUTDOWN(SEND) after the buffered data.
    auto data = pattern(100);
    mux.send(id, data);
    mux.close_send(id);
    CHECK(mux.send(id, data) == 0); // nothing after EOF
    auto rx = g.receive();
    REQUIRE(rx.size() == 2);
    CHECK(rx[0].h.op() == op::rw);
    CHECK(rx[1].h.op() == op::shutdown);
    CHECK(rx[1].h.flags() == shutdown_send);
    // The guest still sends; then SHUTDOWN(SEND) -> peer_shutdown once its data is consumed.
    g.send(g.hdr(op::rw, 5000, 1000).len(50), pattern(50));
    g.send(g.hdr(op::shutdown, 5000, 1000).flags(shutdown_send));
    auto ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::tx_data);
    mux.consume_tx(id, 50);
    ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::peer_shutdown);
    CHECK(ev[0].flags == shutdown_send);
    // The guest closes: SHUTDOWN(RCV|SEND) -> our RST, connection gone cleanly.
    g.send(g.hdr(op::shutdown, 5000, 1000).flags(shutdown_rcv | shutdown_send));
    ev = events(dev);
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].kind == event_kind::peer_shutdown);
    CHECK(ev[1].kind == event_kind::closed);
    CHECK(!ev[1].ec);
    rx = g.receive();
    REQUIRE(rx.size() == 1);
    CHECK(rx[0].h.op() == op::rst);
    CHECK(mux.connection_count() == 0);
}

TEST_CASE("device: guest SHUTDOWN with undelivered data waits, then times out") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    auto id = guest_connect(dev, g);
    g.send(g.hdr(op::rw, 5000, 1000).len(10), pattern(10));
    g.send(g.hdr(op::shutdown, 5000, 1000).flags(shutdown_rcv | shutdown_send));
    auto ev = events(dev);
    CHECK(mux.contains(id)); // data still waits for the host
    auto t0 = muxer::clock::now();
    mux.tick(t0);
    mux.tick(t0 + std::chrono::seconds(3));
    ev = events(dev);
    REQUIRE(!ev.empty());
    CHECK(ev.back().kind == event_kind::closed);
    CHECK(ev.back().ec == errc::connection_reset);
}

TEST_CASE("device: a hostile guest: data before connect, RST twice, SHUTDOWN with data on a "
          "host-initiated connection") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    SUBCASE("data and credit messages for no connection get an RST each, and nothing else") {
        g.send(g.hdr(op::rw, 5000, 1000).len(10), pattern(10));
        g.send(g.hdr(op::credit_request, 5000, 1000));
        g.send(g.hdr(op::shutdown, 5000, 1000).flags(shutdown_send));
        CHECK(events(dev).empty());
        CHECK(mux.connection_count() == 0);
        auto rx = g.receive();
        REQUIRE(rx.size() == 3);
        for (auto& p : rx) {
            CHECK(p.h.op() == op::rst);
            CHECK(p.h.dst_port() == 5000);
            CHECK(p.h.src_port() == 1000);
        }
    }
    SUBCASE("a second RST is ignored: no event, no answer") {
        auto id = guest_connect(dev, g);
        g.send(g.hdr(op::rst, 5000, 1000));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].id == id);
        CHECK(ev[0].ec == errc::connection_reset);
        auto dropped = mux.stats().dropped_packets;
        g.send(g.hdr(op::rst, 5000, 1000));
        CHECK(events(dev).empty());
        CHECK(g.receive().empty());
        CHECK(mux.stats().dropped_packets == dropped);
        CHECK(mux.lookup(id) == nullptr);
    }
    SUBCASE("data before the host accepted resets the connection") {
        g.send(g.hdr(op::request, 5000, 1000));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        REQUIRE(mux.lookup(ev[0].id) != nullptr);
        CHECK(mux.lookup(ev[0].id)->state() == connection_state::peer_init);
        g.send(g.hdr(op::rw, 5000, 1000).len(10), pattern(10));
        ev = events(dev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].kind == event_kind::closed);
        CHECK(ev[0].ec == errc::connection_reset);
        auto rx = g.receive();
        REQUIRE(rx.size() == 1);
        CHECK(rx[0].h.op() == op::rst);
    }
    SUBCASE("SHUTDOWN with data waiting times out on a host-initiated connection too") {
        std::error_code ec;
        auto id = mux.connect(1024, ec);
        auto t0 = muxer::clock::now();
        mux.tick(t0); // the REQUEST timeout starts
        auto rx = g.receive();
        REQUIRE(rx.size() == 1);
        std::uint32_t local = rx[0].h.src_port();
        g.send(g.hdr(op::response, 1024, local));
        g.send(g.hdr(op::rw, 1024, local).len(10), pattern(10));
        g.send(g.hdr(op::shutdown, 1024, local).flags(shutdown_rcv | shutdown_send));
        REQUIRE(mux.lookup(id) != nullptr);
        CHECK(mux.lookup(id)->state() == connection_state::peer_closed);
        events(dev);
        mux.tick(t0 + std::chrono::seconds(3)); // the shutdown timeout starts
        CHECK(events(dev).empty());
        mux.tick(t0 + std::chrono::seconds(6));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].kind == event_kind::closed);
        CHECK(ev[0].ec == errc::connection_reset);
        rx = g.receive();
        REQUIRE(rx.size() == 1);
        CHECK(rx[0].h.op() == op::rst);
    }
}

TEST_CASE("device: malformed, misaddressed and unknown packets") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    SUBCASE("wrong destination CID is dropped silently") {
        g.send(g.hdr(op::request, 1, 2).dst_cid(7));
        CHECK(events(dev).empty());
        CHECK(g.receive().empty());
        CHECK(mux.stats().dropped_packets == 1);
    }
    SUBCASE("spoofed source CID is dropped") {
        g.send(g.hdr(op::request, 1, 2).src_cid(99));
        CHECK(events(dev).empty());
        CHECK(g.receive().empty());
    }
    SUBCASE("SEQPACKET type gets an RST") {
        g.send(g.hdr(op::request, 1, 2).type(2));
        auto rx = g.receive();
        REQUIRE(rx.size() == 1);
        CHECK(rx[0].h.op() == op::rst);
    }
    SUBCASE("unknown op for no connection gets an RST") {
        g.send(g.hdr(static_cast<op>(42), 1, 2));
        auto rx = g.receive();
        REQUIRE(rx.size() == 1);
        CHECK(rx[0].h.op() == op::rst);
        CHECK(rx[0].h.dst_port() == 1);
    }
    SUBCASE("unknown op on a connection resets it") {
        auto id = guest_connect(dev, g);
        g.send(g.hdr(static_cast<op>(9), 5000, 1000));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].id == id);
        CHECK(ev[0].ec == errc::connection_reset);
    }
    SUBCASE("RW longer than 64 KiB or than its chain resets the connection") {
        guest_connect(dev, g);
        g.send(g.hdr(op::rw, 5000, 1000).len(70000), pattern(100));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].kind == event_kind::closed);
        auto rx = g.receive();
        REQUIRE(rx.size() == 1);
        CHECK(rx[0].h.op() == op::rst);
    }
    SUBCASE("a TX chain shorter than the header is dropped") {
        auto& t = g.tx_ring();
        auto buf = g.guest().alloc(64);
        g.guest().add_chain(t, {{buf, 20, false}});
        dev.process_tx();
        CHECK(dev.stats().bad_packets == 1);
        auto u = g.guest().pop_used(t);
        REQUIRE(u);
        CHECK(u->len == 0);
    }
    SUBCASE("a TX chain with writable buffers is dropped") {
        auto& t = g.tx_ring();
        auto buf = g.guest().alloc(64);
        g.guest().add_chain(t, {{buf, 44, false}, {buf, 20, true}});
        dev.process_tx();
        CHECK(dev.stats().bad_packets == 1);
        CHECK(dev.stats().last_error == errc::bad_descriptor_direction);
    }
    SUBCASE("a hostile TX ring is rejected without stopping the device") {
        auto& t = g.tx_ring();
        g.guest().write_desc(t, 0, 0xdead0000, 44, 0, 0);
        g.guest().publish(t, 0);
        dev.process_tx();
        CHECK(dev.stats().bad_chains == 1);
        CHECK(dev.stats().last_error == errc::address_out_of_range);
        t.next_desc = 1;
        g.send(g.hdr(op::request, 1, 2));
        CHECK(events(dev).size() == 1);
    }
    CHECK(dev.tx_queue().ready());
}

TEST_CASE("device: many concurrent connections and a connection flood") {
    device_config cfg;
    cfg.max_connections = 64;
    cfg.max_pending_resets = 16;
    device dev(cfg);
    guest_driver g(dev);
    auto& mux = dev.connections();
    std::vector<connection_id> ids;
    for (std::uint32_t i = 0; i < 64; ++i) {
        g.send(g.hdr(op::request, 10000 + i, 1000));
        auto ev = events(dev);
        REQUIRE(ev.size() == 1);
        mux.accept(ev[0].id);
        ids.push_back(ev[0].id);
        g.receive();
    }
    CHECK(mux.connection_count() == 64);
    // Each connection's data stays separate.
    for (std::uint32_t i = 0; i < 64; ++i) {
        auto d = pattern(100 + i, i);
        g.send(g.hdr(op::rw, 10000 + i, 1000).len(100 + i), d);
    }
    events(dev);
    for (std::uint32_t i = 0; i < 64; ++i) {
        auto p = mux.pending_tx(ids[i]);
        auto d = pattern(100 + i, i);
        CHECK(std::equal(p.begin(), p.end(), d.begin(), d.end()));
    }
    // A flood beyond the limit: every extra REQUEST gets an RST, memory stays bounded.
    for (std::uint32_t i = 0; i < 2000; ++i) g.send(g.hdr(op::request, 20000 + i, 1000));
    CHECK(mux.connection_count() == 64);
    CHECK(mux.pending_resets() <= cfg.max_pending_resets + cfg.max_connections);
    CHECK(mux.stats().resets_dropped > 0);
    CHECK(events(dev).empty());
    // The guest drains the RSTs; the device still serves the established connections.
    for (int i = 0; i < 10; ++i) g.receive();
    CHECK(mux.pending_resets() == 0);
    g.send(g.hdr(op::rw, 10005, 1000).len(5), pattern(5));
    CHECK(events(dev).empty()); // tx buffer was not empty: no new edge
    CHECK(mux.pending_tx(ids[5]).size() == 105 + 5);
}

TEST_CASE("device: a guest whose RX buffers refill its own avail ring is served in turns") {
    device dev;
    guest_driver g(dev);
    auto id = guest_connect(dev, g);
    // A new 4-entry RX ring whose one descriptor ends on the ring's own avail part: the header of
    // each packet lands just before it, the payload on avail.flags, idx, ring[4] and used_event.
    auto& fg = g.guest();
    constexpr std::uint16_t q = 4;
    auto r = fg.make_ring(q);
    REQUIRE(r.avail >= r.desc + 16 + 44); // descriptor 0 stays out of the buffer's way
    fg.write_desc(r, 0, r.avail - 44, 44 + 14, 2 /* write */, 0);
    fg.set_avail_idx(r, 1); // ring[0] = 0: descriptor 0
    std::error_code ec;
    dev.rx_queue().configure(dev.memory(), q, r.desc, r.avail, r.used, ec);
    REQUIRE(!ec);
    // Host data that, 14 bytes a packet, always makes one more chain available: chunk i sets
    // avail.idx to i + 2 with ring entries 0, so without a limit one process_rx() would never
    // return while data lasts.
    constexpr std::uint16_t chunks = 100;
    cz::byte_buffer data(14 * chunks, std::byte{0});
    for (std::uint16_t i = 0; i < chunks; ++i)
        cz::store_le<std::uint16_t>(data.data() + 14 * i + 2, static_cast<std::uint16_t>(i + 2));
    REQUIRE(dev.connections().send(id, data) == data.size());

    dev.process_rx();
    CHECK(dev.work_left());
    CHECK(fg.used_idx(r) == q); // one queue's worth, then the caller gets its thread back
    int calls = 1;
    while (dev.work_left() && calls < 1000) {
        dev.process_rx();
        ++calls;
    }
    CHECK_FALSE(dev.work_left());
    CHECK(calls == chunks / q);
    CHECK(fg.used_idx(r) == chunks);
}

TEST_CASE("device: reset_all closes every connection with the reason") {
    device dev;
    guest_driver g(dev);
    auto& mux = dev.connections();
    auto a = guest_connect(dev, g, 5000);
    auto b = guest_connect(dev, g, 5001);
    mux.reset_all(make_error_code(errc::connection_reset));
    auto ev = events(dev);
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].id == a);
    CHECK(ev[1].id == b);
    CHECK(ev[0].ec == errc::connection_reset);
    CHECK(mux.connection_count() == 0);
    CHECK(g.receive().empty());
}

TEST_CASE("device: send_buffer fills the host->guest buffer in place, across its wrap") {
    device_config cfg;
    cfg.rx_buffer_limit = 10000;
    device dev(cfg);
    guest_driver g(dev);
    auto& mux = dev.connections();
    auto id = guest_connect(dev, g);
    auto data = pattern(14000, 3);
    std::size_t filled = 0;
    auto fill = [&](std::size_t want) {
        cz::mutable_bytes space = mux.send_buffer(id);
        std::size_t n = std::min(want, space.size());
        std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(filled), n, space.begin());
        mux.commit_send(id, n);
        filled += n;
        return space.size();
    };
    CHECK(fill(7000) == 10000); // an empty buffer: all of it
    // The guest has room for 4000 bytes: the buffer keeps 3000 at [4000, 7000).
    g.buf_alloc = 4000;
    g.send(g.hdr(op::credit_update, 5000, 1000));
    cz::byte_buffer received;
    for (auto& p : g.receive())
        if (p.h.op() == op::rw) received.insert(received.end(), p.payload.begin(), p.payload.end());
    CHECK(received.size() == 4000);
    CHECK(fill(3000) == 3000); // up to the end of the buffer
    CHECK(fill(4000) == 4000); // wrapped: up to the unread part
    CHECK(mux.send_buffer(id).empty());
    CHECK(mux.send_space(id) == 0);
    g.buf_alloc = 1 << 20;
    g.fwd_cnt = 4000;
    g.send(g.hdr(op::credit_update, 5000, 1000));
    for (auto& p : g.receive())
        if (p.h.op() == op::rw) received.insert(received.end(), p.payload.begin(), p.payload.end());
    CHECK(received == data);
    // A host EOF or a guest that will read no more: no buffer to fill.
    mux.close_send(id);
    CHECK(mux.send_buffer(id).empty());
    CHECK(mux.send_buffer(id + 100).empty());
}

TEST_CASE("device: host-side buffering is bounded") {
    device_config cfg;
    cfg.rx_buffer_limit = 10000;
    device dev(cfg);
    guest_driver g(dev);
    auto& mux = dev.connections();
    auto id = guest_connect(dev, g);
    auto big = pattern(50000);
    CHECK(mux.send(id, big) == 10000);
    CHECK(mux.send_space(id) == 0);
    g.receive();
    auto ev = events(dev);
    REQUIRE(!ev.empty());
    CHECK(ev[0].kind == event_kind::rx_space);
    CHECK(mux.send_space(id) > 0);
    // A reader that filled the buffer exactly (never a short send) asks to be told explicitly.
    while (mux.send_space(id) > 0) mux.send(id, cz::bytes_view(big).first(mux.send_space(id)));
    CHECK(events(dev).empty());
    mux.notify_send_space(id);
    g.receive();
    ev = events(dev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].kind == event_kind::rx_space);
}
}
