// container_cold_run — a cold `cz run` of an image that is only in a registry (nothing cached:
// a fresh cz root, with only the kernels), against the two steps it overlaps done one after the
// other: `cz image pull` of the image, then `cz ext4 create` of its layers. A cold run applies
// each layer as soon as it is in the store while later ones still download, so its pull phase
// (pull + root filesystem, from `cz run --timings`) should take about the longer of the two, not
// their sum. Goal (issue 17): the pull phase at most 1.2x the longer of the two.
//
// usage: bench_container_cold_run [RUNS] [SIZE_MB] [LAYERS] [ROOT]
//        (defaults: 5 runs, 360 MB, 5 data layers, the default cz root)
//   ROOT: a cz root holding Debian's kernel (`cz kernel fetch`; scripts/demo makes one); only
//   its kernels/ are used. CZ_BENCH_RUNS, CZ_BENCH_PULL_MB, CZ_BENCH_PULL_LAYERS override.
//
// The image: busybox-static (so that `true` runs) and LAYERS gzip layers of SIZE_MB of file data
// in all, each MiB 7/8 random bytes and 1/8 text; skopeo pushes it to Debian's docker-registry on
// 127.0.0.1. Every timed run starts cold for cz: a fresh root (or output file), then `sync`.
#include "bench.hpp"
#include "oci_bench.hpp"

#include <cz/oci/platform.hpp>
#include <cz/oci/types.hpp>
#include <cz/vm.hpp>

#include <fmt/format.h>

#ifndef CZ_EXE
#error "CZ_EXE: the cz tool"
#endif

