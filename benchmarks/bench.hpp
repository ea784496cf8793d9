// benchmarks/bench.hpp — time cz and the tools people use today on the same input, in one run.
//
// Every benchmark follows the same shape: prepare an input, then for each case run cz's command
// and the peer's command alternately `runs` times (alternating spreads the noise of a shared
// machine over both), take the median wall time and the peak RSS of each, and print a table with
// the ratio peer/cz (> 1 means cz is faster). Timing lives here, never in pass/fail tests.
//
// A benchmark also checks, once per run and outside the timing, that cz's output equals the
// peer's (same_output, below): a fast wrong answer must fail loudly, not win.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <functional>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace cz::bench {

// One measured run.
struct sample {
    double seconds = 0;
    double cpu_seconds = 0; // user + system time of the command and its descendants
    long peak_rss_kib = 0;  // the largest of its processes; 0 for in-process measurements
};

// Spawns `path` with `argv` (standard output to /dev/null when `quiet`), waits, and measures wall
// time and the child's peak RSS. Throws when it fails: a benchmark of a failing command measures
// nothing.
inline sample run_spawned(const char* path, const std::vector<std::string>& args, bool quiet) {
    std::vector<char*> argv;
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    if (quiet) ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    auto start = std::chrono::steady_clock::now();
    // posix_spawn, not fork: glibc spawns with CLONE_VM|CLONE_VFORK, so the child never holds a
    // copy of this process's pages and its peak RSS is the command's own.
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, path, &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("posix_spawn failed: " + args.front());
    int status = 0;
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) throw std::runtime_error("wait4 failed");
    }
    auto end = std::chrono::steady_clock::now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string line;
        for (const auto& a : args)
            line += (line.empty() ? "" : " ") + a;
        throw std::runtime_error("benchmark command failed: " + line);
    }
    double cpu = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    return {std::chrono::duration<double>(end - start).count(), cpu, usage.ru_maxrss};
}

// Runs `command` with /bin/sh -c.
inline sample run_command(const std::string& command) {
    return run_spawned("/bin/sh", {"sh", "-c", command}, false);
}

// Runs a program directly, without a shell, its standard output to /dev/null: for a latency of
// a few milliseconds, which /bin/sh's own start (2-3 ms) would blur.
inline sample run_program(const std::vector<std::string>& args) {
    return run_spawned(args.front().c_str(), args, true);
}

