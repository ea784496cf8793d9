#include <cz/vsock/virtqueue.hpp>

#include "fake_guest.hpp"

#include <doctest/doctest.h>

#include <limits>

using namespace cz::vsock;
using cz::vsock::test::fake_guest;

TEST_SUITE("vsock") {

TEST_CASE("guest_memory translates only ranges inside one region") {
    fake_guest g(1 << 20);
    guest_memory mem;
    g.attach(mem);
    const auto base = fake_guest::ram_gpa;
    CHECK(mem.translate(base, 16) == g.host(base));
    CHECK(mem.translate(base + (1 << 20) - 16, 16) != nullptr);
    CHECK(mem.translate(base + (1 << 20) - 16, 17) == nullptr); // crosses the end
    CHECK(mem.translate(base - 1, 2) == nullptr);               // starts before
    CHECK(mem.translate(std::numeric_limits<std::uint64_t>::max() - 4, 16) == nullptr); // wraps
    CHECK(mem.translate(base + 8, std::numeric_limits<std::uint64_t>::max()) == nullptr);
    std::error_code ec;
    CHECK(mem.uva_to_gpa(fake_guest::ram_uva + 64, 8, ec) == base + 64);
    CHECK(!ec);
    mem.uva_to_gpa(fake_guest::ram_uva + (1 << 20), 1, ec);
    CHECK(ec == errc::address_out_of_range);

    // Overlapping, empty and overflowing regions are refused.
    std::vector<std::byte> other(4096);
    mem.add_region({base + 4096, 4096, 0x1000, other.data()}, ec);
    CHECK(ec == errc::protocol_error);
    mem.add_region({0x10000000, 0, 0x1000, other.data()}, ec);
    CHECK(ec == errc::protocol_error);
    mem.add_region({std::numeric_limits<std::uint64_t>::max() - 10, 4096, 0x1000, other.data()}, ec);
    CHECK(ec == errc::protocol_error);
    mem.add_region({0x10000000, 4096, 0x1000, other.data()}, ec);
    CHECK(!ec);
    CHECK(mem.translate(0x10000000 + 100, 200) == other.data() + 100);
    CHECK(mem.translate(0x10000000 + 4000, 200) == nullptr);
}

struct queue_fixture {
    fake_guest g{1 << 20};
    guest_memory mem;
    fake_guest::ring r;
    virtqueue q;
    descriptor_chain chain;
    std::uint64_t buf;
    explicit queue_fixture(std::uint16_t size = 8) {
        g.attach(mem);
        r = g.make_ring(size);
        std::error_code ec;
        q.configure(mem, size, r.desc, r.avail, r.used, ec);
        REQUIRE(!ec);
        buf = g.alloc(8192);
    }
};

TEST_CASE("virtqueue configure validates size, alignment and placement") {
    fake_guest g(1 << 20);
    guest_memory mem;
    g.attach(mem);
    auto r = g.make_ring(8);
    virtqueue q;
    std::error_code ec;
    q.configure(mem, 6, r.desc, r.avail, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 0, r.desc, r.avail, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 2048, r.desc, r.avail, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 8, r.desc + 8, r.avail, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 8, r.desc, r.avail + 1, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 8, r.desc, r.avail, fake_guest::ram_gpa + (1 << 20) - 8, ec);
    CHECK(ec == errc::invalid_ring); // used ring runs past the end of memory
    // Overlapping parts: the device's used-ring writes would move avail.idx under it.
    q.configure(mem, 8, r.desc, r.avail, r.avail, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 8, r.desc, r.desc + 16 * 8 - 2, r.used, ec);
    CHECK(ec == errc::invalid_ring);
    q.configure(mem, 8, r.desc, r.avail, r.desc + 16 * 8 - 4, ec);
    CHECK(ec == errc::invalid_ring);
    CHECK(!q.ready());
    q.configure(mem, 8, r.desc, r.avail, r.used, ec);
    CHECK(!ec);
    CHECK(q.ready());
}

TEST_CASE("virtqueue pops chains and returns them in the used ring") {
    queue_fixture f;
    std::error_code ec;
    CHECK(!f.q.pop(f.chain, ec));
    CHECK(!ec);
    auto h1 = f.g.add_chain(f.r, {{f.buf, 44, false}, {f.buf + 100, 10, false}});
    auto h2 = f.g.add_chain(f.r, {{f.buf + 200, 30, true}, {f.buf + 300, 40, true}});
    REQUIRE(f.q.pop(f.chain, ec));
    CHECK(!ec);
    CHECK(f.chain.head == h1);
    CHECK(f.chain.readable.size() == 2);
    CHECK(f.chain.readable_len == 54);
    CHECK(f.chain.writable.empty());
    f.q.push_used(f.chain.head, 0);
    REQUIRE(f.q.pop(f.chain, ec));
    CHECK(f.chain.head == h2);
    CHECK(f.chain.writable_len == 70);
    // Writes span descriptors.
    std::vector<std::byte> data(50, std::byte{0xab});
    CHECK(f.chain.write(10, data) == 50);
    CHECK(*f.g.host(f.buf + 200 + 10) == std::byte{0xab});
    CHECK(*f.g.host(f.buf + 300 + 29) == std::byte{0xab});
    CHECK(*f.g.host(f.buf + 300 + 30) == std::byte{0});
    f.q.push_used(f.chain.head, 60);
    auto u1 = f.g.pop_used(f.r);
    auto u2 = f.g.pop_used(f.r);
    REQUIRE(u1);
    REQUIRE(u2);
    CHECK(u1->id == h1);
    CHECK(u1->len == 0);
    CHECK(u2->id == h2);
    CHECK(u2->len == 60);
    CHECK(!f.q.pop(f.chain, ec));
}

TEST_CASE("virtqueue rejects hostile chains and keeps working") {
    queue_fixture f;
    std::error_code ec;
    auto expect_bad = [&](errc e) {
        REQUIRE(f.q.pop(f.chain, ec));
        CHECK(ec == e);
        f.q.push_used(f.chain.head, 0);
        CHECK(f.q.ready());
    };
    SUBCASE("address outside memory") {
        f.g.add_chain(f.r, {{0x1000, 16, false}});
        expect_bad(errc::address_out_of_range);
    }
    SUBCASE("length running past the end of memory") {
        f.g.add_chain(f.r, {{fake_guest::ram_gpa + (1 << 20) - 8, 16, false}});
        expect_bad(errc::address_out_of_range);
    }
    SUBCASE("address + length wraps around 2^64") {
        f.g.add_chain(f.r, {{std::numeric_limits<std::uint64_t>::max() - 3, 0xffffffff, false}});
        expect_bad(errc::address_out_of_range);
    }
    SUBCASE("descriptor loop") {
        f.g.write_desc(f.r, 0, f.buf, 16, desc_f_next, 1);
        f.g.write_desc(f.r, 1, f.buf, 16, desc_f_next, 0);
        f.g.publish(f.r, 0);
        expect_bad(errc::descriptor_loop);
    }
    SUBCASE("self loop") {
        f.g.write_desc(f.r, 3, f.buf, 16, desc_f_next, 3);
        f.g.publish(f.r, 3);
        expect_bad(errc::descriptor_loop);
    }
    SUBCASE("next index out of range") {
        f.g.write_desc(f.r, 0, f.buf, 16, desc_f_next, 8);
        f.g.publish(f.r, 0);
        expect_bad(errc::bad_descriptor_index);
    }
    SUBCASE("head index out of range") {
        f.g.publish(f.r, 200);
        expect_bad(errc::bad_descriptor_index);
    }
    SUBCASE("readable after writable") {
        f.g.add_chain(f.r, {{f.buf, 16, true}, {f.buf + 16, 16, false}});
        expect_bad(errc::bad_descriptor_direction);
    }
    SUBCASE("indirect descriptor without the feature") {
        f.g.write_desc(f.r, 0, f.buf, 32, desc_f_indirect, 0);
        f.g.publish(f.r, 0);
        expect_bad(errc::bad_indirect_descriptor);
    }
    // The ring still works after each bad chain.
    auto h = f.g.add_chain(f.r, {{f.buf, 16, false}});
    REQUIRE(f.q.pop(f.chain, ec));
    CHECK(!ec);
    CHECK(f.chain.head == h);
}

TEST_CASE("virtqueue refuses an available index that jumps past the queue size") {
    queue_fixture f;
    f.g.set_avail_idx(f.r, 9); // 9 > queue size 8
    std::error_code ec;
    CHECK(!f.q.pop(f.chain, ec));
    CHECK(ec == errc::avail_index_jump);
    CHECK(f.q.broken());
    CHECK(!f.q.ready());
    // A fresh configuration (what QEMU does after a reset) brings it back.
    f.q.configure(f.mem, 8, f.r.desc, f.r.avail, f.r.used, ec);
    CHECK(!ec);
    f.q.set_next_avail(9);
    CHECK(!f.q.pop(f.chain, ec));
    CHECK(!ec);
}

TEST_CASE("virtqueue follows indirect tables when negotiated") {
    queue_fixture f;
    f.q.set_features(true, false);
    std::uint64_t table = f.g.alloc(64, 16);
    f.g.write_desc_at(table, 0, f.buf, 44, desc_f_next, 1);
    f.g.write_desc_at(table, 1, f.buf + 100, 20, desc_f_next, 2);
    f.g.write_desc_at(table, 2, f.buf + 200, 30, desc_f_write, 0);
    f.g.write_desc(f.r, 5, table, 48, desc_f_indirect, 0);
    f.g.publish(f.r, 5);
    std::error_code ec;
    REQUIRE(f.q.pop(f.chain, ec));
    CHECK(!ec);
    CHECK(f.chain.head == 5);
    CHECK(f.chain.readable_len == 64);
    CHECK(f.chain.writable_len == 30);

    SUBCASE("nested indirect") {
        f.g.write_desc_at(table, 0, table, 48, desc_f_indirect, 0);
        f.g.publish(f.r, 5);
        REQUIRE(f.q.pop(f.chain, ec));
        CHECK(ec == errc::bad_indirect_descriptor);
    }
    SUBCASE("table length not a multiple of 16") {
        f.g.write_desc(f.r, 5, table, 40, desc_f_indirect, 0);
        f.g.publish(f.r, 5);
        REQUIRE(f.q.pop(f.chain, ec));
        CHECK(ec == errc::bad_indirect_descriptor);
    }
    SUBCASE("loop inside the table") {
        f.g.write_desc_at(table, 0, f.buf, 4, desc_f_next, 1);
        f.g.write_desc_at(table, 1, f.buf, 4, desc_f_next, 0);
        f.g.publish(f.r, 5);
        REQUIRE(f.q.pop(f.chain, ec));
        CHECK(ec == errc::descriptor_loop);
    }
    SUBCASE("table outside memory") {
        f.g.write_desc(f.r, 5, 0x10, 48, desc_f_indirect, 0);
        f.g.publish(f.r, 5);
        REQUIRE(f.q.pop(f.chain, ec));
        CHECK(ec == errc::address_out_of_range);
    }
}

TEST_CASE("virtqueue notification suppression") {
    queue_fixture f;
    std::error_code ec;
    SUBCASE("without EVENT_IDX: NO_INTERRUPT is honoured") {
        f.g.add_chain(f.r, {{f.buf, 16, false}});
        REQUIRE(f.q.pop(f.chain, ec));
        f.q.push_used(f.chain.head, 0);
        CHECK(f.q.needs_notification());
        cz::store_le<std::uint16_t>(f.g.host(f.r.avail), avail_f_no_interrupt);
        f.g.add_chain(f.r, {{f.buf, 16, false}});
        REQUIRE(f.q.pop(f.chain, ec));
        f.q.push_used(f.chain.head, 0);
        CHECK(!f.q.needs_notification());
        f.q.disable_notification();
        CHECK(cz::load_le<std::uint16_t>(f.g.host(f.r.used)) == used_f_no_notify);
        CHECK(!f.q.enable_notification());
        CHECK(cz::load_le<std::uint16_t>(f.g.host(f.r.used)) == 0);
    }
    SUBCASE("with EVENT_IDX: used_event decides") {
        f.q.set_features(false, true);
        for (int i = 0; i < 3; ++i) {
            f.g.add_chain(f.r, {{f.buf, 16, false}});
            REQUIRE(f.q.pop(f.chain, ec));
            f.q.push_used(f.chain.head, 0);
        }
        CHECK(f.q.needs_notification()); // first time
        // The driver asks to be told only when used.idx passes 5.
        cz::store_le<std::uint16_t>(f.g.host(f.r.avail) + 4 + 2 * 8, 5);
        f.g.add_chain(f.r, {{f.buf, 16, false}});
        REQUIRE(f.q.pop(f.chain, ec));
        f.q.push_used(f.chain.head, 0); // used idx 4
        CHECK(!f.q.needs_notification());
        for (int i = 0; i < 2; ++i) {
            f.g.add_chain(f.r, {{f.buf, 16, false}});
            REQUIRE(f.q.pop(f.chain, ec));
            f.q.push_used(f.chain.head, 0);
        } // used idx 6 crosses 5
        CHECK(f.q.needs_notification());
        f.g.add_chain(f.r, {{f.buf, 16, false}});
        CHECK(f.q.enable_notification()); // a chain arrived: the caller must keep going
        CHECK(cz::load_le<std::uint16_t>(f.g.host(f.r.used) + 4 + 8 * 8) == f.q.next_avail());
    }
}

}