namespace {

using namespace cz::bench;
namespace fs = std::filesystem;
namespace oci = cz::oci;

// busybox-static as a gzip layer: /bin/busybox and /bin/true.
oci::descriptor put_busybox_layer(const oci::content_store& cs, const std::string& dir,
                                  cz::digest& diff_id) {
    run_command("mkdir -p " + shell_quote(dir + "/bb/bin") + " && cp /bin/busybox " +
                shell_quote(dir + "/bb/bin/") + " && ln -sf busybox " +
                shell_quote(dir + "/bb/bin/true") + " && tar -C " + shell_quote(dir + "/bb") +
                " -cf " + shell_quote(dir + "/bb.tar") + " . && gzip -1nf " +
                shell_quote(dir + "/bb.tar"));
    diff_id =
        cz::digest::parse("sha256:" + output_of("gzip -dc " + shell_quote(dir + "/bb.tar.gz") +
                                                " | sha256sum | cut -d' ' -f1"));
    std::ifstream in(dir + "/bb.tar.gz", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return cs.put(oci::media_type::oci_layer_gzip, bytes);
}

} // namespace

int main(int argc, char** argv) try {
    int runs = int(setting("CZ_BENCH_RUNS", argc, argv, 1, 5));
    auto mb = setting("CZ_BENCH_PULL_MB", argc, argv, 2, 360);
    auto layers = setting("CZ_BENCH_PULL_LAYERS", argc, argv, 3, 5);
    const fs::path root = argc > 4 ? fs::path(argv[4]) : cz::vm::default_root();
    if (runs < 1 || mb < 1 || layers < 1) {
        fmt::print(stderr, "usage: bench_container_cold_run [RUNS] [SIZE_MB] [LAYERS] [ROOT]\n");
        return 2;
    }
    for (const char* tool : {"skopeo", "docker-registry", "busybox"}) {
        if (!have_tool(tool)) {
            fmt::print(stderr, "bench_container_cold_run: {} is not installed\n", tool);
            return 1;
        }
    }
    auto kernel = cz::vm::find_kernel(root, cz::vm::kernel_flavor::debian); // throws if absent
    temp_dir work("cz-bench-cold");
    const std::string dir = work.path;

    fmt::print("making an image: busybox and {} MB of file data in {} gzip layers ...\n", mb,
               layers);
    std::fflush(stdout);
    std::vector<std::string> layer_files;
    double bytes = 0;
    {
        auto cs = oci::content_store::open(dir + "/src");
        oci::image_config config;
        config.architecture = oci::host_platform().architecture;
        config.os = "linux";
        oci::manifest m;
        m.media_type = std::string(oci::media_type::oci_manifest);
        cz::digest diff_id;
        m.layers.push_back(put_busybox_layer(cs, dir, diff_id));
        config.diff_ids.push_back(diff_id);
        for (unsigned i = 0; i < layers; ++i) {
            m.layers.push_back(put_layer(cs, (mb * 1000000) / layers, i + 1, diff_id));
            config.diff_ids.push_back(diff_id);
        }
        m.config = cs.put(oci::media_type::oci_config, oci::serialize(config));
        bytes += double(m.config.size);
        for (const auto& l : m.layers) {
            layer_files.push_back(cs.blob_path(l.digest).string());
            bytes += double(l.size);
        }
        oci::image_store images(cs);
        images.tag("cold", cs.put(oci::media_type::oci_manifest, oci::serialize(m)));
    }
    fs::create_directories(dir + "/registry");
    docker_registry reg(dir + "/registry");
    const std::string ref = reg.host() + "/cold:1";
    run_command("skopeo copy -q --dest-tls-verify=false oci:" +
                shell_quote(dir + "/src/content:cold") + " docker://" + ref);
    fmt::print("image: {:.0f} MB of blobs in {} layers, pushed to docker-registry as {}\n",
               bytes / 1e6, layers + 1, ref);

    const std::string run_root = dir + "/run", pull_root = dir + "/pull", image = dir + "/out.img";
    // A fresh root with only the kernels (no store, no root filesystems, no initramfs).
    auto fresh_root = "rm -rf " + shell_quote(run_root) + " && mkdir -p " + shell_quote(run_root) +
                      " && ln -s " + shell_quote((root / "kernels").string()) + " " +
                      shell_quote(run_root + "/kernels") + " && sync";
    auto timings = dir + "/timings";
    auto run_cmd = shell_quote(CZ_EXE) + " --root " + shell_quote(run_root) +
                   " run --rm --timings --net none " + ref + " true 2>>" + shell_quote(timings);
    auto pull_cmd =
        shell_quote(CZ_EXE) + " --root " + shell_quote(pull_root) + " image pull -q " + ref;
    std::string create_cmd =
        shell_quote(CZ_EXE) + " ext4 create " + shell_quote(image) + " --from-tar";
    for (const auto& f : layer_files)
        create_cmd += " " + shell_quote(f);

    // Once untimed, checked: the cold run's root filesystem is the one cz ext4 create makes.
    run_command(fresh_root);
    run_command(run_cmd + " >/dev/null");
    run_command(create_cmd + " >/dev/null");
    auto built = output_of("ls " + shell_quote(run_root + "/rootfs") + "/*.ext4");
    if (sha256_of_output("cat " + shell_quote(built)) !=
        sha256_of_output("cat " + shell_quote(image))) {
        fmt::print(stderr, "bench_container_cold_run: OUTPUT MISMATCH: the cold run's root "
                           "filesystem differs from cz ext4 create's\n");
        return 1;
    }
    std::remove(timings.c_str());
    fmt::print("checked: the cold run's root filesystem is byte-identical to cz ext4 create's\n");
    std::fflush(stdout);

    auto results = compare(
        {
            command("cz run (cold)", run_cmd + " >/dev/null", fresh_root),
            command("cz image pull", pull_cmd + " >/dev/null",
                    "rm -rf " + shell_quote(pull_root) + " && sync"),
            command("cz ext4 create", create_cmd + " >/dev/null",
                    "rm -f " + shell_quote(image) + " && sync"),
        },
        runs);
    print_table(fmt::format("cold run of {} MB in {} layers from docker-registry on loopback "
                            "(median of {}, kernel {})",
                            std::lround(bytes / 1e6), layers + 1, runs, kernel.version),
                results, bytes);

    auto phases = phase_medians(timings);
    double pull_phase = 0;
    fmt::print("  cold run phases (median ms):");
    for (const auto& [name, ms] : phases) {
        fmt::print(" {} {:.1f}", name, ms);
        if (name == "pull") pull_phase = ms / 1000;
    }
    fmt::print("\n");
    double longer = std::max(results[1].seconds, results[2].seconds);
    double sum = results[1].seconds + results[2].seconds;
    double ratio = pull_phase / longer;
    fmt::print("\n  pull phase {:.3f} s; pull {:.3f} s, create {:.3f} s: sum {:.3f} s\n",
               pull_phase, results[1].seconds, results[2].seconds, sum);
    fmt::print("  pull phase / longer of the two = {:.2f}x (goal <= 1.2x): {}; / their sum = "
               "{:.2f}x\n",
               ratio, ratio <= 1.2 ? "met" : "NOT met", pull_phase / sum);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_container_cold_run: {}\n", e.what());
    return 1;
}
