// Benchmark: a cold pull from a registry on loopback, `cz image pull` against `skopeo copy
// docker://... oci:DIR`, in one run, with a reference row for what the machine can do at best
// with the same bytes.
//
// usage: bench_registry_pull [RUNS] [SIZE_MB] [LAYERS]   (defaults: 5 runs, 384 MB, 6 layers)
//        CZ_BENCH_RUNS, CZ_BENCH_PULL_MB, CZ_BENCH_PULL_LAYERS override them (a quick check:
//        CZ_BENCH_PULL_MB=32 CZ_BENCH_RUNS=1); CZ_BENCH_PULL_OTHER=/path/to/cz adds that build of
//        cz as one more contender, in the same rounds (an A/B of a change on a noisy machine)
//
// The input: LAYERS gzip layers (level 1) holding SIZE_MB of file data in all, each MiB of it 7/8
// random bytes and 1/8 text, so the layers compress little (about 0.9) as real binaries do; cz's
// store API writes the image, skopeo pushes it to Debian's docker-registry (distribution),
// started here on 127.0.0.1 with a free port and plain HTTP.
//
// Each run is cold for the puller: a fresh destination, removed (untimed, then `sync`) before the
// run; the registry's files stay in the page cache, as they are for every contender. Contenders:
//   cz      `cz --root DIR image pull 127.0.0.1:PORT/bench:1`: blobs fetched 4 at once, hashed
//           and written into the store's ingest area, fsynced, committed.
//   skopeo  `skopeo copy --src-tls-verify=false docker://127.0.0.1:PORT/bench:1 oci:DIR:bench`.
//   limit   this program again (--hash-copy), one thread: reads every blob's bytes from the
//           source store, sha256 (BoringSSL, as cz hashes) and writes them to one file on the
//           same disk, fsynced at the end: the work a pull cannot avoid, without a network.
//   coreutils `cat BLOBS | tee FILE | sha256sum` then `sync FILE`: the same work in three
//           processes, with coreutils' own sha256 (no SHA extensions), for comparison.
// The figures are median wall times, MB/s of blob bytes (config and layers), and the peak RSS of
// each command's largest process. Goals (issue 16): skopeo/cz >= 2, cz/limit <= 1.3.
// Before the timing, cz's pull is checked against skopeo's: the same manifest digest, and `cz
// store verify` clean; a mismatch fails the run.
#include "bench.hpp"
#include "oci_bench.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/oci/media_types.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/store.hpp>
#include <cz/oci/types.hpp>
#include <cz/tar/writer.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace cz::bench;
namespace oci = cz::oci;

// The reference row's work, in a process of its own (so its peak RSS is measured as the
// others'): `files` read in order, hashed each with BoringSSL's sha256 and appended to `out`,
// fsynced at the end.
int hash_copy(const std::string& out, const std::vector<std::string>& files) {
    cz::unique_fd o(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!o) throw std::runtime_error("cannot create " + out);
    cz::fd_sink sink(o.get());
    for (const auto& f : files) {
        cz::unique_fd in(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) throw std::runtime_error("cannot open " + f);
        cz::fd_source src(in.get());
        cz::hashing_source hashed(src);
        std::error_code ec;
        cz::copy(hashed, sink, ec);
        if (ec) throw cz::system_error(ec, "copying " + f);
        (void)hashed.final();
    }
    if (::fsync(o.get()) != 0) throw std::runtime_error("fsync of " + out);
    return 0;
}

std::string verdict(bool met) {
    return met ? "met" : "NOT met";
}

} // namespace

