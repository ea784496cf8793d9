// The agent's costs, over each transport, each against its floor measured in the same run: one
// VM per transport (QEMU, TCG here) with cz-init as PID 1, driven by cz::agent::client.
//
//   rpc      the round trip of the cheapest RPC (Stat of "/": the protocol has no no-op), median
//            of RUNS
//   exec     CreateProcess + StartProcess + WaitProcess of `true` exec'd into a running container,
//            median of RUNS, against the floor: the same `true` forked, exec'd and waited for RUNS
//            times by a program in that container (agent_rpc_guest fork-exec), in alternating
//            batches. Goal: within 1.5x.
//            The same three requests sent at once (cz-init serves them in order), again against
//            the floor.
//   create   the same for a new container each time (namespaces, mounts, pivot_root), for scale
//   stdout   `head -c MiB /dev/zero` as a process whose stdout cz-init streams to the host, against
//            the same transport raw: `head ... | agent_rpc_guest to-vsock|to-serial`, which copies
//            the pipe to a vsock connection or a second virtio-serial port the host reads. Timed
//            from the first byte the host receives to the last, ROUNDS times, alternating; both
//            checked (byte count, all zeros). Goal: the protocol costs at most 10%. Busybox's
//            head writes 4 KiB at a time, which makes it the bottleneck under TCG; the same again
//            with agent_rpc_guest's `zeros` (64 KiB writes) shows what the transport and the
//            protocol cost. Per MiB, as vsock_throughput does (qemu_cpu.hpp): CPU of QEMU's vCPU
//            thread, of QEMU's other threads and of this process, which a busy machine disturbs
//            less than wall time.
//
// usage: agent_rpc [RUNS] [MiB] [ROUNDS]   (default 100, 256, 1; quick: 10 16 1). Run through
//        meson, which builds the image's helper and cz-init and sets the environment:
//        `meson test -C build --benchmark 'agent rpc' --test-args '10 16 1'`.
#include "../tests/guest/vm/agent_harness.hpp"
#include "bench.hpp"
#include "qemu_cpu.hpp"

#include <cz/agent/client.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

namespace agent = cz::agent;
using namespace cz::guest::test;
using asio::experimental::as_tuple;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
    int runs = 100;
    std::uint64_t mib = 256;
    int rounds = 1;
};

// The vsock port agent_rpc_guest listens on for the raw figure, and the serial port's name.
constexpr std::uint32_t raw_vsock_port = 5000;
const std::string raw_serial_port = "bench";

struct throughput {
    double mib_per_s = 0;
    cz::bench::cpu_split cpu; // over the whole transfer
};

// What writes the zeros: busybox's `head -c` (4 KiB per write), or agent_rpc_guest's `zeros`
// (64 KiB per write: the pipe's capacity).
enum class producer { head, zeros };

// One producer's transfers, round by round: raw and through the agent.
struct transfers {
    std::vector<throughput> raw, agent;
};

// The time each of Create, Start and Wait took.
struct phases {
    std::vector<double> create_ms, start_ms, wait_ms;
};

struct figures {
    std::vector<double> rpc_ms, exec_ms, exec_pipelined_ms, create_ms;
    phases exec_phases, create_phases;
    std::vector<double> floor_ms;
    transfers head, zeros;
};

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

// Create + Start + Wait of one process, each timed into `p`; returns its exit status.
asio::awaitable<int> run_process(agent::client& c, const std::string& container,
                                 const std::string& process, const std::string& config, phases& p) {
    auto t0 = clock_type::now();
    co_await call(c, create_request(container, process, config), "create " + process);
    p.create_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    co_await call(c, process_request<cz_agent_StartProcess>(container, process),
                  "start " + process);
    p.start_ms.push_back(ms_since(t0));
    t0 = clock_type::now();
    auto w = co_await call(c, process_request<cz_agent_WaitProcess>(container, process),
                           "wait " + process);
    p.wait_ms.push_back(ms_since(t0));
    co_return w.result.wait_process.status;
}

