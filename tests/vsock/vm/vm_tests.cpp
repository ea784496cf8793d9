// VM suite: a real guest kernel (Debian's cloud kernel, virtio_mmio + vmw_vsock_virtio_transport
// modules) under QEMU microvm (KVM when usable, else TCG) talks to cz's vhost-user vsock backend.
// One VM is shared by the test cases that leave it intact; the last cases reboot it and kill it.
#include "vm_harness.hpp"

#include "support/support.hpp"

#include <dirent.h>
#include <poll.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <iostream>

using namespace cz::vsock;
using namespace cz::vsock::test;
using namespace std::chrono_literals;

namespace {

test_vm& shared_vm() {
    static test_vm vm;
    static bool booted = false;
    if (!booted) {
        auto t0 = std::chrono::steady_clock::now();
        vm.boot();
        booted = true;
        std::cerr << "vm: booted in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                  << " s (" << vm.accel_name() << ")\n";
    }
    return vm;
}

generic_socket command(host& h, const std::string& cmd) {
    auto s = h.dial(1234);
    asio::write(s, asio::buffer(cmd + "\n"));
    return s;
}

int count_fds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (::readdir(d)) ++n;
    ::closedir(d);
    return n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_SUITE("vsock-vm") {

TEST_CASE("vm: host dials the guest listener") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    asio::io_context io;
    auto h = vm.make_host(io);
    auto s = command(h, "echo");
    std::string msg(100000, 'a');
    for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>('a' + i % 26);
    auto writer = std::async(std::launch::async, [&] {
        asio::write(s, asio::buffer(msg));
        s.shutdown(asio::socket_base::shutdown_send);
    });
    std::string back = read_to_eof(s);
    writer.get();
    CHECK(back == msg);
    // A port nobody listens on in the guest: refused, cleanly.
    std::error_code ec;
    h.dial(4321, ec);
    CHECK(ec == errc::connection_refused);
}

TEST_CASE("vm: the guest dials a host listener") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    asio::io_context io;
    auto h = vm.make_host(io);
    auto acc = h.listen(5000);
    auto server = std::async(std::launch::async, [&] {
        generic_socket c(io);
        acc.accept(c);
        fnv64 f;
        std::uint64_t total = 0;
        std::array<unsigned char, 65536> buf;
        std::error_code ec;
        for (;;) {
            auto n = c.read_some(asio::buffer(buf), ec);
            f.add(buf.data(), n);
            total += n;
            if (ec) break;
        }
        // The guest half-closed (EOF here) but still reads our answer.
        asio::write(c, asio::buffer(std::to_string(total) + " " + f.hex()));
    });
    auto s = command(h, "dial 5000 300000");
    std::string answer = read_to_eof(s);
    server.get();
    CHECK(answer == "300000 " + pattern_sum(300000));
    // Nobody listening on the host port: the guest's connect fails.
    s = command(h, "dial 5999 10");
    CHECK(read_to_eof(s).rfind("error", 0) == 0);
}

TEST_CASE("vm: 64 concurrent connections each way") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    asio::io_context io;
    auto h = vm.make_host(io);
    // Host -> guest: 64 echo streams at once.
    std::vector<std::future<bool>> results;
    for (int i = 0; i < 64; ++i) {
        results.push_back(std::async(std::launch::async, [&, i] {
            asio::io_context cio;
            auto ch = vm.make_host(cio);
            auto s = command(ch, "echo");
            std::string msg = "stream " + std::to_string(i) + std::string(20000 + 97 * i, char('A' + i % 26));
            auto w = std::async(std::launch::async, [&] {
                asio::write(s, asio::buffer(msg));
                s.shutdown(asio::socket_base::shutdown_send);
            });
            auto back = read_to_eof(s);
            w.get();
            return back == msg;
        }));
    }
    int ok = 0;
    for (auto& r : results) ok += r.get() ? 1 : 0;
    CHECK(ok == 64);

    // Guest -> host: 64 concurrent dials to one host listener.
    auto acc = h.listen(5001);
    std::atomic<bool> done{false};
    std::vector<std::thread> handlers;
    auto server = std::thread([&] {
        for (int i = 0; i < 64; ++i) {
            auto c = std::make_shared<generic_socket>(io);
            std::error_code ec;
            acc.accept(*c, ec);
            if (ec) break;
            handlers.emplace_back([c] {
                std::string line;
                char ch;
                std::error_code e;
                while (c->read_some(asio::buffer(&ch, 1), e) == 1 && ch != '\n') line.push_back(ch);
                asio::write(*c, asio::buffer(line + "\n"), e);
                std::array<char, 16> sink;
                c->read_some(asio::buffer(sink), e); // until the guest closes
            });
        }
        done = true;
    });
    auto s = command(h, "dialmany 5001 64");
    auto answer = read_to_eof(s);
    server.join();
    for (auto& t : handlers) t.join();
    CHECK(answer == "ok 64\n");
}

