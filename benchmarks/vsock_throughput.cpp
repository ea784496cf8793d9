// Bulk throughput between host and guest: cz's vsock (vhost-user backend + hybrid Unix socket)
// against QEMU's own virtio-serial (a virtserialport on a Unix socket chardev), in the same VM,
// in the same run. Each transfer is N bytes of a pattern, checked with FNV-64 on the other side.
// The four transfers (vsock and serial, each way) run `rounds` times, alternating, and the
// summary gives the median ratio and the spread: on a shared machine one round says little.
//
// Besides wall time, each transfer reports where the time went, in milliseconds or counts per
// MiB, which a busy machine disturbs much less than it disturbs wall time:
//   vcpu      CPU time of QEMU's vCPU thread (under TCG: the guest's instructions, emulated, and
//             whatever QEMU does on that thread, such as virtio-serial's device work on a kick)
//   wait      time the vCPU thread was runnable but waited for a host CPU (other load)
//   idle      the rest of the wall time: the guest had nothing to do (waiting for the device)
//   qemu      CPU time of QEMU's other threads (its main loop: virtio-serial's device, and the
//             interrupts of both devices)
//   host      CPU time of this process: cz's device thread plus the benchmark's socket client
//   irq       interrupts the guest took on the device's line (its /proc/interrupts)
//   vsock only: kick (guest notifications cz's device read), call (interrupts it raised: call
//   eventfd writes), tx and rx (descriptor chains it handled on each queue), creq and cupd
//   (CREDIT_REQUEST and CREDIT_UPDATE packets it sent)
//
// usage: vsock_throughput [MiB] [rounds]   (default 128 and 3; run through meson, which sets the
//        environment of tests/vsock/vm/vm_harness.hpp: `meson test --benchmark`)
#include "../tests/vsock/vm/vm_harness.hpp"
#include "qemu_cpu.hpp"

#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

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
        auto k = s.read_some(
            asio::buffer(b.data(), std::min<std::uint64_t>(b.size(), limit - total)), ec);
        f.add(b.data(), k);
        total += k;
        if (ec) break;
    }
    return {total, f.hex()};
}

// virtio device ids (virtio 1.2 §5): the two devices measured.
constexpr unsigned virtio_id_console = 3;
constexpr unsigned virtio_id_vsock = 19;

struct counters {
    double wall = 0;
    double qemu_vcpu = 0, vcpu_wait = 0, qemu_rest = 0, host = 0;
    std::uint64_t guest_irq_vsock = 0, guest_irq_serial = 0;
    std::uint64_t kicks = 0, calls = 0, tx = 0, rx = 0, creq = 0, cupd = 0;

    counters operator-(const counters& o) const {
        return {wall - o.wall,
                qemu_vcpu - o.qemu_vcpu,
                vcpu_wait - o.vcpu_wait,
                qemu_rest - o.qemu_rest,
                host - o.host,
                guest_irq_vsock - o.guest_irq_vsock,
                guest_irq_serial - o.guest_irq_serial,
                kicks - o.kicks,
                calls - o.calls,
                tx - o.tx,
                rx - o.rx,
                creq - o.creq,
                cupd - o.cupd};
    }
};

struct result {
    counters c;
    double mib_per_s = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty()      ? 0
           : v.size() % 2 ? v[v.size() / 2]
                          : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 128;
    int rounds = std::max(argc > 2 ? std::atoi(argv[2]) : 3, 1);
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
    cz::bench::qemu_cpu_meter cpu(cz::bench::find_qemu());
    auto& be = vm.device_backend();
    auto snapshot = [&] {
        counters c;
        auto s = cmd("irqs");
        std::istringstream lines(read_to_eof(s));
        unsigned id = 0;
        std::uint64_t count = 0;
        while (lines >> id >> count) {
            if (id == virtio_id_vsock) c.guest_irq_vsock = count;
            if (id == virtio_id_console) c.guest_irq_serial = count;
        }
        auto split = cpu.now();
        c.qemu_vcpu = split.vcpu;
        c.vcpu_wait = split.vcpu_wait;
        c.qemu_rest = split.qemu_rest;
        c.host = split.host;
        auto st = asio::post(be.get_executor(), asio::use_future([&] {
                                 return std::tuple(be.stats(), be.device().stats(),
                                                   be.device().connections().stats());
                             }))
                      .get();
        c.kicks = std::get<0>(st).kicks;
        c.calls = std::get<0>(st).interrupts;
        c.tx = std::get<1>(st).tx_chains;
        c.rx = std::get<1>(st).rx_chains;
        c.creq = std::get<2>(st).credit_requests;
        c.cupd = std::get<2>(st).credit_updates;
        return c;
    };
    auto measure = [&](auto&& transfer) {
        counters before = snapshot();
        auto t0 = std::chrono::steady_clock::now();
        transfer();
        double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        result r;
        r.c = snapshot() - before;
        r.c.wall = wall;
        r.mib_per_s = double(mib) / r.c.wall;
        return r;
    };
    bool ok = true;
    asio::local::stream_protocol::socket ser(io);
    ser.connect(asio::local::stream_protocol::endpoint((vm.state_dir() / "serial.sock").string()));