// The same three requests sent at once, without waiting for an answer in between: cz-init serves
// a connection's requests in the order they arrive, so Start finds the process Create made, and
// the three cost one round trip. Every call runs to its answer (none is abandoned: the answer to
// a call given up on would end the connection). Returns the exit status.
asio::awaitable<int> run_process_pipelined(agent::client& c, const std::string& container,
                                           const std::string& process, const std::string& config) {
    struct outcome {
        std::error_code ec;
        agent::response r;
    };
    std::array<outcome, 3> out;
    int left = 3;
    asio::steady_timer all_answered(co_await asio::this_coro::executor,
                                    asio::steady_timer::time_point::max());
    auto answer = [&](int i) {
        return [&, i](std::error_code ec, agent::response r) {
            out[std::size_t(i)] = {ec, r};
            if (--left == 0) all_answered.cancel();
        };
    };
    c.async_call(create_request(container, process, config), answer(0));
    c.async_call(process_request<cz_agent_StartProcess>(container, process), answer(1));
    c.async_call(process_request<cz_agent_WaitProcess>(container, process), answer(2));
    while (left > 0)
        co_await all_answered.async_wait(as_tuple(asio::use_awaitable));
    const char* names[] = {"create", "start", "wait"};
    for (std::size_t i = 0; i < out.size(); ++i)
        check_answer(out[i].ec, out[i].r, fmt::format("{} {} (sent at once)", names[i], process));
    co_return out[2].r.result.wait_process.status;
}

asio::awaitable<void> delete_process(agent::client& c, const std::string& container,
                                     const std::string& process) {
    co_await call(c, process_request<cz_agent_DeleteProcess>(container, process),
                  "delete " + process);
}

std::vector<std::string> args_of(std::initializer_list<std::string> words) {
    return words;
}

// Reads from `read_some` (an awaitable of (error_code, size_t) filling `buf`) until eof or
// `limit` bytes; checks they are zeros. Returns the bytes and the time from the first one.
template <class ReadSome>
asio::awaitable<std::pair<std::uint64_t, double>> drain(ReadSome read_some, std::uint64_t limit,
                                                        const std::string& what) {
    std::vector<std::byte> buf(256 << 10);
    std::uint64_t total = 0;
    clock_type::time_point first{};
    while (total < limit) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), limit - total));
        auto [ec, n] = co_await read_some(std::span(buf.data(), want));
        if (n > 0 && total == 0) first = clock_type::now();
        if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n),
                        [](std::byte b) { return b != std::byte{0}; }))
            throw std::runtime_error(what + ": a byte that is not zero near offset " +
                                     std::to_string(total));
        total += n;
        if (ec) break;
    }
    co_return std::pair{total, total ? ms_since(first) / 1e3 : 0.0};
}

class bench_session {
public:
    bench_session(asio::io_context& io, agent::client& c, const agent_vm& vm, const settings& s,
                  figures& f)
        : io_(io), c_(c), vm_(vm), s_(s), f_(f) {}

    asio::awaitable<void> run_all(asio::generic::stream_protocol::socket* serial_raw) {
        serial_raw_ = serial_raw;
        co_await c_.async_handshake(asio::use_awaitable);
        c_.async_run([](std::error_code) {});
        // cz-init answered: the guest has booted, its vCPU thread is the busiest.
        cpu_.emplace(vm_.qemu_pid());

        // rpc: one request at a time.
        auto stat = stat_request("/");
        for (int i = 0; i < s_.runs; ++i) {
            auto t0 = clock_type::now();
            co_await call(c_, stat, "stat /");
            f_.rpc_ms.push_back(ms_since(t0));
        }

        // The container the execs go into; its init sleeps. The VM's /dev and a sysfs: the raw
        // virtio-serial copy opens the port by name.
        nlohmann::json mounts = nlohmann::json::array(
            {{{"destination", "/dev"},
              {"type", "bind"},
              {"source", "/dev"},
              {"options", {"rbind"}}},
             {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}}});
        auto init_config = container_config(args_of({"/bin/sleep", "1000000"}), mounts);
        co_await call(c_, create_request("bench", "bench", init_config), "create the container");
        co_await call(c_, process_request<cz_agent_StartProcess>("bench", "bench"),
                      "start the container");

        // exec, and its floor in the same container, in alternating batches: a busy machine's
        // noise falls on both alike.
        auto true_config = process_config(args_of({"/bin/true"}));
        const int batches = std::min(s_.runs, 10);
        for (int b = 0, done = 0; b < batches; ++b) {
            int count = (s_.runs - done) / (batches - b);
            for (int i = done; i < done + count; ++i) {
                auto id = fmt::format("true{}", i);
                auto t0 = clock_type::now();
                int status = co_await run_process(c_, "bench", id, true_config, f_.exec_phases);
                f_.exec_ms.push_back(ms_since(t0));
                if (status != 0)
                    throw std::runtime_error("true exited with " + std::to_string(status));
                co_await delete_process(c_, "bench", id);
                id = fmt::format("piped{}", i);
                t0 = clock_type::now();
                status = co_await run_process_pipelined(c_, "bench", id, true_config);
                f_.exec_pipelined_ms.push_back(ms_since(t0));
                if (status != 0)
                    throw std::runtime_error("true exited with " + std::to_string(status));
                co_await delete_process(c_, "bench", id);
            }
            co_await measure_floor(b, count);
            done += count;
        }

