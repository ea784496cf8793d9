// benchmarks/ext4_build.cpp — OCI layers to an ext4 image: cz against the tools people use.
//
//   bench_ext4_build [WORKDIR] [RUNS] [--umoci]      (defaults: /tmp/cz-bench-ext4, 3 runs)
//
// Prepares five gzip layers (GNU tar + gzip) of real host trees under /usr, about 4 GB of files
// and over 1 GB compressed here, kept in WORKDIR/layers for later runs. Then times, per run:
//   cz ext4 create      cz ext4 create cz.img --from-tar l1 ... l5
//   tar -x + mke2fs -d  tar -xzf of each layer into a directory, then mke2fs -t ext4 -d DIR
//   igzip -dc           ISA-L's single-threaded decoder alone, output discarded: the floor for
//                       any tool that reads these layers
//   gzip -dc            the same with zlib's gzip
//   umoci + mke2fs -d   (with --umoci) umoci unpack --rootless of an OCI layout of the layers
// Only the work itself is timed: removing the previous run's output happens before the clock
// starts, and mke2fs's size (the extracted tree's plus 25 %) is measured once beforehand.
// After the runs, cz's image is checked against the tree tar extracted (GNU tar --compare of
// `cz ext4 export`, the same set of names, e2fsck -fn); a difference fails the benchmark.
// Prints the median wall time, the peak RSS of each (the largest of its processes) and the
// ratio peer/cz (bench.hpp).
#include "bench.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#ifndef CZ_EXE
#error "CZ_EXE must name the cz executable"
#endif

namespace {

using cz::bench::output_of;
using cz::bench::run_command;

// What each layer holds: paths under / as a rootfs layer would (later layers add to usr/ and
// usr/lib/ that earlier ones created).
const std::vector<std::string> layer_sources = {
    "usr/lib/x86_64-linux-gnu",
    "usr/bin usr/sbin usr/libexec",
    "usr/share",
    "usr/lib/llvm-14 usr/lib/gcc",
    "usr/include usr/src usr/lib/python3 usr/lib/python3.11 usr/lib/jvm",
};

bool exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

std::vector<std::string> prepare_layers(const std::string& dir) {
    std::vector<std::string> files;
    for (std::size_t i = 0; i < layer_sources.size(); ++i) {
        auto f = fmt::format("{}/layer{}.tar.gz", dir, i + 1);
        if (!exists(f)) {
            std::string present = output_of("for p in " + layer_sources[i] +
                                            "; do [ -e /$p ] && printf '%s ' $p; done; true");
            if (present.empty())
                throw std::runtime_error("none of /" + layer_sources[i] + " exists");
            fmt::print(stderr, "preparing {} from {}\n", f, present);
            run_command(
                fmt::format("tar -cf - -C / {} 2>/dev/null | gzip > '{}.tmp' && mv '{}.tmp' '{}'",
                            present, f, f, f));
        }
        files.push_back(f);
    }
    return files;
}

// An OCI image layout holding the layers, for umoci.
void prepare_oci_layout(const std::string& oci, const std::vector<std::string>& files) {
    if (exists(oci + "/index.json")) return;
    run_command("mkdir -p '" + oci + "/blobs/sha256'");
    auto sha256_file = [](const std::string& path) {
        return output_of("sha256sum '" + path + "'").substr(0, 64);
    };
    std::string layer_desc, diff_ids;
    for (std::size_t i = 0; i < files.size(); ++i) {
        auto d = sha256_file(files[i]);
        struct stat st {};
        ::stat(files[i].c_str(), &st);
        run_command(fmt::format("ln -f '{}' '{}/blobs/sha256/{}'", files[i], oci, d));
        layer_desc +=
            fmt::format("{}{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                        "\"digest\":\"sha256:{}\",\"size\":{}}}",
                        i ? "," : "", d, st.st_size);
        diff_ids += fmt::format("{}\"sha256:{}\"", i ? "," : "",
                                output_of("gzip -dc '" + files[i] + "' | sha256sum").substr(0, 64));
    }
    auto put = [&](const std::string& text) {
        std::string tmp = oci + "/blob.tmp";
        FILE* f = std::fopen(tmp.c_str(), "w");
        if (!f) throw std::runtime_error("cannot write " + tmp);
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
        auto d = sha256_file(tmp);
        run_command(fmt::format("mv '{}' '{}/blobs/sha256/{}'", tmp, oci, d));
        return std::pair{d, text.size()};
    };
    auto [cd, cs] = put("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":"
                        "{\"type\":\"layers\",\"diff_ids\":[" +
                        diff_ids + "]}}");
    auto [md, ms] = put(fmt::format(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"sha256:{}\",\"size\":{}}},\"layers\":[{}]}}",
        cd, cs, layer_desc));
    FILE* idx = std::fopen((oci + "/index.json").c_str(), "w");
    FILE* lay = std::fopen((oci + "/oci-layout").c_str(), "w");
    if (!idx || !lay) throw std::runtime_error("cannot write the OCI layout in " + oci);
    std::fprintf(idx,
                 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci."
                 "image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu,\"annotations\""
                 ":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}",
                 md.c_str(), ms);
    std::fprintf(lay, "{\"imageLayoutVersion\":\"1.0.0\"}");
    std::fclose(idx);
    std::fclose(lay);
}

// cz's image must hold what tar extracted: every entry's data, mode, owner, mtime and link
// target (GNU tar --compare reads cz's export against the tree), the same set of names, and a
// clean e2fsck.
void check_image(const std::string& img, const std::string& tree) {
    const std::string cz = CZ_EXE;
    std::string diff = output_of(fmt::format(
        "'{}' ext4 export '{}' - | tar --compare --numeric-owner -f - -C '{}' 2>&1; true", cz, img,
        tree));
    if (!diff.empty())
        throw std::runtime_error("OUTPUT MISMATCH: tar --compare of cz's image against the tree "
                                 "tar extracted:\n" +
                                 diff.substr(0, 4000));
    auto mine = cz::bench::sha256_of_output(
        fmt::format("'{}' ext4 export '{}' - | tar -tf - | sed -e 's|^\\./||' -e 's|/$||' | grep "
                    "-v '^\\.\\?$' | LC_ALL=C sort",
                    cz, img));
    auto theirs = cz::bench::sha256_of_output(
        fmt::format("cd '{}' && find . -mindepth 1 | sed 's|^\\./||' | LC_ALL=C sort", tree));
    if (mine != theirs)
        throw std::runtime_error(fmt::format(
            "OUTPUT MISMATCH: cz's image and tar's tree hold different names (sha256 of the "
            "sorted lists: {} and {})",
            mine, theirs));
    run_command(fmt::format("e2fsck -fn '{}' >/dev/null 2>&1", img));
    fmt::print("checked: cz's image holds what tar -x extracted (data, metadata, names; sha256 of "
               "names {}); e2fsck -fn clean\n",
               mine.substr(0, 16));
}

} // namespace

