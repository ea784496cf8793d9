// The whole host side without QEMU: a miniature vhost-user frontend and guest driver (this
// test, on shared memfd memory, with real eventfds) against a backend on its own io_context
// thread, with host programs using cz::vsock::host over the hybrid Unix sockets.
#include <cz/vsock/backend.hpp>
#include <cz/vsock/host.hpp>

#include "fake_frontend.hpp"
#include "fake_guest.hpp"

#include <doctest/doctest.h>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <chrono>
#include <future>
#include <thread>

using namespace cz::vsock;
namespace t = cz::vsock::test;
using namespace std::chrono_literals;

namespace {

int count_fds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (::readdir(d)) ++n;
    ::closedir(d);
    return n;
}

struct env {
    static constexpr std::size_t ram = 4 << 20;
    std::filesystem::path dir;
    asio::io_context io;
    std::unique_ptr<backend> be;
    std::thread thread;
    int front = -1;
    cz::unique_fd mfd;
    std::byte* mem = nullptr;
    std::unique_ptr<t::fake_guest> g;
    t::fake_guest::ring rx, tx;
    cz::unique_fd kick[2], call[2];
    std::vector<std::uint64_t> rx_bufs;
    std::unordered_map<std::uint32_t, std::uint64_t> rx_slot;
    std::uint64_t tx_area = 0;
    unsigned tx_next = 0;