        // create: a new container each time.
        auto true_container = container_config(args_of({"/bin/true"}));
        for (int i = 0; i < s_.runs; ++i) {
            auto id = fmt::format("c{}", i);
            auto t0 = clock_type::now();
            int status = co_await run_process(c_, id, id, true_container, f_.create_phases);
            f_.create_ms.push_back(ms_since(t0));
            if (status != 0) throw std::runtime_error("true exited with " + std::to_string(status));
            co_await delete_process(c_, id, id);
        }

        for (int round = 0; round < s_.rounds; ++round) {
            for (auto p : {producer::head, producer::zeros}) {
                auto& t = p == producer::head ? f_.head : f_.zeros;
                t.raw.push_back(co_await raw_stdout(p, round));
                t.agent.push_back(co_await agent_stdout(p, round));
            }
        }
        co_await call(c_, cz_agent_Shutdown(cz_agent_Shutdown_init_zero), "shutdown");
    }

private:
    std::uint32_t next_stream() { return next_stream_++; }

    // `count` fork+exec+wait of `true` by agent_rpc_guest, each time one line (microseconds).
    asio::awaitable<void> measure_floor(int batch, int count) {
        std::vector<std::string> args{"/bin/agent_rpc_guest", "fork-exec", std::to_string(count),
                                      "/bin/true"};
        auto [text, status] = co_await capture_output(c_, "bench", fmt::format("floor{}", batch),
                                                      process_config(args), next_stream());
        std::istringstream lines(text);
        double us = 0;
        int got = 0;
        for (; lines >> us; ++got)
            f_.floor_ms.push_back(us / 1e3);
        if (status != 0 || got != count)
            throw std::runtime_error("agent_rpc_guest fork-exec: status " + std::to_string(status) +
                                     ", output '" + text + "'");
    }

    std::vector<std::string> producer_args(producer p) const {
        auto bytes = std::to_string(s_.mib << 20);
        if (p == producer::head) return args_of({"/bin/head", "-c", bytes, "/dev/zero"});
        return args_of({"/bin/agent_rpc_guest", "zeros", bytes});
    }

    throughput rate(double seconds, const cz::bench::cpu_split& cpu) const {
        return {double(s_.mib) / seconds, cpu};
    }

    // The transport without the protocol: PRODUCER | agent_rpc_guest to-..., read by us directly.
    asio::awaitable<throughput> raw_stdout(producer p, int round) {
        auto id = fmt::format("raw{}", round);
        const std::uint64_t bytes = s_.mib << 20;
        std::string script;
        for (const auto& word : producer_args(p))
            script += word + " ";
        script += "| /bin/agent_rpc_guest " + (vm_.via() == transport::vsock
                                                   ? "to-vsock " + std::to_string(raw_vsock_port)
                                                   : "to-serial " + raw_serial_port);
        auto config = process_config(args_of({"/bin/sh", "-c", script}));
        auto before = cpu_->now();
        co_await call(c_, create_request("bench", id, config), "create " + id);
        co_await call(c_, process_request<cz_agent_StartProcess>("bench", id), "start " + id);
        std::pair<std::uint64_t, double> got;
        auto ex = co_await asio::this_coro::executor;
        if (vm_.via() == transport::vsock) {
            // Until agent_rpc_guest listens, the guest refuses the connection.
            std::optional<asio::generic::stream_protocol::socket> s;
            asio::steady_timer t(ex);
            auto deadline = clock_type::now() + std::chrono::seconds(30);
            for (;;) {
                std::error_code ec;
                auto dialled = vm_.vsock_host(io_).dial(raw_vsock_port, ec);
                if (!ec) {
                    s.emplace(std::move(dialled));
                    break;
                }
                if (clock_type::now() > deadline)
                    throw std::runtime_error("dialling agent_rpc_guest: " + ec.message());
                t.expires_after(std::chrono::milliseconds(5));
                co_await t.async_wait(asio::use_awaitable);
            }
            got = co_await drain(
                [&](std::span<std::byte> b) {
                    return s->async_read_some(asio::buffer(b.data(), b.size()),
                                              as_tuple(asio::use_awaitable));
                },
                ~0ull, "raw vsock");
        } else {
            got = co_await drain(
                [&](std::span<std::byte> b) {
                    return serial_raw_->async_read_some(asio::buffer(b.data(), b.size()),
                                                        as_tuple(asio::use_awaitable));
                },
                bytes, "raw virtio-serial");
        }
        auto cpu = cpu_->now() - before;
        auto w =
            co_await call(c_, process_request<cz_agent_WaitProcess>("bench", id), "wait " + id);
        co_await delete_process(c_, "bench", id);
        if (got.first != bytes || w.result.wait_process.status != 0)
            throw std::runtime_error(fmt::format("raw {}: {} bytes of {}, status {}",
                                                 transport_name(vm_.via()), got.first, bytes,
                                                 w.result.wait_process.status));
        co_return rate(got.second, cpu);
    }

    // The producer's stdout as a stream of the agent connection.
    asio::awaitable<throughput> agent_stdout(producer p, int round) {
        auto id = fmt::format("stdout{}", round);
        const std::uint64_t bytes = s_.mib << 20;
        std::error_code ec;
        auto out = next_stream();
        c_.open_stream(out, ec);
        auto config = process_config(producer_args(p));
        auto before = cpu_->now();
        co_await call(c_, create_request("bench", id, config, 0, out, 0), "create " + id);
        co_await call(c_, process_request<cz_agent_StartProcess>("bench", id), "start " + id);
        auto got = co_await drain(
            [&](std::span<std::byte> b) {
                return c_.async_read_stream(out, b, as_tuple(asio::use_awaitable));
            },
            ~0ull, "stdout");
        auto cpu = cpu_->now() - before;
        auto w =
            co_await call(c_, process_request<cz_agent_WaitProcess>("bench", id), "wait " + id);
        co_await delete_process(c_, "bench", id);
        c_.close_stream(out);
        if (got.first != bytes || w.result.wait_process.status != 0)
            throw std::runtime_error(fmt::format("stdout over {}: {} bytes of {}, status {}",
                                                 transport_name(vm_.via()), got.first, bytes,
                                                 w.result.wait_process.status));
        co_return rate(got.second, cpu);
    }

    asio::io_context& io_;
    agent::client& c_;
    const agent_vm& vm_;
    const settings& s_;
    figures& f_;
    std::optional<cz::bench::qemu_cpu_meter> cpu_;
    asio::generic::stream_protocol::socket* serial_raw_ = nullptr;
    std::uint32_t next_stream_ = 1;
};