    std::map<std::string, std::vector<result>> results;
    std::printf("vsock-throughput: %llu MiB each way, %d rounds, %s, guest kernel %s\n",
                static_cast<unsigned long long>(mib), rounds, vm.accel_name(),
                cz::vm::test::debian_kernel().version.c_str());
    std::printf("  %-20s %6s %6s %6s %6s %6s %6s %5s %5s %5s %5s %5s %5s %5s\n",
                "per MiB:", "MiB/s", "vcpu", "wait", "idle", "qemu", "host", "irq", "kick", "call",
                "tx", "rx", "creq", "cupd");
    auto print = [&](const char* name, const result& r, bool vsock) {
        double m = double(mib);
        double idle = r.c.wall - r.c.qemu_vcpu - r.c.vcpu_wait;
        std::printf("  %-20s %6.1f %6.2f %6.2f %6.2f %6.2f %6.2f %5.1f", name, r.mib_per_s,
                    1e3 * r.c.qemu_vcpu / m, 1e3 * r.c.vcpu_wait / m, 1e3 * idle / m,
                    1e3 * r.c.qemu_rest / m, 1e3 * r.c.host / m,
                    double(vsock ? r.c.guest_irq_vsock : r.c.guest_irq_serial) / m);
        if (vsock)
            std::printf(" %5.1f %5.1f %5.1f %5.1f %5.1f %5.1f", double(r.c.kicks) / m,
                        double(r.c.calls) / m, double(r.c.tx) / m, double(r.c.rx) / m,
                        double(r.c.creq) / m, double(r.c.cupd) / m);
        std::printf("\n");
        std::fflush(stdout);
    };
    for (int round = 0; round < rounds; ++round) {
        // vsock host -> guest
        auto r = measure([&] {
            auto s = cmd("sink");
            write_pattern(s, n);
            s.shutdown(asio::socket_base::shutdown_send);
            ok &= read_to_eof(s) == std::to_string(n) + " " + sum + "\n";
        });
        print("host->guest vsock", r, true);
        results["up vsock"].push_back(r);
        // vsock guest -> host
        r = measure([&] {
            auto s = cmd("source " + std::to_string(n));
            auto [got, got_sum] = read_sum(s, ~0ull);
            ok &= got == n && got_sum == sum;
        });
        print("guest->host vsock", r, true);
        results["down vsock"].push_back(r);
        // virtio-serial host -> guest
        r = measure([&] {
            auto s = cmd("serial-sink auto " + std::to_string(n));
            write_pattern(ser, n);
            ok &= read_to_eof(s) == std::to_string(n) + " " + sum + "\n";
        });
        print("host->guest serial", r, false);
        results["up serial"].push_back(r);
        // virtio-serial guest -> host
        r = measure([&] {
            auto s = cmd("serial-source auto " + std::to_string(n));
            auto [sgot, ssum] = read_sum(ser, n);
            ok &= sgot == n && ssum == sum && read_to_eof(s) == "done\n";
        });
        print("guest->host serial", r, false);
        results["down serial"].push_back(r);
    }

    // Ratio serial time / vsock time (> 1: cz's vsock is faster), per round.
    for (const char* dir : {"up", "down"}) {
        auto& v = results[std::string(dir) + " vsock"];
        auto& s = results[std::string(dir) + " serial"];
        std::vector<double> ratios, vrate, srate;
        for (std::size_t i = 0; i < v.size(); ++i) {
            ratios.push_back(s[i].c.wall / v[i].c.wall);
            vrate.push_back(v[i].mib_per_s);
            srate.push_back(s[i].mib_per_s);
        }
        auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
        std::printf("  %s  cz vsock %8.1f MiB/s   virtio-serial %8.1f MiB/s   ratio %.2f "
                    "(rounds %.2f-%.2f)\n",
                    std::string(dir) == "up" ? "host->guest" : "guest->host", median(vrate),
                    median(srate), median(ratios), *lo, *hi);
    }
    std::printf("  checksums %s\n", ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
}
