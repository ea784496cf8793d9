// container_run — `cz run busybox true`, warm (the image's root filesystem and the initramfs
// cached) and booted cold (--no-template; container_template measures the VM template's start),
// against its floor: the same kernel booting an init that powers off at once, through
// cz/vm, in the same run. Goal: cz run within 1.25x of the floor. Also prints the median of each
// phase `cz run --timings` reports.
//
// usage: bench_container_run [RUNS] [ROOT]
//   ROOT: a cz root with Debian's kernel and a `busybox` image whose Cmd can run `true`
//   (scripts/demo makes both in the default root, which is what ROOT defaults to).
#include "bench.hpp"
#include "vm_floor.hpp"

#include <cz/vm.hpp>

#include <fmt/format.h>

#ifndef CZ_EXE
#error "CZ_EXE: the cz tool"
#endif
#ifndef POWEROFF_INIT
#error "POWEROFF_INIT: the floor's static /init"
#endif

namespace fs = std::filesystem;

int main(int argc, char** argv) try {
    int runs = argc > 1 ? std::atoi(argv[1]) : 10;
    const fs::path root = argc > 2 ? fs::path(argv[2]) : cz::vm::default_root();
    if (runs < 1) throw std::runtime_error("RUNS must be at least 1");
    auto kernel = cz::vm::find_kernel(root, cz::vm::kernel_flavor::debian);
    cz::bench::temp_dir tmp;
    cz::bench::vm_floor floor(root, kernel, POWEROFF_INIT, tmp.path);

    std::string cz_cmd = cz::bench::shell_quote(CZ_EXE) + " --root " +
                         cz::bench::shell_quote(root.string()) +
                         " run --rm --timings --no-template busybox true 2>>" +
                         cz::bench::shell_quote(tmp.path + "/timings");
    // Once untimed: builds the root filesystem and initramfs if they are not cached yet.
    cz::bench::run_command(cz_cmd);
    std::remove((tmp.path + "/timings").c_str());

    auto floor_run = [&] { return floor.run(); };
    auto results = cz::bench::compare(
        {cz::bench::command("cz run busybox true", cz_cmd), {"floor: boot + poweroff", floor_run}},
        runs);
    cz::bench::print_table(
        fmt::format("cz run, warm, median of {} (kernel {})", runs, kernel.version), results);
    fmt::print("  cz run / floor: {:.2f}x (goal: at most 1.25x)\n",
               results[0].seconds / results[1].seconds);

    fmt::print("  phases (median ms):");
    for (const auto& [name, ms] : cz::bench::phase_medians(tmp.path + "/timings"))
        fmt::print(" {} {:.1f}", name, ms);
    fmt::print("\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_container_run: {}\n", e.what());
    return 1;
}
