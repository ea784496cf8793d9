// vm_boot — how long a cz VM takes to boot: the floor every later `cz run` is compared to.
//
// Boots each cached kernel (Debian's cloud kernel; the minimal one when built, with microvm's ACPI
// tables and without them) N times (default 10) with the test initramfs (busybox +
// tests/vm/guest-init.sh in "hello" mode) and reports the median and min/max of each phase:
//
//   qemu    start() called -> QMP handshake done (fork, exec, QEMU's own start-up)
//   kernel  QMP up -> the first marker from the guest's /init ("CZ-BOOTED": firmware, kernel,
//           initramfs unpacking)
//   init    first marker -> "CZ-HELLO" (the init loads its modules and runs a command)
//   exit    "CZ-HELLO" -> QEMU reaped (ACPI power-off; a reboot without ACPI)
//   boot    start() -> first marker: the headline figure
//
// usage: vm_boot [RUNS] [ROOT]   (ROOT: where kernels/ is; default $CZ_ROOT or the cz root)
#include <cz/vm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>

#ifndef CZ_SOURCE_DIR
#define CZ_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;
using namespace cz::vm;
using clock_type = std::chrono::steady_clock;

namespace {

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct sample {
    double qemu, kernel, init, exit, boot;
};

sample boot_once(const kernel_info& k, bool acpi, const fs::path& initrd, const fs::path& root) {
    config cfg;
    qemu_options qemu;
    qemu.acpi = acpi;
    cfg.kernel = k.image;
    cfg.initrd = initrd;
    cfg.append = "cz.test=hello";
    cfg.root = root;
    clock_type::time_point booted{}, hello{};
    std::string seen;
    cfg.on_console = [&](std::string_view chunk) {
        seen += chunk;
        auto now = clock_type::now();
        if (booted == clock_type::time_point{} && seen.find("CZ-BOOTED") != std::string::npos) booted = now;
        if (hello == clock_type::time_point{} && seen.find("CZ-HELLO") != std::string::npos) hello = now;
    };
    asio::io_context ctx;
    qemu_vm vm(ctx, std::move(cfg), std::move(qemu));
    vm.start();
    std::error_code ec;
    auto st = vm.wait_for(std::chrono::seconds(120), ec);
    if (ec || !st.clean() || hello == clock_type::time_point{})
        throw std::runtime_error("boot failed: " + st.describe() + "\n" + vm.console());
    const auto& t = vm.timings();
    return {ms(t.qmp_ready - t.start), ms(booted - t.qmp_ready), ms(hello - booted),
            ms(t.exited - hello), ms(booted - t.start)};
}

void report(const std::string& name, std::vector<sample> s) {
    auto stat = [&](double sample::*field) {
        std::vector<double> v;
        for (auto& x : s) v.push_back(x.*field);
        std::sort(v.begin(), v.end());
        double median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
        return fmt::format("{:8.1f} {:8.1f} {:8.1f}", median, v.front(), v.back());
    };
    fmt::print("{} ({} boots)\n", name, s.size());
    fmt::print("  {:<8} {:>8} {:>8} {:>8}   (ms)\n", "phase", "median", "min", "max");
    fmt::print("  {:<8} {}\n", "qemu", stat(&sample::qemu));
    fmt::print("  {:<8} {}\n", "kernel", stat(&sample::kernel));
    fmt::print("  {:<8} {}\n", "init", stat(&sample::init));
    fmt::print("  {:<8} {}\n", "exit", stat(&sample::exit));
    fmt::print("  {:<8} {}\n", "boot", stat(&sample::boot));
}

} // namespace

int main(int argc, char** argv) try {
    int runs = argc > 1 ? std::atoi(argv[1]) : 10;
    fs::path root = argc > 2 ? fs::path(argv[2]) : default_root();
    auto accel = resolve_accel(accel_mode::automatic);
    fmt::print("vm_boot: {} runs per kernel, accel {}, host TSC {} kHz\n{}\n", runs,
               accel == accel_mode::kvm ? "kvm" : "tcg (multi-threaded)", host_tsc_khz(),
               probe_accel().describe());
    struct variant {
        kernel_flavor flavor;
        bool acpi;
    };
    int booted = 0;
    // Debian's kernel finds virtio-mmio devices only through ACPI; the minimal one also from the
    // command line, which QEMU fills in when ACPI is off.
    for (auto [flavor, acpi] : {variant{kernel_flavor::debian, true}, variant{kernel_flavor::minimal, true},
                                variant{kernel_flavor::minimal, false}}) {
        std::error_code ec;
        auto k = find_kernel(root, flavor, ec);
        if (ec) {
            fmt::print("{}: not cached under {} (skipped)\n", to_string(flavor), root.string());
            continue;
        }
        auto initrd = root / fmt::format("bench-initramfs-{}.cpio.gz", to_string(flavor));
        initramfs_builder b;
        b.init(fs::path(CZ_SOURCE_DIR) / "tests/vm/guest-init.sh");
        b.add_file("bin/busybox", "/bin/busybox", 0755);
        b.add_modules(k.modules);
        b.write_gzip(initrd);
        std::vector<sample> samples;
        for (int i = 0; i < runs; ++i) samples.push_back(boot_once(k, acpi, initrd, root));
        fs::remove(initrd);
        report(fmt::format("{} kernel {} ({} modules), {}", to_string(flavor), k.version, k.modules.size(),
                           acpi ? "ACPI" : "no ACPI"),
               samples);
        ++booted;
    }
    return booted > 0 ? 0 : 1;
} catch (const std::exception& e) {
    fmt::print(stderr, "vm_boot: {}\n", e.what());
    return 1;
}
