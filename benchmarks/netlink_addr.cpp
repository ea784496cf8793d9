// netlink_addr — 1000 address add/delete pairs on one link in a fresh network namespace:
//   cz            one session, one request and ACK per operation (what a program using cz does)
//   cz batched    the same requests, 100 per datagram, each still ACKed and checked
//   ip per op     one `ip address add|del` process per operation (what a shell script does)
//   ip -batch     one `ip -batch` process reading all 2000 commands
// Each contender runs `runs` times, alternating; the median is reported with ops/s and the ratio
// of each contender's time to cz's (> 1: cz is faster). Needs root (CLONE_NEWNET); prints one
// line and exits 0 otherwise. Never touches the host's network: everything happens in the
// child's own namespace. The issue asks for a dummy link; kernels without the dummy driver get
// one end of a veth pair instead, and the output says so.
//
// usage: netlink_addr [PAIRS=1000] [RUNS=3]
#include <cz/netlink.hpp>

#include <asio/io_context.hpp>
#include <fmt/format.h>

#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace nl = cz::netlink;

namespace {

using clock_type = std::chrono::steady_clock;

std::string address_of(int i) {
    return fmt::format("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256);
}

// Runs argv as a child process and waits; throws unless it exits 0.
void spawn(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error("waitpid failed");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("command failed: " + argv[0] + " " + argv[1] + " " + argv[2]);
}

struct contender {
    std::string name;
    std::function<void()> run;
    std::vector<double> seconds;
};

int run(int pairs, int runs) {
    asio::io_context io;
    nl::session s(io.get_executor());
    std::string dev = "bench0";
    std::string kind = "dummy";
    std::error_code ec;
    nl::create_dummy(s, dev, ec);
    if (ec == std::errc::operation_not_supported) {
        kind = "veth (this kernel has no dummy driver)";
        nl::create_veth(s, dev, "bench1");
    } else if (ec) {
        throw cz::system_error(ec, "create dummy link");
    }
    int index = nl::get_link(s, dev).index;
    nl::set_link_up(s, index, true);

    std::vector<nl::address_spec> specs(static_cast<std::size_t>(pairs));
    for (int i = 0; i < pairs; ++i) {
        specs[std::size_t(i)].index = index;
        specs[std::size_t(i)].local = asio::ip::make_address(address_of(i));
        specs[std::size_t(i)].prefix_len = 32;
    }

    std::string batch_file = fmt::format("/tmp/cz-bench-netlink-{}.batch", ::getpid());
    {
        std::FILE* f = std::fopen(batch_file.c_str(), "w");
        if (!f) throw std::runtime_error("cannot write " + batch_file);
        for (int i = 0; i < pairs; ++i) {
            fmt::print(f, "address add {}/32 dev {}\n", address_of(i), dev);
            fmt::print(f, "address del {}/32 dev {}\n", address_of(i), dev);
        }
        std::fclose(f);
    }

    std::vector<contender> contenders;
    contenders.push_back({"cz",
                          [&] {
                              for (const auto& a : specs) {
                                  nl::add_address(s, a);
                                  nl::delete_address(s, a);
                              }
                          },
                          {}});
    contenders.push_back(
        {"cz batched (100/datagram)",
         [&] {
             nl::message_builder b;
             std::size_t at = 0;
             while (at < specs.size()) {
                 b.clear();
                 for (std::size_t n = 0; n < 50 && at < specs.size(); ++n, ++at) {
                     for (auto type : {nl::rtm::newaddr, nl::rtm::deladdr}) {
                         const auto& a = specs[at];
                         b.begin(type, std::uint16_t(nl::nlm_f::ack |
                                                     (type == nl::rtm::newaddr
                                                          ? nl::nlm_f::create | nl::nlm_f::excl
                                                          : 0)));
                         nl::address_header h;
                         h.family = AF_INET;
                         h.prefix_len = a.prefix_len;
                         h.index = std::uint32_t(a.index);
                         b.put(h);
                         b.attr_address(nl::ifa::local, a.local);
                         b.attr_address(nl::ifa::address, a.local);
                     }
                 }
                 std::error_code bec;
                 s.execute(b, bec);
                 if (bec) throw cz::system_error(bec, "batched add/del");
             }
         },
         {}});
    contenders.push_back({"ip per op",
                          [&] {
                              for (int i = 0; i < pairs; ++i) {
                                  std::string a = address_of(i) + "/32";
                                  spawn({"ip", "address", "add", a, "dev", dev});
                                  spawn({"ip", "address", "del", a, "dev", dev});
                              }
                          },
                          {}});
    contenders.push_back({"ip -batch", [&] { spawn({"ip", "-batch", batch_file}); }, {}});

    for (int r = 0; r < runs; ++r) {
        for (auto& c : contenders) {
            auto start = clock_type::now();
            c.run();
            c.seconds.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
            // Every contender must leave the link as it found it.
            if (nl::list_addresses(s, AF_INET, index).size() != 0)
                throw std::runtime_error(c.name + " left addresses behind");
        }
    }
    std::remove(batch_file.c_str());

    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    double ops = 2.0 * pairs;
    double cz_time = median(contenders[0].seconds);
    fmt::print("netlink_addr: {} address add/delete pairs ({} operations) on a {} link, "
               "median of {} runs\n",
               pairs, int(ops), kind, runs);
    fmt::print("{:<28} {:>10} {:>12} {:>14}\n", "contender", "seconds", "ops/s", "time vs cz");
    for (const auto& c : contenders) {
        double t = median(c.seconds);
        fmt::print("{:<28} {:>10.4f} {:>12.0f} {:>13.2f}x\n", c.name, t, ops / t, t / cz_time);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    int pairs = argc > 1 ? std::atoi(argv[1]) : 1000;
    int runs = argc > 2 ? std::atoi(argv[2]) : 3;
    if (pairs <= 0 || runs <= 0) {
        fmt::print(stderr, "usage: netlink_addr [PAIRS=1000] [RUNS=3]\n");
        return 2;
    }
    if (::geteuid() != 0) {
        fmt::print("netlink_addr: skipped: needs root (network namespaces, CAP_NET_ADMIN)\n");
        return 0;
    }
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        int rc = 1;
        try {
            if (::unshare(CLONE_NEWNET) != 0)
                throw cz::system_error(cz::last_system_error(), "unshare(CLONE_NEWNET)");
            rc = run(pairs, runs);
        } catch (const std::exception& e) {
            fmt::print(stderr, "netlink_addr: {}\n", e.what());
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
