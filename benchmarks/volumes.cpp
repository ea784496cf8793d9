// volumes — host folders in a container (cz run -v) against the guest's own ext4 root, same work,
// same VM: 10,000 small files written, one 1 GiB file written (and synced), and `tar -c` of a
// source tree (cz's include/ and guest/) read. The container times each piece itself (the
// guest's uptime clock, 10 ms steps, fine for pieces of seconds), so boot and teardown are not
// counted; the root side is a scratch ext4 disk (--rootfs-size) so that both sides write to a
// file system on the host's disk, not to the VM's memory. Caches are warm on both sides: the
// tree is copied in once, untimed, before it is read.
//
// usage: bench_volumes [RUNS] [ROOT] [FILES] [BIG_MIB]
//   RUNS     VMs, each doing every piece on both sides (default 3; the table has medians)
//   ROOT     a cz root with Debian's kernel (with the virtio-fs modules: `cz kernel fetch`) and a
//            `busybox` image (scripts/demo makes both in the default root)
//   FILES    small files (default 10000); BIG_MIB the big file's size (default 1024)
// The transport is cz's choice (virtio-fs as root with virtiofsd); CZ_VOLUME_TRANSPORT=9p with a
// 9p-capable kernel measures virtio-9p.
//
// On the 2-core development machine under TCG, busy with other builds (volume s / root s):
//   virtio-fs, median of 3:  10,000 small files 27.3 / 10.2 (2.7x), 1 GiB + sync 10.5 / 9.8
//                            (1.07x), tar -c of 255 files (1.7 MB) 0.60 / 0.34 (1.8x)
//   virtio-9p, one run (Debian's generic kernel):  small files 25.9 / 6.1 (4.2x), 1 GiB 1.06 /
//                            7.8 (0.14x: large writes go zero-copy from guest pages), tar 0.92 /
//                            0.41 (2.2x)
// Small files cost a FUSE or 9P round trip each (lookup, create, write, release), which TCG makes
// dear; with KVM the ratios shrink.
#include "bench.hpp"

#include <cz/vm/config.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <sstream>

#ifndef CZ_EXE
#error "CZ_EXE: the cz tool"
#endif
#ifndef CZ_SOURCE_DIR
#error "CZ_SOURCE_DIR: the source tree that tar reads"
#endif

namespace fs = std::filesystem;

namespace {

// The container's script: each piece on the volume (/vol) and on the root (/work), timed with
// /proc/uptime, printed as "<piece> <side> <seconds>". $1 files, $2 MiB.
constexpr const char* script = R"sh(
set -e
now() { cut -d' ' -f1 /proc/uptime; }
piece() { # name side dir
  t0=$(now)
  case $1 in
    small) mkdir $3/small; i=0; while [ $i -lt $FILES ]; do echo "file $i" > $3/small/f$i; i=$((i+1)); done; sync ;;
    big)   dd if=/dev/zero of=$3/big bs=1M count=$MIB 2>/dev/null; sync ;;
    tar)   tar -cf - -C $3 src | wc -c > /dev/null ;;
  esac
  t1=$(now)
  echo "$1 $2 $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
}
mkdir -p /work
cp -a /vol/src /work/src
for p in small big tar;
do
  piece $p volume /vol
  piece $p root /work
done
rm -rf /vol/small /vol/big
)sh";

} // namespace

int main(int argc, char** argv) try {
    int runs = argc > 1 ? std::atoi(argv[1]) : 3;
    const fs::path root = argc > 2 ? fs::path(argv[2]) : cz::vm::default_root();
    long files = argc > 3 ? std::atol(argv[3]) : 10000;
    long big_mib = argc > 4 ? std::atol(argv[4]) : 1024;
    if (runs < 1 || files < 1 || big_mib < 1)
        throw std::runtime_error("RUNS, FILES and BIG_MIB must be at least 1");

    cz::bench::temp_dir vol("cz-bench-volume");
    // The tree tar reads: cz's headers and cz-init's sources (a few hundred files, a few MB).
    cz::bench::run_command("mkdir -p " + cz::bench::shell_quote(vol.path + "/src") + " && cp -a " +
                           cz::bench::shell_quote(std::string(CZ_SOURCE_DIR) + "/include") + " " +
                           cz::bench::shell_quote(std::string(CZ_SOURCE_DIR) + "/guest") + " " +
                           cz::bench::shell_quote(vol.path + "/src/"));
    auto tree_files = cz::bench::output_of("find " + cz::bench::shell_quote(vol.path + "/src") +
                                           " -type f | wc -l");
    auto tree_bytes =
        cz::bench::output_of("du -sb " + cz::bench::shell_quote(vol.path + "/src") + " | cut -f1");

    // The scratch disk holds the tree, the small files and the big file, with room to spare.
    auto scratch_mib = big_mib + files / 64 + 512;
    std::string cmd = cz::bench::shell_quote(CZ_EXE) + " --root " +
                      cz::bench::shell_quote(root.string()) + " run --rm --net none --memory 512M" +
                      fmt::format(" --rootfs-size {}M", scratch_mib) +
                      " -e FILES=" + std::to_string(files) + " -e MIB=" + std::to_string(big_mib) +
                      " -v " + cz::bench::shell_quote(vol.path + ":/vol") + " busybox sh -c " +
                      cz::bench::shell_quote(script);

    std::map<std::string, std::vector<double>> seconds; // "<piece> <side>"
    for (int r = 0; r < runs; ++r) {
        std::istringstream lines(cz::bench::output_of(cmd));
        int got = 0;
        for (std::string piece, side; lines >> piece >> side;) {
            double s = 0;
            lines >> s;
            seconds[piece + " " + side].push_back(s);
            ++got;
        }
        if (got != 6)
            throw std::runtime_error("the container printed " + std::to_string(got) +
                                     " of 6 timings: " + cmd);
        cz::bench::run_command("rm -rf " + cz::bench::shell_quote(vol.path + "/small") + " " +
                               cz::bench::shell_quote(vol.path + "/big"));
    }

    const char* transport = std::getenv("CZ_VOLUME_TRANSPORT");
    fmt::print(
        "\ncz run -v against the guest's own ext4 root, median of {} VMs ({}; volume on {})\n",
        runs, transport ? transport : "cz's choice of transport", vol.path);
    fmt::print("  {:<44} {:>10} {:>10} {:>14}\n", "piece", "volume s", "root s", "volume/root");
    struct row {
        const char* key;
        std::string what;
    };
    for (const auto& [key, what] :
         {row{"small", fmt::format("write {} small files", files)},
          row{"big", fmt::format("write one {} MiB file, sync", big_mib)},
          row{"tar", fmt::format("tar -c {} files, {} bytes", tree_files, tree_bytes)}}) {
        double v = cz::bench::median(seconds[std::string(key) + " volume"]);
        double r = cz::bench::median(seconds[std::string(key) + " root"]);
        fmt::print("  {:<44} {:>10.2f} {:>10.2f} {:>13.2f}x\n", what, v, r, r > 0 ? v / r : 0.0);
    }
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_volumes: {}\n", e.what());
    return 1;
}