int main(int argc, char** argv) {
    std::string work = "/tmp/cz-bench-ext4";
    int runs = 3;
    bool umoci = false;
    int positional = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--umoci")
            umoci = true;
        else if (positional == 0 && ++positional)
            work = a;
        else if (positional == 1 && ++positional)
            runs = std::atoi(a.c_str());
        else {
            std::fprintf(stderr, "usage: %s [WORKDIR] [RUNS] [--umoci]\n", argv[0]);
            return 2;
        }
    }
    try {
        ::mkdir(work.c_str(), 0755);
        ::mkdir((work + "/layers").c_str(), 0755);
        auto files = prepare_layers(work + "/layers");
        std::string layer_args;
        for (auto& f : files)
            layer_args += " '" + f + "'";
        std::string cz_img = work + "/cz.img", peer_img = work + "/peer.img";
        std::string tree = work + "/tree", bundle = work + "/bundle", oci = work + "/oci";

        // mke2fs needs a size: the extracted tree's plus 25 %, measured once here, untimed.
        fmt::print(stderr, "extracting the layers once to size mke2fs's image ...\n");
        std::string extract = fmt::format(
            "for l in{1}; do tar -xzf \"$l\" -C '{0}' || exit 1; done", tree, layer_args);
        run_command(fmt::format("rm -rf '{0}' && mkdir '{0}' && {1}", tree, extract));
        auto tree_kib = std::stoull(output_of("du -sk '" + tree + "' | cut -f1"));
        auto entries = output_of("find '" + tree + "' | wc -l");
        std::uint64_t image_kib = tree_kib * 5 / 4 + 65536;
        const std::string mke2fs = "mke2fs -q -F -t ext4 -d";

        std::vector<cz::bench::contender> cs = {
            cz::bench::command(
                "cz ext4 create",
                fmt::format("'{}' ext4 create '{}' --from-tar{}", CZ_EXE, cz_img, layer_args),
                fmt::format("rm -f '{}'", cz_img)),
            cz::bench::command(
                "tar -x + mke2fs -d",
                fmt::format("{} && {} '{}' '{}' {}k", extract, mke2fs, tree, peer_img, image_kib),
                fmt::format("rm -rf '{0}' '{1}' && mkdir '{0}' && : > '{1}'", tree, peer_img)),
        };
        if (cz::bench::have_tool("igzip"))
            cs.push_back(cz::bench::command("igzip -dc (decode only)",
                                            "igzip -dc" + layer_args + " >/dev/null"));
        cs.push_back(
            cz::bench::command("gzip -dc (decode only)", "gzip -dc" + layer_args + " >/dev/null"));
        if (umoci) {
            prepare_oci_layout(oci, files);
            cs.push_back(cz::bench::command(
                "umoci unpack + mke2fs -d",
                fmt::format("umoci unpack --rootless --image '{}:bench' '{}' >/dev/null 2>&1 && {} "
                            "'{}/rootfs' '{}' {}k",
                            oci, bundle, mke2fs, bundle, peer_img, image_kib),
                fmt::format("rm -rf '{0}' '{1}' && : > '{1}'", bundle, peer_img)));
        }
        std::string compressed = output_of("du -cb" + layer_args + " | tail -1 | cut -f1");
        fmt::print("{} layers: {:.0f} MB compressed, {:.0f} MB and {} entries extracted\n",
                   files.size(), std::stod(compressed) / 1e6, double(tree_kib) * 1024 / 1e6,
                   entries);
        fmt::print("load before the runs: {}\n", output_of("cat /proc/loadavg"));
        std::fflush(stdout);

        auto results = cz::bench::compare(cs, runs, [] { run_command("sync"); });
        fmt::print("load after the runs: {}\n", output_of("cat /proc/loadavg"));
        // The last runs left cz's image and tar's tree: compare them, untimed.
        check_image(cz_img, tree);
        run_command(fmt::format("rm -rf '{}' '{}' '{}' '{}'", tree, bundle, cz_img, peer_img));
        cz::bench::print_table(
            fmt::format("{} gzip layers -> ext4 image (median of {})", files.size(), runs),
            results);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_ext4_build: %s\n", e.what());
        return 1;
    }
    return 0;
}