TEST_CASE("vm: 256 MiB each way with a checksum, half-close seen on both sides") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    asio::io_context io;
    auto h = vm.make_host(io);
    // 256 MiB unless CZ_VSOCK_VM_BULK_MIB says otherwise (for quick local runs).
    const char* mib = std::getenv("CZ_VSOCK_VM_BULK_MIB");
    const std::uint64_t n = (mib ? std::strtoull(mib, nullptr, 10) : 256ull) << 20;
    const std::string sum = pattern_sum(n);

    // Host -> guest: the guest replies only after it saw our shutdown(SHUT_WR) as EOF.
    auto t0 = std::chrono::steady_clock::now();
    auto s = command(h, "sink");
    write_pattern(s, n);
    s.shutdown(asio::socket_base::shutdown_send);
    auto reply = read_to_eof(s);
    double up = seconds_since(t0);
    CHECK(reply == std::to_string(n) + " " + sum + "\n");

    // Guest -> host: the guest half-closes after N bytes (EOF here) and waits for our close.
    t0 = std::chrono::steady_clock::now();
    auto r = command(h, "source " + std::to_string(n));
    fnv64 f;
    std::uint64_t total = 0;
    std::vector<unsigned char> buf(1 << 18);
    std::error_code ec;
    for (;;) {
        auto k = r.read_some(asio::buffer(buf), ec);
        f.add(buf.data(), k);
        total += k;
        if (ec) break;
    }
    double down = seconds_since(t0);
    CHECK(ec == asio::error::eof);
    CHECK(total == n);
    CHECK(f.hex() == sum);
    // Our side is still open for writing after the guest's half-close.
    asio::write(r, asio::buffer(std::string("bye")), ec);
    CHECK(!ec);
    std::cerr << "vm: " << (n >> 20) << " MiB host->guest " << (n / 1048576.0) / up << " MiB/s, guest->host "
              << (n / 1048576.0) / down << " MiB/s\n";
}

TEST_CASE("vm: guest reboot gives clean errors on the host, then the guest serves again") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    asio::io_context io;
    auto h = vm.make_host(io);
    auto open = command(h, "echo");
    asio::write(open, asio::buffer(std::string("x")));
    char c;
    asio::read(open, asio::buffer(&c, 1));
    auto r = command(h, "reboot");
    auto t0 = std::chrono::steady_clock::now();
    std::error_code ec;
    std::array<char, 16> buf;
    pollfd pfd{open.native_handle(), POLLIN, 0};
    REQUIRE_MESSAGE(::poll(&pfd, 1, 30000) == 1,
                    "no reset after reboot; backend: frontends=", vm.device_backend().stats().frontends,
                    " messages=", vm.device_backend().stats().messages,
                    " connected=", vm.device_backend().frontend_connected(),
                    " last error=", vm.device_backend().stats().last_frontend_error.message(),
                    vm.log());
    open.read_some(asio::buffer(buf), ec); // the reset: EOF or ECONNRESET, not a hang
    CHECK(ec);
    CHECK(seconds_since(t0) < 30);
    vm.wait_ready();
    auto s = command(h, "echo");
    asio::write(s, asio::buffer(std::string("again")));
    s.shutdown(asio::socket_base::shutdown_send);
    CHECK(read_to_eof(s) == "again");
}

TEST_CASE("vm: QEMU killed mid-transfer: clean errors on the host, no leaked fds") {
    if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
    auto& vm = shared_vm();
    // Kill QEMU under a running transfer; returns once the backend has let go of the frontend.
    auto kill_mid_transfer = [&] {
        asio::io_context io;
        auto h = vm.make_host(io);
        auto s = command(h, "sink");
        auto writer = std::async(std::launch::async, [&] {
            std::error_code ec;
            std::vector<char> b(1 << 16, 'z');
            while (!ec) asio::write(s, asio::buffer(b), ec);
            return ec;
        });
        std::this_thread::sleep_for(500ms);
        vm.kill();
        auto t0 = std::chrono::steady_clock::now();
        REQUIRE(writer.wait_for(30s) == std::future_status::ready);
        auto ec = writer.get();
        CHECK((ec == asio::error::broken_pipe || ec == asio::error::connection_reset));
        CHECK(seconds_since(t0) < 30);
        for (int i = 0; i < 200 && vm.device_backend().frontend_connected(); ++i)
            std::this_thread::sleep_for(10ms);
        CHECK(!vm.device_backend().frontend_connected());
        // New host connections fail cleanly while no VM runs.
        std::error_code dec;
        h.handshake_timeout = 5000ms;
        h.dial(1234, dec);
        CHECK(dec);
        for (int i = 0; i < 200 && vm.device_backend().host_streams() != 0; ++i)
            std::this_thread::sleep_for(10ms);
        CHECK(vm.device_backend().host_streams() == 0);
    };
    kill_mid_transfer();
    int after_first = count_fds();
    // The same backend serves a new QEMU (same socket paths), and a second kill leaves exactly
    // the fds the first one left: nothing per frontend, connection or ring leaks.
    vm.boot();
    kill_mid_transfer();
    CHECK(count_fds() == after_first);
}
}