figures measure(transport via, const std::filesystem::path& image, const settings& s) {
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.via = via;
    cfg.image = image;
    cfg.log_level = "warn"; // the console is slow under TCG: no line per process
    if (via == transport::serial) cfg.serial_ports = {raw_serial_port};
    agent_vm vm(ctx, cfg);
    vm.start();
    figures f;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            asio::io_context io;
            std::error_code cec;
            auto socket = vm.connect(io, cec);
            if (cec) throw std::runtime_error("no connection to cz-init: " + cec.message());
            std::optional<asio::generic::stream_protocol::socket> serial_raw;
            if (via == transport::serial) {
                asio::local::stream_protocol::socket s(io);
                s.connect(asio::local::stream_protocol::endpoint(
                    vm.serial_socket(raw_serial_port).string()));
                serial_raw.emplace(std::move(s));
            }
            agent::client c(std::move(socket));
            bench_session b(io, c, vm, s, f);
            run_talk(io, c, b.run_all(serial_raw ? &*serial_raw : nullptr));
        },
        std::chrono::minutes(30), ec);
    if (ec || !status.clean())
        throw std::runtime_error(fmt::format("the {} VM: {} ({})\n{}", transport_name(via),
                                             ec.message(), status.describe(), vm.vm().console()));
    return f;
}

std::string spread(const std::vector<double>& v) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return fmt::format("{:8.2f} ms  (min {:.2f}, max {:.2f})", cz::bench::median(v), *lo, *hi);
}

