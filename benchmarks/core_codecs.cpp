// Benchmark: cz/core's sha256, gzip and zstd decoders against sha256sum, gzip -dc, pigz -dc,
// igzip -dc (ISA-L) and zstd -dc, on the same generated input (1 GiB by default), in one run.
//
// usage: bench_core_codecs [SIZE_MIB] [RUNS]     (defaults: 1024 MiB, 5 runs)
//
// The input mixes text-like and random blocks so that it compresses about as well as an image
// layer does (~3:1). cz runs as its CLI (`cz digest`, `cz decompress`), so both sides pay the
// same process start-up and write to /dev/null the same way. Before the timing, each of cz's
// results is checked against the peer's (digest strings, sha256 of decoded output): a mismatch
// ends the benchmark with an error.
#include "bench.hpp"

#include <cstdint>
#include <fstream>
#include <random>

namespace {

void generate_input(const std::string& path, std::uint64_t size) {
    std::ofstream out(path, std::ios::binary);
    std::mt19937_64 rng(2026);
    static const char* words[] = {"container ", "layer ", "ext4 ",     "virtio ",
                                  "kernel ",    "tar ",   "sha256 ",   "registry ",
                                  "\n",         "image ", "/usr/lib/", "0x1f8b "};
    std::string block(1 << 16, '\0');
    for (std::uint64_t done = 0; done < size; done += block.size()) {
        if (rng() % 4 == 0) {
            for (auto& c : block)
                c = char(rng());
        } else {
            std::size_t i = 0;
            while (i < block.size()) {
                const char* w = words[rng() % std::size(words)];
                for (; *w && i < block.size(); ++w)
                    block[i++] = *w;
            }
        }
        out.write(block.data(),
                  std::streamsize(std::min<std::uint64_t>(block.size(), size - done)));
    }
}

} // namespace

int main(int argc, char** argv) {
    using namespace cz::bench;
    std::uint64_t mib = argc > 1 ? std::stoull(argv[1]) : 1024;
    int runs = argc > 2 ? std::stoi(argv[2]) : 5;
    std::string cz = CZ_EXE;

    temp_dir dir("cz-bench-codecs");
    std::string input = dir.path + "/input";
    fmt::print("generating {} MiB of input in {} ...\n", mib, dir.path);
    generate_input(input, mib << 20);
    double bytes = double(mib << 20);
    run_command(fmt::format("gzip -6 -c {0} > {0}.gz && zstd -q -3 -c {0} > {0}.zst", input));

    // Correctness first, once, untimed: cz's digest is sha256sum's, and cz's decoders write the
    // bytes the peers write.
    std::string cz_digest = output_of(cz + " digest " + input);
    std::string peer_digest = output_of("sha256sum " + input).substr(0, 64);
    if (cz_digest.substr(0, 7 + 64) != "sha256:" + peer_digest) {
        fmt::print(stderr, "OUTPUT MISMATCH (sha256): cz digest printed '{}', sha256sum '{}'\n",
                   cz_digest, peer_digest);
        return 1;
    }
    fmt::print("checked: sha256: cz digest equals sha256sum ({})\n", peer_digest.substr(0, 16));
    try {
        same_output("gzip decode", cz + " decompress " + input + ".gz",
                    "gzip -dc " + input + ".gz");
        same_output("zstd decode", cz + " decompress " + input + ".zst",
                    "zstd -q -dc " + input + ".zst");
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench_core_codecs: {}\n", e.what());
        return 1;
    }

    print_table(fmt::format("sha256 of {} MiB (median of {})", mib, runs),
                compare({command("cz digest", cz + " digest " + input + " >/dev/null"),
                         command("sha256sum", "sha256sum " + input + " >/dev/null")},
                        runs),
                bytes);

    std::vector<contender> gz = {
        command("cz decompress (gzip)", cz + " decompress " + input + ".gz >/dev/null"),
        command("gzip -dc", "gzip -dc " + input + ".gz >/dev/null")};
    if (have_tool("pigz"))
        gz.push_back(command("pigz -dc", "pigz -dc " + input + ".gz >/dev/null"));
    // ISA-L's own command-line decoder: the library cz decodes gzip with, without cz around it.
    if (have_tool("igzip"))
        gz.push_back(command("igzip -dc", "igzip -dc " + input + ".gz >/dev/null"));
    print_table(fmt::format("gzip decode to {} MiB (median of {})", mib, runs), compare(gz, runs),
                bytes);

    print_table(
        fmt::format("zstd decode to {} MiB (median of {})", mib, runs),
        compare({command("cz decompress (zstd)", cz + " decompress " + input + ".zst >/dev/null"),
                 command("zstd -dc", "zstd -q -dc " + input + ".zst >/dev/null")},
                runs),
        bytes);
    return 0;
}
