// container_exec — `cz exec ID true` end to end into a detached container (cz run -d), median of
// RUNS, against the agent's raw exec latency measured in the same run as benchmarks/agent_rpc.cpp
// measures it: CreateProcess + StartProcess + WaitProcess of `true` in a running container, sent
// by a cz::agent::client straight to cz-init (here the client of a cz::container::run of the same
// image and kernel, over the same virtio-serial transport). Goal: at most 1.5x.
//
// Where the time goes, each measured in the same run, alternating with `cz exec`:
//   cli start-up   `cz version`: exec of the cz program, its dynamic linking and static
//                  initialisers, CLI11's parsing;
//   library call   cz::container::exec_in_container() from this process: the state file read,
//                  the control socket, the supervisor's streams and its Create/Start/Wait;
// so cz exec - library call is what the CLI adds, and library call - raw what the supervisor and
// its socket add.
//
// usage: bench_container_exec [RUNS] [ROOT]
//   ROOT: a cz root with Debian's kernel and a `busybox` image (scripts/demo makes both in the
//   default root, which is what ROOT defaults to).
#include "bench.hpp"

#include <cz/container/live.hpp>
#include <cz/container/run.hpp>
#include <cz/container/supervisor.hpp>
#include <cz/vm.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <fcntl.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#ifndef CZ_EXE
#error "CZ_EXE: the cz tool"
#endif

namespace fs = std::filesystem;
namespace ct = cz::container;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

template <std::size_t N>
void put(char (&field)[N], std::string_view value) {
    std::error_code ec;
    cz::agent::set_string(field, value, ec);
    if (ec) throw std::runtime_error("a field too long for the agent: " + std::string(value));
}

// On the run's thread: `runs` Create + Start + Wait of `true` in the running container, each
// timed into `out`; Delete after each, untimed; then SIGKILL to the container, which ends the run.
asio::awaitable<void> raw_loop(ct::live_container& live, int runs, std::vector<double>& out,
                               std::string& failure) {
    using asio::experimental::as_tuple;
    auto spec = nlohmann::json::parse(live.spec_json);
    auto process = spec.at("process");
    process["args"] = {"true"};
    process["terminal"] = false;
    const std::string config = process.dump();
    for (int i = 0; i < runs && failure.empty(); ++i) {
        auto id = fmt::format("raw{}", i);
        cz_agent_CreateProcess create{};
        put(create.container_id, live.id);
        put(create.process_id, id);
        create.config.data = reinterpret_cast<const std::byte*>(config.data());
        create.config.size = static_cast<pb_size_t>(config.size());
        cz_agent_StartProcess start{};
        put(start.container_id, live.id);
        put(start.process_id, id);
        cz_agent_WaitProcess wait{};
        put(wait.container_id, live.id);
        put(wait.process_id, id);
        auto t0 = clock_type::now();
        auto [e1, r1] = co_await live.agent.async_call(create, as_tuple(asio::use_awaitable));
        auto [e2, r2] = co_await live.agent.async_call(start, as_tuple(asio::use_awaitable));
        auto [e3, r3] = co_await live.agent.async_call(wait, as_tuple(asio::use_awaitable));
        out.push_back(ms_since(t0));
        if (e1 || e2 || e3 || r3.result.wait_process.status != 0)
            failure = "raw exec " + id + " failed";
        cz_agent_DeleteProcess del{};
        put(del.container_id, live.id);
        put(del.process_id, id);
        co_await live.agent.async_call(del, as_tuple(asio::use_awaitable));
    }
    cz_agent_KillProcess kill{};
    put(kill.container_id, live.id);
    put(kill.process_id, live.id);
    kill.signal = 9;
    kill.all = true;
    co_await live.agent.async_call(kill, as_tuple(asio::use_awaitable));
}

