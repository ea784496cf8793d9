// Benchmark: reading every header and all data of a tar of many small files, plain, gzip and zstd:
// `cz tar cat` against `tar -xOf` (GNU tar) and `bsdtar -xOf`, and for the compressed forms
// against the raw decode (`cz decompress`, which is zlib/libzstd alone), in one run.
//
// usage: bench_tar_read [SIZE_MIB] [RUNS]     (defaults: 1024 MiB, 5 runs)
//
// The input is a tar of the small (< 128 KiB) regular files of /usr, in sorted order, until
// SIZE_MIB of data (about 150,000 files for 1 GiB), made by GNU tar. cz reads a plain archive
// file through a mapping and writes contents with writev; a compressed one through the decoder.
// Every command writes to /dev/null; the figure is the median wall time, with throughput in
// uncompressed MB/s and the ratio peer/cz (> 1: cz is faster). The contenders run alternately so
// the noise of a shared machine falls on all of them alike. Before the timing of each form, cz's
// output is checked against GNU tar's (sha256 of everything written): a mismatch fails the run.
#include "bench.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::uint64_t mib = argc > 1 ? std::stoull(argv[1]) : 1024;
    int runs = argc > 2 ? std::stoi(argv[2]) : 5;
    std::string cz = CZ_EXE;
    using namespace cz::bench;
    temp_dir work("cz-bench-tar");
    const std::string& dir = work.path;

    // The file list: regular files of /usr under 128 KiB, sorted, until the size is reached.
    // Made by find/sort/awk rather than in this process: a child's peak RSS includes its
    // parent's at spawn, so the benchmark itself stays small.
    run_command(fmt::format(
        "find /usr -xdev -type f -size -128k -readable -printf '%s %P\\n' 2>/dev/null | "
        "LC_ALL=C sort -k2 | awk -v max={} '{{ if (t >= max) exit; t += $1; "
        "print \"usr/\" substr($0, index($0, \" \") + 1) }}' > {}/list",
        mib << 20, dir));
    std::string tar = dir + "/usr.tar";
    fmt::print("making {} and its .gz and .zst ...\n", tar);
    run_command("tar -cf " + tar + " -C / --no-recursion -T " + dir + "/list");
    run_command("(command -v pigz >/dev/null && pigz -6 -c " + tar + " || gzip -6 -c " + tar +
                ") > " + tar + ".gz && zstd -q -3 -c " + tar + " > " + tar + ".zst");
    double size_mib = double(std::filesystem::file_size(tar)) / (1 << 20);
    fmt::print("archive: {:.0f} MiB uncompressed\n", size_mib);

    for (std::string ext : {"", ".gz", ".zst"}) {
        auto a = tar + ext;
        try {
            same_output("tar cat " + (ext.empty() ? std::string("plain") : ext.substr(1)),
                        cz + " tar cat " + a, "tar -xOf " + a);
        } catch (const std::exception& e) {
            fmt::print(stderr, "bench_tar_read: {}\n", e.what());
            return 1;
        }
        std::vector<contender> cs = {
            command("cz tar cat", cz + " tar cat " + a + " >/dev/null"),
            command("GNU tar -xOf", "tar -xOf " + a + " >/dev/null"),
            command("bsdtar -xOf", "bsdtar -xOf " + a + " >/dev/null"),
        };
        if (!ext.empty())
            cs.push_back(
                command("raw decode (cz decompress)", cz + " decompress " + a + " >/dev/null"));
        print_table(fmt::format("read {} (median of {}; MB/s of uncompressed tar)",
                                ext.empty() ? "plain tar" : ext.substr(1) + " tar", runs),
                    compare(cs, runs), size_mib * (1 << 20));
    }
    return 0;
}