// Measures an in-process function.
inline sample run_function(const std::function<void()>& fn) {
    auto start = std::chrono::steady_clock::now();
    fn();
    auto end = std::chrono::steady_clock::now();
    return {std::chrono::duration<double>(end - start).count(), 0, 0};
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The medians of one contender.
struct result {
    std::string name;
    double seconds = 0;
    double cpu_seconds = 0;
    long peak_rss_kib = 0;
};

// A contender: a name, what to run, and (optional) what to do untimed before each run, such as
// removing the previous run's output directory.
struct contender {
    std::string name;
    std::function<sample()> run;
    std::function<void()> prepare = {};
};

inline contender command(std::string name, std::string cmd, std::string prepare_cmd = {}) {
    contender c{std::move(name), [cmd] { return run_command(cmd); }};
    if (!prepare_cmd.empty()) c.prepare = [prepare_cmd] { run_command(prepare_cmd); };
    return c;
}

inline contender program(std::string name, std::vector<std::string> args) {
    return {std::move(name), [args] { return run_program(args); }};
}

// Runs every contender `runs` times, round-robin, and returns their medians in order.
// `before_each` (optional) runs before every measurement, untimed (e.g. `sync`).
inline std::vector<result> compare(const std::vector<contender>& contenders, int runs,
                                   const std::function<void()>& before_each = {}) {
    std::vector<std::vector<double>> times(contenders.size()), cpu(contenders.size());
    std::vector<long> rss(contenders.size(), 0);
    for (int r = 0; r < runs; ++r) {
        for (std::size_t i = 0; i < contenders.size(); ++i) {
            if (contenders[i].prepare) contenders[i].prepare();
            if (before_each) before_each();
            auto s = contenders[i].run();
            times[i].push_back(s.seconds);
            cpu[i].push_back(s.cpu_seconds);
            rss[i] = std::max(rss[i], s.peak_rss_kib);
        }
    }
    std::vector<result> out;
    for (std::size_t i = 0; i < contenders.size(); ++i)
        out.push_back({contenders[i].name, median(times[i]), median(cpu[i]), rss[i]});
    return out;
}

// Prints one table: the first result is cz's; each other row shows the ratio of its time to
// cz's time (> 1: cz is faster). `bytes` (if not 0) adds a throughput column.
inline void print_table(const std::string& title, const std::vector<result>& results,
                        double bytes = 0) {
    fmt::print("\n{}\n", title);
    fmt::print("  {:<34} {:>10} {:>9} {:>12} {:>9} {:>9}\n", "contender", "median s", "MB/s",
               "peak RSS", "cpu s", "time/cz");
    for (const auto& r : results) {
        std::string mbs = bytes > 0 ? fmt::format("{:.0f}", bytes / r.seconds / 1e6) : "-";
        std::string rss = r.peak_rss_kib ? fmt::format("{:.1f} MiB", r.peak_rss_kib / 1024.0) : "-";
        fmt::print("  {:<34} {:>10.3f} {:>9} {:>12} {:>9.3f} {:>8.2f}x\n", r.name, r.seconds, mbs,
                   rss, r.cpu_seconds, r.seconds / results.front().seconds);
    }
    std::fflush(stdout);
}

// The standard output of `command` (run with /bin/sh -c), without its trailing newline. Throws
// when the command fails.
inline std::string output_of(const std::string& command) {
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + command);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
        out.append(buf, n);
    int status = ::pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("command failed: " + command);
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

// `text` as one single-quoted shell word.
inline std::string shell_quote(const std::string& text) {
    std::string q = "'";
    for (char c : text)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// The sha256 (hex) of what `command` writes to standard output; throws when any command of its
// pipeline fails (bash's pipefail), so a failing command never hashes as empty output.
inline std::string sha256_of_output(const std::string& command) {
    std::string out =
        output_of("bash -o pipefail -c " + shell_quote("{ " + command + "; } | sha256sum"));
    if (out.size() < 64) throw std::runtime_error("sha256sum printed nothing: " + command);
    return out.substr(0, 64);
}

// Checks that cz's command and the peer's write the same bytes (compared by sha256), and fails
// the benchmark loudly if not. Run once per benchmark run, outside the timing.
inline void same_output(const std::string& what, const std::string& cz_cmd,
                        const std::string& peer_cmd) {
    std::string mine = sha256_of_output(cz_cmd), theirs = sha256_of_output(peer_cmd);
    if (mine != theirs)
        throw std::runtime_error(fmt::format("OUTPUT MISMATCH ({}): cz wrote sha256 {}, the peer "
                                             "wrote {}\n  cz:   {}\n  peer: {}",
                                             what, mine, theirs, cz_cmd, peer_cmd));
    fmt::print("checked: {}: cz and peer agree (sha256 {})\n", what, mine.substr(0, 16));
    std::fflush(stdout);
}

// A temporary directory removed at scope exit.
struct temp_dir {
    std::string path;
    explicit temp_dir(const char* prefix = "cz-bench") {
        std::string tmpl = std::string("/var/tmp/") + prefix + ".XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::string cmd = "rm -rf '" + path + "'";
        if (std::system(cmd.c_str()) != 0)
            std::fprintf(stderr, "could not remove %s\n", path.c_str());
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

inline bool have_tool(const std::string& tool) {
    return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// The median of each phase that `cz run --timings` wrote into `file` over several runs (lines
// "timings: image 0.8 ms rootfs 0.1 ms ..."; other lines are skipped), in the order first seen.
inline std::vector<std::pair<std::string, double>> phase_medians(const std::string& file) {
    std::vector<std::pair<std::string, std::vector<double>>> phases;
    std::istringstream lines(output_of("cat " + shell_quote(file)));
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("timings:", 0) != 0) continue;
        std::istringstream words(line.substr(8));
        std::string name, unit;
        double value = 0;
        while (words >> name >> value >> unit) {
            auto it = std::find_if(phases.begin(), phases.end(),
                                   [&](const auto& p) { return p.first == name; });
            if (it == phases.end()) it = phases.insert(phases.end(), {name, {}});
            it->second.push_back(value);
        }
    }
    std::vector<std::pair<std::string, double>> out;
    for (const auto& [name, values] : phases)
        out.emplace_back(name, median(values));
    return out;
}

} // namespace cz::bench
