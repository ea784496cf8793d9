// Benchmark: reading every header and all data of a tar of many small files, plain, gzip and zstd:
// `cz tar cat` against `tar -xOf` (GNU tar) and `bsdtar -xOf`, and for the compressed forms
// against the raw decode (`cz decompress`, which is zlib/libzstd alone), in one run.
//
// usage: bench_tar_read [SIZE_MIB] [RUNS]     (defaults: 1024 MiB, 5 runs)
//
// The input is a tar of the small (< 128 KiB) regular files of /usr, in sorted order, until
// SIZE_MIB of data (about 150,000 files for 1 GiB), made by GNU tar. cz reads a plain archive
// file through a mapping and writes contents with writev; a compressed one through the decoder. Every command writes to /dev/null; the figure is the median wall time, with
// throughput in uncompressed MiB/s and the ratio peer/cz (> 1: cz is faster). The contenders run
// alternately so the noise of a shared machine falls on all of them alike.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <cerrno>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

// Wall time of `sh -c command`; `cpu` gets its user + system time (children included).
double run(const std::string& command, double* cpu = nullptr) {
    auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0)
        if (errno != EINTR) throw std::runtime_error("wait4 failed");
    auto end = std::chrono::steady_clock::now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("command failed: " + command);
    if (cpu)
        *cpu = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    return std::chrono::duration<double>(end - start).count();
}

struct contender {
    std::string name, command;
    std::vector<double> times, cpu;
    static double median_of(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    }
    double median() const { return median_of(times); }
    double median_cpu() const { return median_of(cpu); }
};

void compare(const std::string& title, std::vector<contender> cs, int runs, double mib) {
    for (int i = 0; i < runs; ++i)
        for (auto& c : cs) {
            double cpu = 0;
            c.times.push_back(run(c.command, &cpu));
            c.cpu.push_back(cpu);
        }
    fmt::print("\n{}\n{:<30} {:>8} {:>9} {:>8} {:>8} {:>8}\n", title, "", "wall s", "MiB/s",
               "vs cz", "cpu s", "vs cz");
    double cz = cs.front().median(), cz_cpu = cs.front().median_cpu();
    for (auto& c : cs)
        fmt::print("{:<30} {:>8.3f} {:>9.1f} {:>7.2f}x {:>8.3f} {:>7.2f}x\n", c.name, c.median(),
                   mib / c.median(), c.median() / cz, c.median_cpu(),
                   c.median_cpu() / std::max(cz_cpu, 1e-3));
}

} // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = argc > 1 ? std::stoull(argv[1]) : 1024;
    int runs = argc > 2 ? std::stoi(argv[2]) : 5;
    std::string cz = CZ_EXE;
    char tmpl[] = "/tmp/cz-bench-tar.XXXXXX";
    if (!::mkdtemp(tmpl)) return 1;
    std::string dir = tmpl;

    // The file list: regular files of /usr, sorted walk, until the size is reached.
    std::vector<std::string> files;
    std::uint64_t total = 0;
    {
        std::vector<std::filesystem::path> all;
        for (auto it = std::filesystem::recursive_directory_iterator(
                 "/usr", std::filesystem::directory_options::skip_permission_denied);
             it != std::filesystem::recursive_directory_iterator(); ++it) {
            std::error_code ec;
            if (it->is_regular_file(ec) && !it->is_symlink(ec)) all.push_back(it->path());
        }
        std::sort(all.begin(), all.end());
        std::ofstream list(dir + "/list");
        for (const auto& p : all) {
            if (total >= (mib << 20)) break;
            std::error_code ec;
            auto size = std::filesystem::file_size(p, ec);
            if (ec || size >= (128u << 10) || ::access(p.c_str(), R_OK) != 0) continue;
            list << p.string().substr(1) << '\n';
            total += size;
            files.push_back(p);
        }
    }
    std::string tar = dir + "/usr.tar";
    fmt::print("making {} ({} files, {:.0f} MiB of data) and its .gz and .zst ...\n", tar,
               files.size(), double(total) / (1 << 20));
    run("tar -cf " + tar + " -C / --no-recursion -T " + dir + "/list");
    run("(command -v pigz >/dev/null && pigz -6 -c " + tar + " || gzip -6 -c " + tar + ") > " + tar +
        ".gz && zstd -q -3 -c " + tar + " > " + tar + ".zst");
    double size_mib = double(std::filesystem::file_size(tar)) / (1 << 20);
    fmt::print("archive: {:.0f} MiB uncompressed, {} entries\n", size_mib, files.size());

    for (std::string ext : {"", ".gz", ".zst"}) {
        auto a = tar + ext;
        std::vector<contender> cs = {
            {"cz tar cat", cz + " tar cat " + a + " >/dev/null", {}, {}},
            {"GNU tar -xOf", "tar -xOf " + a + " >/dev/null", {}, {}},
            {"bsdtar -xOf", "bsdtar -xOf " + a + " >/dev/null", {}, {}},
        };
        if (!ext.empty())
            cs.push_back({"raw decode (cz decompress)", cz + " decompress " + a + " >/dev/null", {}, {}});
        compare(fmt::format("read {} (median of {}, uncompressed MiB/s)",
                            ext.empty() ? "plain tar" : ext.substr(1) + " tar", runs),
                cs, runs, size_mib);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