int main(int argc, char** argv) try {
    if (argc >= 3 && std::string(argv[1]) == "--hash-copy")
        return hash_copy(argv[2], std::vector<std::string>(argv + 3, argv + argc));
    int runs = int(setting("CZ_BENCH_RUNS", argc, argv, 1, 5));
    auto mb = setting("CZ_BENCH_PULL_MB", argc, argv, 2, 384);
    auto layers = setting("CZ_BENCH_PULL_LAYERS", argc, argv, 3, 6);
    if (runs < 1 || mb < 1 || layers < 1) {
        fmt::print(stderr, "usage: bench_registry_pull [RUNS] [SIZE_MB] [LAYERS]\n");
        return 2;
    }
    for (const char* tool : {"skopeo", "docker-registry"}) {
        if (!have_tool(tool)) {
            fmt::print(stderr, "bench_registry_pull: {} is not installed\n", tool);
            return 1;
        }
    }
    temp_dir work("cz-bench-pull");
    const std::string dir = work.path;

    fmt::print("making an image of {} MB of file data in {} gzip layers ...\n", mb, layers);
    std::fflush(stdout);
    std::vector<std::string> blob_files;
    double bytes = 0;
    {
        auto cs = oci::content_store::open(dir + "/src");
        oci::image_config config;
        config.architecture = oci::host_platform().architecture;
        config.os = "linux";
        oci::manifest m;
        m.media_type = std::string(oci::media_type::oci_manifest);
        for (unsigned i = 0; i < layers; ++i) {
            cz::digest diff_id;
            m.layers.push_back(put_layer(cs, (mb * 1000000) / layers, i + 1, diff_id));
            config.diff_ids.push_back(diff_id);
        }
        m.config = cs.put(oci::media_type::oci_config, oci::serialize(config));
        blob_files.push_back(cs.blob_path(m.config.digest).string());
        bytes += double(m.config.size);
        for (const auto& l : m.layers) {
            blob_files.push_back(cs.blob_path(l.digest).string());
            bytes += double(l.size);
        }
        oci::image_store images(cs);
        images.tag("bench", cs.put(oci::media_type::oci_manifest, oci::serialize(m)));
    }
    fmt::print("image: {:.0f} MB of blobs (config and {} layers)\n", bytes / 1e6, layers);

    std::filesystem::create_directories(dir + "/registry");
    docker_registry reg(dir + "/registry");
    const std::string ref = reg.host() + "/bench:1";
    run_command("skopeo copy -q --dest-tls-verify=false oci:" +
                shell_quote(dir + "/src/content:bench") + " docker://" + ref);
    fmt::print("pushed to docker-registry at {}\n", ref);

    const std::string cz_root = dir + "/cz", skopeo_dir = dir + "/skopeo", copy = dir + "/copy";
    auto cz_cmd = std::string(CZ_EXE) + " --root " + shell_quote(cz_root) + " image pull -q " +
                  ref + " >/dev/null";
    auto skopeo_cmd = "skopeo copy -q --src-tls-verify=false docker://" + ref +
                      " oci:" + shell_quote(skopeo_dir + ":bench");
    std::string blobs;
    for (const auto& f : blob_files)
        blobs += " " + shell_quote(f);
    auto limit_cmd = shell_quote(std::filesystem::canonical("/proc/self/exe").string()) +
                     " --hash-copy " + shell_quote(copy) + blobs;
    auto coreutils_cmd = "cat" + blobs + " | tee " + shell_quote(copy) +
                         " | sha256sum >/dev/null && sync " + shell_quote(copy);

    // Same result: the manifest digest each pulled, and cz's store whole.
    run_command("rm -rf " + shell_quote(cz_root) + " " + shell_quote(skopeo_dir));
    auto mine = output_of(std::string(CZ_EXE) + " --root " + shell_quote(cz_root) +
                          " image pull -q " + ref);
    run_command(skopeo_cmd);
    auto theirs = output_of("skopeo inspect --format '{{.Digest}}' oci:" +
                            shell_quote(skopeo_dir + ":bench"));
    if (mine != theirs) {
        fmt::print(stderr, "bench_registry_pull: OUTPUT MISMATCH: cz pulled {}, skopeo {}\n", mine,
                   theirs);
        return 1;
    }
    run_command(std::string(CZ_EXE) + " --root " + shell_quote(cz_root) +
                " store verify >/dev/null");
    fmt::print("checked: cz and skopeo pulled manifest {}; cz store verify is clean\n",
               theirs.substr(0, 19));
    std::fflush(stdout);

    auto fresh = [](const std::string& path) { return "rm -rf " + shell_quote(path) + " && sync"; };
    std::vector<contender> cs = {
        command("cz image pull", cz_cmd, fresh(cz_root)),
        command("skopeo copy docker:// oci:", skopeo_cmd, fresh(skopeo_dir)),
        command("limit: sha256 (BoringSSL) + write", limit_cmd, fresh(copy)),
        command("cat | tee | sha256sum (coreutils)", coreutils_cmd, fresh(copy)),
    };
    if (const char* other = std::getenv("CZ_BENCH_PULL_OTHER"); other && *other) {
        auto other_root = dir + "/cz-other";
        fmt::print("CZ_BENCH_PULL_OTHER: {}\n", other);
        cs.push_back(command("cz image pull (other build)",
                             shell_quote(other) + " --root " + shell_quote(other_root) +
                                 " image pull -q " + ref + " >/dev/null",
                             fresh(other_root)));
    }
    auto results = compare(cs, runs);
    print_table(fmt::format("cold pull of {} MB in {} layers from docker-registry on loopback "
                            "(median of {}; MB/s of blob bytes)",
                            std::lround(bytes / 1e6), layers, runs),
                results, bytes);
    double speedup = results[1].seconds / results[0].seconds;
    double to_limit = results[0].seconds / results[2].seconds;
    fmt::print("\n  skopeo/cz = {:.2f}x (goal >= 2x): {}\n", speedup, verdict(speedup >= 2));
    fmt::print("  cz/limit  = {:.2f}x (goal <= 1.3x): {}\n", to_limit, verdict(to_limit <= 1.3));
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_registry_pull: {}\n", e.what());
    return 1;
}
