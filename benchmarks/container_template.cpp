// container_template — `cz run --rm busybox true` from a VM template (cz/vm/template.hpp) against
// the cold boot floor of container_run (the same kernel booting an init that powers off at once,
// through cz/vm), and against `cz run --no-template`, in the same run. Goal: the template's run
// at most 0.25x the floor. Prints the median of each phase of the template's runs (qemu,
// incoming, agent, start (Awaken, the setup and the process's start in one round), exit, teardown).
//
// usage: bench_container_template [RUNS] [ROOT]
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

    auto cz_run = [&](const std::string& flags, const std::string& timings) {
        return cz::bench::shell_quote(CZ_EXE) + " --root " + cz::bench::shell_quote(root.string()) +
               " run --rm --timings " + flags + " busybox true 2>>" +
               cz::bench::shell_quote(tmp.path + "/" + timings);
    };
    auto warm_cmd = cz_run("", "warm");
    auto cold_cmd = cz_run("--no-template", "cold");
    // Once untimed: the root filesystem, the initramfs and the template, if not there yet.
    cz::bench::run_command(warm_cmd);
    std::remove((tmp.path + "/warm").c_str());

    auto floor_run = [&] { return floor.run(); };
    auto results = cz::bench::compare({cz::bench::command("cz run, from a template", warm_cmd),
                                       {"floor: boot + poweroff", floor_run},
                                       cz::bench::command("cz run --no-template", cold_cmd)},
                                      runs);
    cz::bench::print_table(fmt::format("cz run busybox true from a VM template, median of {} "
                                       "(kernel {})",
                                       runs, kernel.version),
                           results);
    fmt::print("  template / floor: {:.2f}x (goal: at most 0.25x); cold / floor: {:.2f}x\n",
               results[0].seconds / results[1].seconds, results[2].seconds / results[1].seconds);
    for (const char* which : {"warm", "cold"}) {
        fmt::print("  phases, {} (median ms):", std::string(which) == "warm" ? "template" : "cold");
        for (const auto& [name, ms] : cz::bench::phase_medians(tmp.path + "/" + which))
            fmt::print(" {} {:.1f}", name, ms);
        fmt::print("\n");
    }
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_container_template: {}\n", e.what());
    return 1;
}