// `runs` raw execs (raw_loop) in a container of its own VM. The milliseconds of each.
std::vector<double> raw_exec_ms(const fs::path& root, int runs) {
    std::vector<double> out;
    std::string failure;
    ct::run_options o;
    o.root = root;
    o.image = "busybox";
    o.spec.args = {"sleep", "1000000"};
    o.network = ct::network_mode::none;
    o.stdout_fd = -1;
    o.stderr_fd = -1;
    o.forward_signals = false;
    o.on_output = [](int, std::span<const std::byte>) {};
    o.on_started = [&](ct::live_container& live) {
        asio::co_spawn(live.io, raw_loop(live, runs, out, failure), asio::detached);
    };
    std::error_code ec;
    std::string why;
    ct::run(o, ec, &why);
    if (ec) throw std::runtime_error("the raw exec's container: " + why + ": " + ec.message());
    if (!failure.empty()) throw std::runtime_error(failure);
    return out;
}

} // namespace

int main(int argc, char** argv) try {
    int runs = argc > 1 ? std::atoi(argv[1]) : 100;
    const fs::path root = argc > 2 ? fs::path(argv[2]) : cz::vm::default_root();
    if (runs < 1) throw std::runtime_error("RUNS must be at least 1");
    const std::string cz =
        cz::bench::shell_quote(CZ_EXE) + " --root " + cz::bench::shell_quote(root.string());

    auto id = cz::bench::output_of(cz + " run -d --net none busybox sleep 1000000");
    struct cleanup {
        std::string cmd;
        ~cleanup() { std::system(cmd.c_str()); }
    } remove_it{cz + " rm -f " + id + " >/dev/null"};
    // Spawned directly, as a shell runs a command: through `sh -c` the figures would count
    // another program's start.
    const std::vector<std::string> exec_args = {CZ_EXE, "--root", root.string(),
                                                "exec", id,       "true"};
    cz::bench::run_program(exec_args); // once untimed: the page cache, the supervisor's first exec

    cz::unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    auto library_call = [&] {
        return cz::bench::run_function([&] {
            ct::exec_request r;
            r.args = {"true"};
            std::error_code ec;
            std::string why;
            int code = ct::exec_in_container(root, id, r, -1, null.get(), null.get(), ec, &why);
            if (ec || code != 0)
                throw std::runtime_error("exec_in_container: " + why + ": " + ec.message());
        });
    };
    auto results =
        cz::bench::compare({cz::bench::program("cz exec ID true", exec_args),
                            {"library: exec_in_container()", library_call},
                            cz::bench::program("cli start-up: cz version", {CZ_EXE, "version"})},
                           runs);

    // The raw figure: its own VM (the supervisor holds the detached container's agent).
    auto raw = raw_exec_ms(root, runs);
    double raw_ms = cz::bench::median(raw);
    double exec_ms = results[0].seconds * 1e3, lib_ms = results[1].seconds * 1e3,
           cli_ms = results[2].seconds * 1e3;

    cz::bench::print_table(
        fmt::format("cz exec, median of {} ({})", runs,
                    cz::vm::resolve_accel(cz::vm::accel_mode::automatic) == cz::vm::accel_mode::kvm
                        ? "KVM"
                        : "TCG"),
        results);
    fmt::print("  {:<44} {:8.2f} ms\n", "raw agent exec: Create+Start+Wait of true", raw_ms);
    fmt::print("  {:<44} {:8.2f}x  (goal: at most 1.5x)\n", "cz exec / raw agent exec",
               exec_ms / raw_ms);
    fmt::print("  where the time goes (medians, ms):\n");
    fmt::print("    {:<42} {:8.2f}\n", "raw agent exec", raw_ms);
    fmt::print("    {:<42} {:8.2f}\n", "supervisor + control socket + state read", lib_ms - raw_ms);
    fmt::print("    {:<42} {:8.2f}  (cz version alone: {:.2f})\n", "the cz process (CLI)",
               exec_ms - lib_ms, cli_ms);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "bench_container_exec: {}\n", e.what());
    return 1;
}
