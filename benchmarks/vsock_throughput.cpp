// Bulk throughput between host and guest: cz's vsock (vhost-user backend + hybrid Unix socket)
// against QEMU's own virtio-serial (a virtserialport on a Unix socket chardev), in the same VM,
// in the same run. Each transfer is N bytes of a pattern, checked with FNV-64 on the other side.
//
// usage: vsock_throughput [MiB]    (default 128; run through meson, which sets the environment of
//                                   tests/vsock/vm/vm_harness.hpp: `meson test --benchmark`)
#include "../tests/vsock/vm/vm_harness.hpp"

#include <asio/local/stream_protocol.hpp>

#include <cstdio>
#include <iostream>

using namespace cz::vsock;
using namespace cz::vsock::test;

namespace {

template <class Stream>
std::pair<std::uint64_t, std::string> read_sum(Stream& s, std::uint64_t limit) {
    fnv64 f;
    std::uint64_t total = 0;
    std::vector<unsigned char> b(1 << 18);
    std::error_code ec;
    while (total < limit) {
        auto k = s.read_some(asio::buffer(b.data(), std::min<std::uint64_t>(b.size(), limit - total)), ec);
        f.add(b.data(), k);
        total += k;
        if (ec) break;
    }
    return {total, f.hex()};
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 128;
    std::uint64_t n = mib << 20;
    std::string sum = pattern_sum(n);
    test_vm::options opt;
    // QEMU's virtio-serial, the comparison: one port on a Unix socket in the VM's state directory
    // (the guest's virtio_console driver makes it /dev/vport0p1).
    opt.devices.push_back([](cz::vm::device_context& d) -> std::vector<std::string> {
        auto chardev =
            "socket,id=ser0,server=on,wait=off,path=" + (d.state_dir() / "serial.sock").string();
        return {"-device",  "virtio-serial-device",
                "-chardev", chardev,
                "-device",  "virtserialport,chardev=ser0,name=bench"};
    });
    test_vm vm(opt);
    vm.boot();
    asio::io_context io;
    auto h = vm.make_host(io);
    auto cmd = [&](const std::string& c) {
        auto s = h.dial(1234);
        asio::write(s, asio::buffer(c + "\n"));
        return s;
    };
    auto rate = [&](double secs) { return double(mib) / secs; };
    bool ok = true;

    // vsock host -> guest
    auto t0 = std::chrono::steady_clock::now();
    auto s = cmd("sink");
    write_pattern(s, n);
    s.shutdown(asio::socket_base::shutdown_send);
    auto r = read_to_eof(s);
    double vsock_up = since(t0);
    ok &= r == std::to_string(n) + " " + sum + "\n";
    // vsock guest -> host
    t0 = std::chrono::steady_clock::now();
    s = cmd("source " + std::to_string(n));
    auto [got, got_sum] = read_sum(s, ~0ull);
    double vsock_down = since(t0);
    ok &= got == n && got_sum == sum;
    s.close();

    // virtio-serial host -> guest
    asio::local::stream_protocol::socket ser(io);
    ser.connect(asio::local::stream_protocol::endpoint((vm.state_dir() / "serial.sock").string()));
    t0 = std::chrono::steady_clock::now();
    s = cmd("serial-sink auto " + std::to_string(n));
    write_pattern(ser, n);
    r = read_to_eof(s);
    double serial_up = since(t0);
    ok &= r == std::to_string(n) + " " + sum + "\n";
    // virtio-serial guest -> host
    t0 = std::chrono::steady_clock::now();
    s = cmd("serial-source auto " + std::to_string(n));
    auto [sgot, ssum] = read_sum(ser, n);
    double serial_down = since(t0);
    ok &= sgot == n && ssum == sum && read_to_eof(s) == "done\n";

    std::printf("vsock-throughput: %llu MiB each way, %s, guest kernel %s\n",
                static_cast<unsigned long long>(mib), vm.accel_name(),
                cz::vm::test::debian_kernel().version.c_str());
    std::printf("  host->guest  cz vsock %8.1f MiB/s   virtio-serial %8.1f MiB/s   ratio %.2f\n",
                rate(vsock_up), rate(serial_up), serial_up / vsock_up);
    std::printf("  guest->host  cz vsock %8.1f MiB/s   virtio-serial %8.1f MiB/s   ratio %.2f\n",
                rate(vsock_down), rate(serial_down), serial_down / vsock_down);
    std::printf("  checksums %s\n", ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
}
