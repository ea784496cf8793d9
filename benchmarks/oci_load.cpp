// Benchmark: loading an OCI archive into a store, cz's load_archive against
// `skopeo copy oci-archive:F:REF oci:DIR:REF`, in one run, with reference rows for what the
// machine can do at best: read the archive once, sha256 it (BoringSSL, as cz does) and write it
// with an fsync, in this process; and coreutils' `sha256sum` then `cp` of the archive.
//
// usage: bench_oci_load [SIZE_MB] [LAYERS] [RUNS]   (defaults: 512 MB, 6 layers, 5 runs)
//        CZ_BENCH_OCI_MB, CZ_BENCH_OCI_LAYERS, CZ_BENCH_RUNS override them (a quick check:
//        CZ_BENCH_OCI_MB=32 CZ_BENCH_RUNS=1)
//
// The input: LAYERS gzip layers (level 1) of incompressible data, SIZE_MB in all, in an OCI
// archive cz writes (save_archive), which skopeo reads as it is. Both contenders check every
// blob's sha256 and write it into a fresh OCI layout each run; neither recompresses. cz runs in
// this process (no peak RSS), skopeo as a command. The figures are median wall times and MB/s of
// archive bytes; time/cz > 1 means cz is faster. Before the timing, the manifest digest cz stores
// is checked against the one skopeo stores: a mismatch fails the run.
#include "bench.hpp"
#include "oci_bench.hpp"

#include <cz/core/compression.hpp>
#include <cz/oci/archive.hpp>
#include <cz/tar/writer.hpp>

#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
    using namespace cz::bench;
    namespace oci = cz::oci;
    auto mb = setting("CZ_BENCH_OCI_MB", argc, argv, 1, 512);
    auto layers = setting("CZ_BENCH_OCI_LAYERS", argc, argv, 2, 6);
    int runs = int(setting("CZ_BENCH_RUNS", argc, argv, 3, 5));
    if (!have_tool("skopeo")) {
        fmt::print(stderr, "bench_oci_load: skopeo is not installed\n");
        return 1;
    }
    temp_dir work("cz-bench-oci");
    const std::string dir = work.path;
    const std::string ref = "docker.io/library/bench:1";

    fmt::print("making an OCI archive of {} MB in {} gzip layers ...\n", mb, layers);
    {
        auto cs = oci::content_store::open(dir + "/src");
        oci::image_config config;
        config.architecture = oci::host_platform().architecture;
        config.os = "linux";
        oci::manifest m;
        m.media_type = std::string(oci::media_type::oci_manifest);
        for (unsigned i = 0; i < layers; ++i) {
            cz::digest diff_id;
            m.layers.push_back(
                put_layer(cs, (mb * 1000000) / layers, i + 1, diff_id, layer_data::random));
            config.diff_ids.push_back(diff_id);
        }
        m.config = cs.put(oci::media_type::oci_config, oci::serialize(config));
        oci::image_store images(cs);
        images.tag(ref, cs.put(oci::media_type::oci_manifest, oci::serialize(m)));
        oci::save_archive(images, {ref}, dir + "/image.tar", oci::archive_format::oci);
    }
    const std::string archive = dir + "/image.tar";
    double bytes = double(std::filesystem::file_size(archive));
    fmt::print("archive: {:.0f} MB\n", bytes / 1e6);

    auto cz_load = [&] {
        auto cs = oci::content_store::open(dir + "/cz");
        oci::image_store images(cs);
        return oci::load_archive(images, std::filesystem::path(archive));
    };
    auto skopeo_cmd = "skopeo copy -q oci-archive:" + shell_quote(archive + ":" + ref) +
                      " oci:" + shell_quote(dir + "/skopeo:" + ref);
    // Same result: the manifest each stores under the name.
    run_command("rm -rf " + dir + "/cz " + dir + "/skopeo");
    auto loaded = cz_load();
    run_command(skopeo_cmd);
    auto theirs = output_of("skopeo inspect --format '{{.Digest}}' oci:" +
                            shell_quote(dir + "/skopeo:" + ref));
    if (loaded.tagged.size() != 1 || loaded.tagged[0].target.digest.str() != theirs) {
        fmt::print(stderr, "bench_oci_load: OUTPUT MISMATCH: cz stored {}, skopeo {}\n",
                   loaded.tagged.empty() ? "nothing" : loaded.tagged[0].target.digest.str(),
                   theirs);
        return 1;
    }
    fmt::print("checked: cz and skopeo store manifest {}\n", theirs.substr(0, 19));

    // What one thread can do at best with the same sha256 (BoringSSL's): read the archive once,
    // hash it, write it to a file, fsync.
    auto hash_copy = [&] {
        cz::unique_fd in(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
        cz::unique_fd out(
            ::open((dir + "/copy").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!in || !out) throw std::runtime_error("opening the archive or its copy");
        cz::fd_source src(in.get());
        cz::fd_sink sink(out.get());
        cz::hashing_source hashed(src);
        std::error_code ec;
        cz::copy(hashed, sink, ec);
        if (ec || ::fsync(out.get()) != 0) throw std::runtime_error("copying the archive");
        (void)hashed.final();
    };
    std::vector<contender> cs = {
        {"cz load_archive", [&] { return run_function([&] { cz_load(); }); },
         [&] { run_command("rm -rf " + dir + "/cz && sync"); }},
        command("skopeo copy oci-archive: oci:", skopeo_cmd, "rm -rf " + dir + "/skopeo && sync"),
        {"limit: read+sha256+write+fsync", [&] { return run_function([&] { hash_copy(); }); },
         [&] { run_command("rm -f " + dir + "/copy && sync"); }},
        command("sha256sum + cp (coreutils)",
                "sha256sum " + archive + " >/dev/null && cp " + archive + " " + dir + "/copy",
                "rm -f " + dir + "/copy && sync"),
    };
    print_table(fmt::format("load an OCI archive of {} layers (median of {}; MB/s of archive)",
                            layers, runs),
                compare(cs, runs), bytes);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_oci_load: {}\n", e.what());
    return 1;
}
