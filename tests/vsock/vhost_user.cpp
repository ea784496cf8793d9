#include <cz/vsock/vhost_user.hpp>

#include "fake_frontend.hpp"
#include "fake_guest.hpp"

#include <doctest/doctest.h>

#include <sys/eventfd.h>
#include <sys/mman.h>

using namespace cz::vsock;
using namespace cz::vsock::vhost_user;
namespace t = cz::vsock::test;

namespace {

struct session_fixture {
    device dev;
    session s{dev};
    std::vector<cz::unique_fd> fds;
    std::error_code ec;

    cz::byte_buffer call(request r, cz::bytes_view payload = {}, std::uint32_t flags = 1) {
        message_header h(r, flags, static_cast<std::uint32_t>(payload.size()));
        return s.handle(h, payload, fds, ec);
    }
};

std::uint64_t reply_u64(const cz::byte_buffer& b) {
    REQUIRE(b.size() == 20);
    return cz::load_le<std::uint64_t>(b.data() + 12);
}

} // namespace

TEST_SUITE("vsock") {

TEST_CASE("vhost-user header parsing") {
    std::error_code ec;
    message_header ok(request::get_features, 1, 0);
    message_header::parse(ok.bytes(), ec);
    CHECK(!ec);
    message_header v2(request::get_features, 2, 0);
    message_header::parse(v2.bytes(), ec);
    CHECK(ec == errc::malformed_message);
    message_header big(request::set_mem_table, 1, max_payload + 1);
    message_header::parse(big.bytes(), ec);
    CHECK(ec == errc::malformed_message);
}

TEST_CASE("vhost-user session: capabilities and GET_CONFIG as QEMU 7.2 asks") {
    session_fixture f;
    auto r = f.call(request::get_features);
    CHECK(!f.ec);
    CHECK(reply_u64(r) == offered_features);
    // Replies carry flags exactly 0x5 and the request id.
    CHECK(cz::load_le<std::uint32_t>(r.data()) == 1);
    CHECK(cz::load_le<std::uint32_t>(r.data() + 4) == 0x5);
    CHECK(reply_u64(f.call(request::get_protocol_features)) == protocol_f_config);
    f.call(request::set_protocol_features, t::u64_payload(protocol_f_config));
    CHECK(!f.ec);
    f.call(request::set_owner);
    CHECK(!f.ec);
    cz::byte_buffer cfg(12 + 8);
    cz::store_le<std::uint32_t>(cfg.data(), 0);
    cz::store_le<std::uint32_t>(cfg.data() + 4, 8);
    r = f.call(request::get_config, cfg);
    CHECK(!f.ec);
    REQUIRE(r.size() == 12 + 12 + 8);
    CHECK(cz::load_le<std::uint32_t>(r.data() + 8) == 20); // hdr.size == 12 + 8, QEMU checks it
    CHECK(cz::load_le<std::uint64_t>(r.data() + 24) == 3);  // guest_cid
    // Errors: unoffered feature bits, unknown requests, stray fds, bad sizes.
    f.call(request::set_features, t::u64_payload(1ull << 34));
    CHECK(f.ec == errc::protocol_error);
    f.call(static_cast<request>(99));
    CHECK(f.ec == errc::unsupported_message);
    cz::byte_buffer four(4);
    f.call(request::set_features, four);
    CHECK(f.ec == errc::malformed_message);
    f.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
    f.call(request::set_owner);
    CHECK(f.ec == errc::malformed_message);
    f.fds.clear();
    f.call(request::set_vring_num, t::state_payload(2, 128));
    CHECK(f.ec == errc::malformed_message); // only rings 0 and 1 exist
    f.call(request::set_vring_num, t::state_payload(0, 100));
    CHECK(f.ec == errc::invalid_ring);
    cz::byte_buffer cfg_big(12 + 300);
    cz::store_le<std::uint32_t>(cfg_big.data() + 4, 300);
    f.call(request::get_config, cfg_big);
    CHECK(f.ec == errc::malformed_message);
}

TEST_CASE("vhost-user session: memory table, rings, stop and restart") {
    session_fixture f;
    constexpr std::size_t ram = 2 << 20;
    cz::unique_fd mfd(::memfd_create("guest", MFD_CLOEXEC));
    REQUIRE(mfd);
    REQUIRE(::ftruncate(mfd.get(), ram) == 0);
    void* p = ::mmap(nullptr, ram, PROT_READ | PROT_WRITE, MAP_SHARED, mfd.get(), 0);
    REQUIRE(p != MAP_FAILED);
    t::fake_guest g(static_cast<std::byte*>(p), ram);
    auto rx = g.make_ring(128);
    auto tx = g.make_ring(128);
    auto uva = [&](std::uint64_t gpa) { return gpa - t::fake_guest::ram_gpa + t::fake_guest::ram_uva; };

    f.call(request::get_features);
    f.call(request::set_features, t::u64_payload(offered_features));
    REQUIRE(!f.ec);
    f.fds.emplace_back(::dup(mfd.get()));
    f.call(request::set_mem_table,
           t::mem_table_payload(t::fake_guest::ram_gpa, ram, t::fake_guest::ram_uva, 0));
    REQUIRE(!f.ec);
    CHECK(f.fds.empty());
    CHECK(f.dev.memory().translate(t::fake_guest::ram_gpa, ram) != nullptr);

    for (std::uint32_t i = 0; i < 2; ++i) {
        auto& r = i == 0 ? rx : tx;
        f.call(request::set_vring_num, t::state_payload(i, 128));
        f.call(request::set_vring_base, t::state_payload(i, 0));
        f.call(request::set_vring_addr, t::addr_payload(i, uva(r.desc), uva(r.used), uva(r.avail)));
        REQUIRE(!f.ec);
        f.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
        f.call(request::set_vring_kick, t::u64_payload(i));
        REQUIRE(!f.ec);
        CHECK(!f.s.running(i)); // PROTOCOL_FEATURES acked: waits for SET_VRING_ENABLE
        f.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
        f.call(request::set_vring_call, t::u64_payload(i));
        f.call(request::set_vring_enable, t::state_payload(i, 1));
        REQUIRE(!f.ec);
        CHECK(f.s.running(i));
        CHECK(f.s.kick_fd(i) >= 0);
    }
    CHECK(f.dev.rx_queue().ready());
    CHECK(f.dev.tx_queue().ready());
    // A guest connection exists when the driver is reset: it is closed.
    t::fake_guest& gg = g;
    (void)gg;
    std::error_code ec;
    f.dev.connections().connect(1024, ec);
    f.dev.process_rx();
    // GET_VRING_BASE stops the ring and reports where it stopped.
    auto r = f.call(request::get_vring_base, t::state_payload(0, 0));
    REQUIRE(r.size() == 20);
    CHECK(cz::load_le<std::uint32_t>(r.data() + 16) == 0); // no RX buffers were posted
    CHECK(!f.s.running(0));
    CHECK(!f.dev.rx_queue().ready());
    device_event ev;
    REQUIRE(f.dev.connections().poll_event(ev));
    CHECK(ev.kind == event_kind::closed);
    CHECK(ev.ec == errc::connection_reset);

    // Regression (guest reboot under QEMU 7.2): SET_VRING_ENABLE 0 on a running ring is a driver
    // reset too, and must reset connections even though GET_VRING_BASE follows.
    f.call(request::set_vring_addr, t::addr_payload(0, uva(rx.desc), uva(rx.used), uva(rx.avail)));
    f.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
    f.call(request::set_vring_kick, t::u64_payload(0));
    REQUIRE(!f.ec);
    CHECK(f.s.running(0));
    f.dev.connections().connect(1025, ec);
    f.call(request::set_vring_enable, t::state_payload(0, 0));
    CHECK(!f.s.running(0));
    REQUIRE(f.dev.connections().poll_event(ev));
    CHECK(ev.kind == event_kind::closed);
    CHECK(f.dev.connections().connection_count() == 0);
    f.call(request::set_vring_enable, t::state_payload(0, 1));
    CHECK(f.s.running(0));

    // A ring address outside the memory table fails.
    f.call(request::set_vring_addr, t::addr_payload(0, 0x1000, 0x2000, 0x3000));
    CHECK(!f.ec); // recorded; checked when the ring starts
    f.fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
    f.call(request::set_vring_kick, t::u64_payload(0));
    CHECK(f.ec == errc::invalid_ring);
    // Kick without fd but the no-fd bit clear: malformed.
    f.call(request::set_vring_kick, t::u64_payload(0));
    CHECK(f.ec == errc::malformed_message);
    // A memory table with fewer fds than regions.
    f.call(request::set_mem_table,
           t::mem_table_payload(t::fake_guest::ram_gpa, ram, t::fake_guest::ram_uva, 0));
    CHECK(f.ec == errc::malformed_message);
    f.s.disconnect();
    CHECK(f.dev.memory().empty());
    ::munmap(p, ram);
}

}