    env() {
        char tmpl[] = "/tmp/cz-vsock-test.XXXXXX";
        dir = ::mkdtemp(tmpl);
        backend_config cfg;
        cfg.vhost_user_socket = dir / "vhost-user.sock";
        cfg.uds_path = dir / "vsock.sock";
        be = std::make_unique<backend>(io, cfg);
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        front = sv[0];
        std::error_code ec;
        be->serve(cz::unique_fd(sv[1]), ec);
        REQUIRE(!ec);
        thread = std::thread([this] { io.run(); });

        mfd.reset(::memfd_create("guest", MFD_CLOEXEC));
        REQUIRE(::ftruncate(mfd.get(), ram) == 0);
        void* p = ::mmap(nullptr, ram, PROT_READ | PROT_WRITE, MAP_SHARED, mfd.get(), 0);
        REQUIRE(p != MAP_FAILED);
        mem = static_cast<std::byte*>(p);
        g = std::make_unique<t::fake_guest>(mem, ram);
        rx = g->make_ring(128);
        tx = g->make_ring(128);
        for (int i = 0; i < 128; ++i) rx_bufs.push_back(g->alloc(4096));
        tx_area = g->alloc(16 * 4096);
        handshake();
        for (auto b : rx_bufs) rx_slot[g->add_chain(rx, {{b, 4096, true}})] = b;
        kick_ring(0);
    }
    ~env() {
        if (front >= 0) ::close(front);
        asio::post(io, [this] { be->stop(); });
        io.run_for(0ms);
        std::this_thread::sleep_for(20ms);
        io.stop();
        thread.join();
        be.reset();
        ::munmap(mem, ram);
        std::filesystem::remove_all(dir);
    }
    cz::byte_buffer rpc(vhost_user::request r, cz::bytes_view p = {}, std::vector<int> fds = {}) {
        t::send_message(front, r, p, fds);
        return {};
    }
    std::uint64_t uva(std::uint64_t gpa) { return gpa - t::fake_guest::ram_gpa + t::fake_guest::ram_uva; }
    void handshake() {
        using vhost_user::request;
        t::send_message(front, request::get_features, {});
        REQUIRE(t::read_reply(front).size() == 20);
        t::send_message(front, request::get_protocol_features, {});
        REQUIRE(t::read_reply(front).size() == 20);
        t::send_message(front, request::set_protocol_features, t::u64_payload(vhost_user::protocol_f_config));
        t::send_message(front, request::set_owner, {});
        t::send_message(front, request::set_features, t::u64_payload(vhost_user::f_version_1 | vhost_user::f_protocol_features | vhost_user::f_event_idx));
        t::send_message(front, request::set_mem_table,
                        t::mem_table_payload(t::fake_guest::ram_gpa, ram, t::fake_guest::ram_uva, 0),
                        {mfd.get()});
        for (std::uint32_t i = 0; i < 2; ++i) {
            auto& r = i == 0 ? rx : tx;
            kick[i].reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
            call[i].reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
            t::send_message(front, request::set_vring_num, t::state_payload(i, 128));
            t::send_message(front, request::set_vring_base, t::state_payload(i, 0));
            t::send_message(front, request::set_vring_addr, t::addr_payload(i, uva(r.desc), uva(r.used), uva(r.avail)));
            t::send_message(front, request::set_vring_kick, t::u64_payload(i), {kick[i].get()});
            t::send_message(front, request::set_vring_call, t::u64_payload(i), {call[i].get()});
            t::send_message(front, request::set_vring_enable, t::state_payload(i, 1));
        }
        // GET_VRING_BASE-free sync point: a GET_FEATURES round trip means all were handled.
        t::send_message(front, request::get_features, {});
        REQUIRE(t::read_reply(front).size() == 20);
    }
    void kick_ring(int i) {
        std::uint64_t one = 1;
        REQUIRE(::write(kick[i].get(), &one, 8) == 8);
    }
    void send(const packet_header& h, cz::bytes_view payload = {}) {
        std::uint64_t slot = tx_area + (tx_next++ % 16) * 4096;
        g->put(slot, h.bytes());
        g->put(slot + 44, payload);
        g->add_chain(tx, {{slot, static_cast<std::uint32_t>(44 + payload.size()), false}});
        kick_ring(1);
        while (g->pop_used(tx)) {
        }
    }
    packet_header hdr(op o, std::uint32_t src, std::uint32_t dst) {
        packet_header h;
        h.src_cid(3).dst_cid(2).src_port(src).dst_port(dst).type(type_stream).op(o).buf_alloc(1 << 20);
        return h;
    }
    struct packet {
        packet_header h;
        cz::byte_buffer payload;
    };
    // Waits for the next RX packet (up to 5 s), reposting its buffer.
    std::optional<packet> recv(std::chrono::milliseconds timeout = 5000ms) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (auto u = g->pop_used(rx)) {
                auto b = rx_slot.at(u->id);
                packet p;
                p.h = packet_header::from_bytes({g->host(b), 44});
                p.payload.assign(g->host(b) + 44, g->host(b) + u->len);
                rx_slot[g->add_chain(rx, {{b, 4096, true}})] = b;
                kick_ring(0);
                return p;
            }
            std::this_thread::sleep_for(1ms);
        }
        return std::nullopt;
    }
};

std::string read_some(generic_socket& s) {
    std::array<char, 4096> buf;
    std::error_code ec;
    auto n = s.read_some(asio::buffer(buf), ec);
    if (ec) return "<" + ec.message() + ">";
    return {buf.data(), n};
}

} // namespace