void print_transfers(const std::string& title, const transfers& t, const settings& s) {
    fmt::print("  {}, {} round(s)\n    per MiB, in CPU ms: QEMU's vCPU thread, QEMU's other "
               "threads, this process (and the vCPU's wait for a host CPU)\n",
               title, t.raw.size());
    std::vector<double> ratios, agent_rate, raw_rate, vcpu_ratios;
    double m = double(s.mib);
    for (std::size_t i = 0; i < t.raw.size(); ++i) {
        for (auto [name, x] : {std::pair{"raw", t.raw[i]}, std::pair{"agent", t.agent[i]}})
            fmt::print("    {:<6} {:8.1f} MiB/s   vcpu {:6.2f}  qemu {:6.2f}  host {:6.2f}  (wait "
                       "{:.2f})\n",
                       name, x.mib_per_s, 1e3 * x.cpu.vcpu / m, 1e3 * x.cpu.qemu_rest / m,
                       1e3 * x.cpu.host / m, 1e3 * x.cpu.vcpu_wait / m);
        ratios.push_back(t.agent[i].mib_per_s / t.raw[i].mib_per_s);
        vcpu_ratios.push_back(t.agent[i].cpu.vcpu / t.raw[i].cpu.vcpu);
        agent_rate.push_back(t.agent[i].mib_per_s);
        raw_rate.push_back(t.raw[i].mib_per_s);
    }
    fmt::print("    agent {:.1f} MiB/s, raw {:.1f} MiB/s: {:.2f} of raw (goal: at least 0.90); "
               "guest CPU (vcpu) agent/raw {:.2f}\n",
               cz::bench::median(agent_rate), cz::bench::median(raw_rate),
               cz::bench::median(ratios), cz::bench::median(vcpu_ratios));
}

void print_phases(const phases& p) {
    fmt::print("    median Create {:.2f} ms, Start {:.2f} ms, Wait {:.2f} ms\n",
               cz::bench::median(p.create_ms), cz::bench::median(p.start_ms),
               cz::bench::median(p.wait_ms));
}

void report(transport via, const figures& f, const settings& s) {
    fmt::print("\n{} (median of {})\n", transport_name(via), s.runs);
    fmt::print("  {:<44} {}\n", "no-op RPC round trip (Stat /)", spread(f.rpc_ms));
    fmt::print("  {:<44} {}\n", "exec `true`: Create+Start+Wait, into a container",
               spread(f.exec_ms));
    print_phases(f.exec_phases);
    fmt::print("  {:<44} {}\n", "floor: fork+exec+wait `true` in the guest", spread(f.floor_ms));
    fmt::print("  {:<44} {:8.2f}x  (goal: at most 1.5x)\n", "exec / floor",
               cz::bench::median(f.exec_ms) / cz::bench::median(f.floor_ms));
    fmt::print("  {:<44} {}\n", "exec `true`, the three requests sent at once",
               spread(f.exec_pipelined_ms));
    fmt::print("  {:<44} {:8.2f}x  (goal: at most 1.5x)\n", "exec sent at once / floor",
               cz::bench::median(f.exec_pipelined_ms) / cz::bench::median(f.floor_ms));
    fmt::print("  {:<44} {}\n", "new container running `true`", spread(f.create_ms));
    print_phases(f.create_phases);
    print_transfers(fmt::format("stdout of `head -c {}m /dev/zero` (busybox: 4 KiB writes)", s.mib),
                    f.head, s);
    print_transfers(fmt::format("stdout of {} MiB of zeros in 64 KiB writes", s.mib), f.zeros, s);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) try {
    settings s;
    if (argc > 1) s.runs = std::max(std::atoi(argv[1]), 1);
    if (argc > 2) s.mib = std::max<std::uint64_t>(std::strtoull(argv[2], nullptr, 10), 1);
    if (argc > 3) s.rounds = std::max(std::atoi(argv[3]), 1);
    auto helper = cz::vm::test::required_env_path("CZ_AGENT_BENCH_GUEST");
    auto image = busybox_image("agent-bench-image", {{"bin/agent_rpc_guest", helper}});
    fmt::print("agent_rpc: {} runs, {} MiB x {} round(s), accel {}, guest kernel {}\n", s.runs,
               s.mib, s.rounds,
               cz::vm::resolve_accel(cz::vm::accel_mode::automatic) == cz::vm::accel_mode::kvm
                   ? "KVM"
                   : "TCG",
               agent_kernel().version);
    std::fflush(stdout);
    for (auto via : {transport::vsock, transport::serial})
        report(via, measure(via, image, s), s);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "agent_rpc: {}\n", e.what());
    return 1;
}