TEST_SUITE("vsock") {

TEST_CASE("backend: host dials the guest over hybrid vsock, data and half-close both ways") {
    env e;
    asio::io_context client_io;
    host h(client_io, hybrid_transport{e.dir / "vsock.sock"});
    auto dialed = std::async(std::launch::async, [&] { return h.dial(1024); });
    auto req = e.recv();
    REQUIRE(req);
    CHECK(req->h.op() == op::request);
    CHECK(req->h.dst_port() == 1024);
    auto local = req->h.src_port();
    e.send(e.hdr(op::response, 1024, local));
    auto sock = dialed.get();
    asio::write(sock, asio::buffer(std::string("hello")));
    auto p = e.recv();
    REQUIRE(p);
    CHECK(p->h.op() == op::rw);
    CHECK(cz::as_chars(p->payload) == "hello");
    e.send(e.hdr(op::rw, 1024, local).len(5), cz::as_bytes("world"));
    CHECK(read_some(sock) == "world");
    // Guest SHUTDOWN(SEND) -> EOF on the host socket, which can still write.
    e.send(e.hdr(op::shutdown, 1024, local).flags(shutdown_send));
    CHECK(read_some(sock) == "<" + asio::error::make_error_code(asio::error::eof).message() + ">");
    asio::write(sock, asio::buffer(std::string("more")));
    p = e.recv();
    REQUIRE(p);
    CHECK(cz::as_chars(p->payload) == "more");
    // Host shutdown(SHUT_WR) -> SHUTDOWN(SEND) to the guest.
    sock.shutdown(asio::socket_base::shutdown_send);
    p = e.recv();
    REQUIRE(p);
    CHECK(p->h.op() == op::shutdown);
    CHECK(p->h.flags() == shutdown_send);
    // Guest closes: SHUTDOWN(both) -> RST back.
    e.send(e.hdr(op::shutdown, 1024, local).flags(shutdown_send | shutdown_rcv));
    p = e.recv();
    REQUIRE(p);
    CHECK(p->h.op() == op::rst);
}

TEST_CASE("backend: a refused host dial is a clean error") {
    env e;
    asio::io_context client_io;
    host h(client_io, hybrid_transport{e.dir / "vsock.sock"});
    auto dialed = std::async(std::launch::async, [&] {
        std::error_code ec;
        h.dial(7, ec);
        return ec;
    });
    auto req = e.recv();
    REQUIRE(req);
    e.send(e.hdr(op::rst, 7, req->h.src_port()));
    CHECK(dialed.get() == errc::connection_refused);
}

TEST_CASE("backend: the guest dials a host listener, and a port nobody listens on") {
    env e;
    asio::io_context client_io;
    host h(client_io, hybrid_transport{e.dir / "vsock.sock"});
    auto acc = h.listen(52);
    CHECK(std::filesystem::exists(e.dir / "vsock.sock_52"));
    e.send(e.hdr(op::request, 40000, 52));
    auto p = e.recv();
    REQUIRE(p);
    CHECK(p->h.op() == op::response);
    generic_socket s(client_io);
    acc.accept(s);
    e.send(e.hdr(op::rw, 40000, 52).len(4), cz::as_bytes("ping"));
    CHECK(read_some(s) == "ping");
    asio::write(s, asio::buffer(std::string("pong")));
    p = e.recv();
    REQUIRE(p);
    CHECK(cz::as_chars(p->payload) == "pong");

    e.send(e.hdr(op::request, 40001, 53)); // no listener on 53
    p = e.recv();
    REQUIRE(p);
    CHECK(p->h.op() == op::rst);
    CHECK(p->h.dst_port() == 40001);
}

TEST_CASE("backend: the frontend going away resets host streams and leaks no fds") {
    int before = count_fds();
    {
        env e;
        asio::io_context client_io;
        host h(client_io, hybrid_transport{e.dir / "vsock.sock"});
        auto dialed = std::async(std::launch::async, [&] { return h.dial(1024); });
        auto req = e.recv();
        REQUIRE(req);
        e.send(e.hdr(op::response, 1024, req->h.src_port()));
        auto sock = dialed.get();
        ::close(e.front); // QEMU killed
        e.front = -1;
        auto r = read_some(sock);
        CHECK(r.front() == '<'); // EOF or reset, not a hang
        // (Read from this thread while the backend's thread works: poll until it settles.)
        for (int i = 0; i < 200 && (e.be->frontend_connected() || e.be->host_streams() != 0); ++i)
            std::this_thread::sleep_for(5ms);
        CHECK(!e.be->frontend_connected());
        CHECK(e.be->host_streams() == 0);
    }
    CHECK(count_fds() == before);
}

}
