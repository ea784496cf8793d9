// cz ps, logs, stop, kill, wait, rm, inspect, exec: detached containers (`cz run -d`), each held
// by a supervisor of its own; cz/container/supervisor.hpp does the work. A container is named by
// its id, a unique prefix of it, or its name.
//
//   cz ps [-a] [--format json]
//   cz logs [-f] [--tail N] [-t] CONTAINER
//   cz stop [-t SECONDS] CONTAINER...
//   cz kill [-s SIGNAL] CONTAINER...
//   cz wait CONTAINER...
//   cz rm [-f] CONTAINER...
//   cz inspect CONTAINER...
//   cz stats [--no-stream] [--format json] [CONTAINER...]
//   cz exec [-i] [-t] [-e K=V]... [-w DIR] [-u USER] CONTAINER CMD [ARGS...]
//   cz cp [-a] [-L] CONTAINER:SRC HOSTDEST|-   and   cz cp [-a] [-L] HOSTSRC|- CONTAINER:DEST
//
// Exit codes: 0, 1 (an error: one line on stderr), 2 (usage); cz exec exits as docker exec does
// (the command's code; 125 when cz fails, 126 cannot execute, 127 not found).
#include "cli.hpp"

#include <cz/container/copy.hpp>
#include <cz/container/supervisor.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace cz::cli {

namespace {

[[noreturn]] void fail(std::error_code ec, const std::string& why) {
    throw_error(ec, "{}", why);
}

// "3 seconds", "2 minutes", "5 hours", "4 days" (docker's HumanDuration, roughly).
std::string human_duration(std::int64_t ns) {
    std::int64_t s = ns / 1000000000;
    if (s < 1) return "Less than a second";
    if (s == 1) return "1 second";
    if (s < 60) return fmt::format("{} seconds", s);
    if (s < 120) return "About a minute";
    if (s < 3600) return fmt::format("{} minutes", s / 60);
    if (s < 7200) return "About an hour";
    if (s < 48 * 3600) return fmt::format("{} hours", s / 3600);
    return fmt::format("{} days", s / 86400);
}

std::string status_text(const container::container_state& s) {
    auto now = container::now_ns();
    switch (s.status) {
    case container::container_status::created:
        return "Created";
    case container::container_status::running:
        return "Up " + human_duration(now - s.started);
    case container::container_status::exited:
        return fmt::format("Exited ({}) {} ago", s.exit_code, human_duration(now - s.finished));
    }
    return "";
}

std::string command_text(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv)
        out += (out.empty() ? "" : " ") + a;
    if (out.size() > 20) out = out.substr(0, 19) + "…";
    return "\"" + out + "\"";
}

// --- ps ---------------------------------------------------------------------------------------

struct ps_options {
    bool all = false;
    std::string format;
};

int run_ps(const ps_options& o) {
    if (!o.format.empty() && o.format != "json" && o.format != "table")
        throw CLI::ValidationError("--format", "'" + o.format + "': json or table");
    std::error_code ec;
    std::string why;
    auto all = container::list_containers(state_root(), ec, &why);
    if (ec) fail(ec, why);
    if (o.format != "json")
        fmt::print("{:<14}{:<20}{:<24}{:<18}{:<35} {}\n", "CONTAINER ID", "IMAGE", "COMMAND",
                   "CREATED", "STATUS", "NAMES");
    for (const auto& s : all) {
        if (!o.all && s.status == container::container_status::exited) continue;
        if (o.format == "json") {
            auto j = nlohmann::json::parse(container::to_json(s));
            j["status_text"] = status_text(s);
            fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            continue;
        }
        fmt::print("{:<14}{:<20}{:<24}{:<18}{:<35} {}\n", s.id.substr(0, 12), s.image,
                   command_text(s.command),
                   human_duration(container::now_ns() - s.created) + " ago", status_text(s),
                   s.name);
    }
    return exit_ok;
}

// --- logs -------------------------------------------------------------------------------------

struct logs_options {
    bool follow = false;
    std::string tail = "all";
    bool timestamps = false;
    std::string container;
};

void write_out(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw_error(last_system_error(), "{}", fd == 1 ? "stdout" : "stderr");
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

int run_logs(const logs_options& o) {
    long tail = -1;
    if (o.tail != "all") {
        char* end = nullptr;
        tail = std::strtol(o.tail.c_str(), &end, 10);
        if (o.tail.empty() || *end != '\0' || tail < 0)
            throw CLI::ValidationError("--tail", "'" + o.tail + "' is not a number of lines");
    }
    auto root = state_root();
    std::error_code ec;
    std::string why;
    auto s = container::find_container(root, o.container, ec, &why);
    if (ec) fail(ec, why);
    auto dir = container::container_dir(root, s.id);
    container::log_read_options ro;
    ro.tail = tail;
    ro.follow = o.follow;
    ro.still_writing = [&dir] { return container::supervisor_alive(dir); };
    bool line_start[3] = {true, true, true};
    container::read_log(
        dir, ro,
        [&](const container::log_record& r) {
            auto text = as_chars(r.data);
            int fd = r.stream == 2 ? 2 : 1;
            if (o.timestamps && line_start[r.stream])
                write_out(fd, container::format_time(r.time) + " ");
            write_out(fd, text);
            line_start[r.stream] = !text.empty() && text.back() == '\n';
        },
        ec, &why);
    if (ec) fail(ec, why);
    return exit_ok;
}

// --- stop, kill, wait, rm, inspect ------------------------------------------------------------

struct stop_options {
    long seconds = 10;
    std::vector<std::string> containers;
};

int run_stop(const stop_options& o) {
    if (o.seconds < 0) throw CLI::ValidationError("--time", "must not be negative");
    auto root = state_root();
    int rc = exit_ok;
    for (const auto& c : o.containers) {
        std::error_code ec;
        std::string why;
        container::stop_container(root, c, std::chrono::seconds(o.seconds), ec, &why);
        if (ec) {
            fmt::print(stderr, "cz: {}: {}\n", why.empty() ? c : why, ec.message());
            rc = exit_error;
        } else {
            fmt::print("{}\n", c);
        }
    }
    return rc;
}

struct kill_options {
    std::string signal = "KILL";
    std::vector<std::string> containers;
};

int run_kill(const kill_options& o) {
    int sig = container::parse_signal(o.signal);
    if (sig == 0) throw CLI::ValidationError("--signal", "'" + o.signal + "' is not a signal");
    auto root = state_root();
    int rc = exit_ok;
    for (const auto& c : o.containers) {
        std::error_code ec;
        std::string why;
        container::kill_container(root, c, sig, ec, &why);
        if (ec) {
            fmt::print(stderr, "cz: {}: {}\n", why.empty() ? c : why, ec.message());
            rc = exit_error;
        } else {
            fmt::print("{}\n", c);
        }
    }
    return rc;
}

struct wait_options {
    std::vector<std::string> containers;
};

int run_wait(const wait_options& o) {
    auto root = state_root();
    int rc = exit_ok;
    for (const auto& c : o.containers) {
        std::error_code ec;
        std::string why;
        auto s = container::wait_container(root, c, ec, &why);
        if (ec) {
            fmt::print(stderr, "cz: {}: {}\n", why.empty() ? c : why, ec.message());
            rc = exit_error;
        } else {
            fmt::print("{}\n", s.exit_code);
        }
    }
    return rc;
}

struct rm_options {
    bool force = false;
    std::vector<std::string> containers;
};

int run_rm(const rm_options& o) {
    auto root = state_root();
    int rc = exit_ok;
    for (const auto& c : o.containers) {
        std::error_code ec;
        std::string why;
        container::rm_container(root, c, o.force, ec, &why);
        if (ec) {
            fmt::print(stderr, "cz: {}: {}\n", why.empty() ? c : why, ec.message());
            rc = exit_error;
        } else {
            fmt::print("{}\n", c);
        }
    }
    return rc;
}

struct inspect_options {
    std::vector<std::string> containers;
};

int run_inspect(const inspect_options& o) {
    auto root = state_root();
    auto out = nlohmann::json::array();
    int rc = exit_ok;
    for (const auto& c : o.containers) {
        std::error_code ec;
        std::string why;
        auto s = container::find_container(root, c, ec, &why);
        if (ec) {
            fmt::print(stderr, "cz: {}: {}\n", why.empty() ? c : why, ec.message());
            rc = exit_error;
            continue;
        }
        auto j = nlohmann::json::parse(container::to_json(s));
        auto dir = container::container_dir(root, s.id);
        for (const char* t : {"created", "started", "finished"})
            if (j[t].get<std::int64_t>() != 0)
                j[std::string(t) + "_at"] = container::format_time(j[t].get<std::int64_t>());
        j["log_path"] = (dir / "container.log").string();
        j["control_socket"] = (dir / "control.sock").string();
        out.push_back(j);
    }
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return rc;
}

// --- stats ------------------------------------------------------------------------------------

struct stats_options {
    bool no_stream = false;
    std::string format;
    std::vector<std::string> containers; // empty: every running one
};

std::string human_bytes(std::uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{}B", b) : fmt::format("{:.2f}{}", v, units[u]);
}

int run_stats(const stats_options& o) {
    if (!o.format.empty() && o.format != "json" && o.format != "table")
        throw CLI::ValidationError("--format", "'" + o.format + "': json or table");
    auto root = state_root();
    std::error_code ec;
    std::string why;
    std::vector<container::container_state> targets;
    if (o.containers.empty()) {
        for (auto& s : container::list_containers(root, ec, &why))
            if (s.status == container::container_status::running) targets.push_back(s);
        if (ec) fail(ec, why);
    } else {
        for (const auto& c : o.containers) {
            targets.push_back(container::find_container(root, c, ec, &why));
            if (ec) fail(ec, why);
        }
    }
    // CPU % needs two readings: the first is taken a second before the first line.
    std::vector<container::container_stats> before(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
        before[i] = container::stats_container(root, targets[i].id, ec, &why);
    for (;;) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        std::string out;
        if (o.format != "json") {
            if (!o.no_stream) out += "\033[2J\033[H";
            out += fmt::format("{:<14}{:<20}{:>8}  {:<24}{:>8}  {:<22}{:<22}{}\n", "CONTAINER ID",
                               "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                               "BLOCK I/O", "PIDS");
        }
        bool any = false;
        for (std::size_t i = 0; i < targets.size(); ++i) {
            auto now = container::stats_container(root, targets[i].id, ec, &why);
            if (ec) {
                if (!o.containers.empty()) fail(ec, why);
                continue; // exited meanwhile
            }
            any = true;
            double wall = static_cast<double>(now.time - before[i].time) / 1e3; // usec
            double cpu = wall > 0 && now.cpu_usec >= before[i].cpu_usec
                             ? 100.0 * static_cast<double>(now.cpu_usec - before[i].cpu_usec) / wall
                             : 0.0;
            before[i] = now;
            if (o.format == "json") {
                auto j = nlohmann::json::parse(container::to_json(now));
                j["id"] = targets[i].id;
                j["name"] = targets[i].name;
                j["cpu_percent"] = cpu;
                out += j.dump() + "\n";
                continue;
            }
            std::string limit = now.memory_max ? human_bytes(now.memory_max) : "unlimited";
            std::string mem_pct =
                now.memory_max
                    ? fmt::format("{:.2f}%", 100.0 * static_cast<double>(now.memory_current) /
                                                 static_cast<double>(now.memory_max))
                    : "--";
            out += fmt::format("{:<14}{:<20}{:>7.2f}%  {:<24}{:>8}  {:<22}{:<22}{}\n",
                               targets[i].id.substr(0, 12), targets[i].name, cpu,
                               human_bytes(now.memory_current) + " / " + limit, mem_pct,
                               human_bytes(now.net_rx) + " / " + human_bytes(now.net_tx),
                               human_bytes(now.block_read) + " / " + human_bytes(now.block_write),
                               now.pids_current);
        }
        write_out(1, out);
        if (o.no_stream || (!any && !targets.empty())) break;
    }
    return exit_ok;
}

// --- exec -------------------------------------------------------------------------------------

struct exec_options {
    bool interactive = false;
    bool tty = false;
    std::vector<std::string> env;
    std::string workdir;
    std::string user;
    std::vector<std::string> words; // CONTAINER CMD [ARGS...]
};

int run_exec(const exec_options& o) {
    if (o.words.size() < 2)
        throw CLI::ValidationError("CONTAINER", "cz exec CONTAINER CMD [ARGS...]");
    if (!o.workdir.empty() && o.workdir.front() != '/')
        throw CLI::ValidationError("--workdir", "'" + o.workdir + "' is not an absolute path");
    container::exec_request r;
    r.args.assign(o.words.begin() + 1, o.words.end());
    auto lookup = [](const std::string& name) { return std::getenv(name.c_str()); };
    for (const auto& e : o.env) {
        if (e.empty() || e.front() == '=')
            throw CLI::ValidationError("--env", "'" + e + "' is not NAME=value");
        std::string entry;
        if (container::expand_env_option(e, lookup, entry)) r.env.push_back(entry);
    }
    r.working_dir = o.workdir;
    r.user = o.user;
    r.terminal = o.tty;
    if (o.tty && o.interactive && ::isatty(STDIN_FILENO) == 0)
        throw std::runtime_error("the input device is not a TTY (leave out -t)");
    std::error_code ec;
    std::string why;
    int code = container::exec_in_container(state_root(), o.words.front(), r,
                                            o.interactive ? STDIN_FILENO : -1, STDOUT_FILENO,
                                            STDERR_FILENO, ec, &why);
    if (ec) fmt::print(stderr, "cz: {}: {}\n", why.empty() ? o.words.front() : why, ec.message());
    return code;
}

// --- cp ---------------------------------------------------------------------------------------

struct cp_options {
    bool archive = false;
    bool follow_link = false;
    std::string src, dest;
};

// docker's reading of a cp argument: CONTAINER:PATH, unless it is an absolute path, has no ':',
// or starts with '.' before the ':' (a local path such as ./a:b).
std::pair<std::string, std::string> split_cp_arg(const std::string& arg) {
    auto colon = arg.find(':');
    if (arg.empty() || arg.front() == '/' || colon == std::string::npos || arg.front() == '.')
        return {"", arg};
    return {arg.substr(0, colon), arg.substr(colon + 1)};
}

int run_cp(const cp_options& o) {
    auto [src_container, src] = split_cp_arg(o.src);
    auto [dest_container, dest] = split_cp_arg(o.dest);
    if (src_container.empty() == dest_container.empty())
        throw CLI::ValidationError("SRC", src_container.empty()
                                              ? "one of SRC and DEST must be CONTAINER:PATH"
                                              : "copying between containers is not supported");
    if (src_container.empty() ? dest.empty() : src.empty())
        throw CLI::ValidationError("SRC", "the container's path is empty");
    auto root = state_root();
    container::copy_options co;
    co.archive = o.archive;
    co.follow_link = o.follow_link;
    std::error_code ec;
    std::string why;
    if (!src_container.empty()) {
        if (dest == "-") {
            fd_sink out(STDOUT_FILENO);
            container::copy_out_archive(root, src_container, src, out, ec, &why);
        } else {
            container::copy_from_container(root, src_container, src, dest, co, ec, &why);
        }
    } else if (src == "-") {
        fd_source in(STDIN_FILENO);
        container::copy_in_archive(root, dest_container, dest, in, ec, &why);
    } else {
        container::copy_to_container(root, dest_container, src, dest, co, ec, &why);
    }
    if (ec) fail(ec, why.empty() ? o.src + " " + o.dest : why);
    return exit_ok;
}

} // namespace

bool is_exec_command(const CLI::App& app) {
    auto subs = app.get_subcommands();
    return !subs.empty() && subs.front()->get_name() == "exec";
}

void register_container_commands(context ctx) {
    add_command<ps_options>(
        ctx, ctx.app, "ps", "List containers (running ones; -a: all)",
        [](CLI::App& cmd, ps_options& o) {
            cmd.add_flag("-a,--all", o.all, "Show exited containers too");
            cmd.add_option("--format", o.format, "json: one JSON object per container and line");
        },
        run_ps);
    add_command<logs_options>(
        ctx, ctx.app, "logs", "Print a container's output (stdout and stderr as they were)",
        [](CLI::App& cmd, logs_options& o) {
            cmd.add_flag("-f,--follow", o.follow,
                         "Go on with new output until the container exits");
            cmd.add_option("-n,--tail", o.tail, "The last N lines only (default: all)");
            cmd.add_flag("-t,--timestamps", o.timestamps, "Prefix each line with its time");
            cmd.add_option("CONTAINER", o.container, "Id, id prefix or name")->required();
        },
        run_logs);
    add_command<stop_options>(
        ctx, ctx.app, "stop",
        "Stop containers: the image's StopSignal, SIGKILL after the timeout, then the VM's power",
        [](CLI::App& cmd, stop_options& o) {
            cmd.add_option("-t,--time", o.seconds, "Seconds to wait before SIGKILL (default 10)");
            cmd.add_option("CONTAINER", o.containers, "Ids, id prefixes or names")->required();
        },
        run_stop);
    add_command<kill_options>(
        ctx, ctx.app, "kill", "Send a signal to containers' processes (default: KILL)",
        [](CLI::App& cmd, kill_options& o) {
            cmd.add_option("-s,--signal", o.signal, "Signal name or number");
            cmd.add_option("CONTAINER", o.containers, "Ids, id prefixes or names")->required();
        },
        run_kill);
    add_command<wait_options>(
        ctx, ctx.app, "wait", "Wait until containers exit; print their exit codes",
        [](CLI::App& cmd, wait_options& o) {
            cmd.add_option("CONTAINER", o.containers, "Ids, id prefixes or names")->required();
        },
        run_wait);
    add_command<rm_options>(
        ctx, ctx.app, "rm", "Remove exited containers (-f: kill running ones first)",
        [](CLI::App& cmd, rm_options& o) {
            cmd.add_flag("-f,--force", o.force, "Kill a running container, then remove it");
            cmd.add_option("CONTAINER", o.containers, "Ids, id prefixes or names")->required();
        },
        run_rm);
    add_command<inspect_options>(
        ctx, ctx.app, "inspect", "Print containers' state as JSON",
        [](CLI::App& cmd, inspect_options& o) {
            cmd.add_option("CONTAINER", o.containers, "Ids, id prefixes or names")->required();
        },
        run_inspect);
    add_command<stats_options>(
        ctx, ctx.app, "stats", "Show containers' CPU, memory, network, block I/O and pids",
        [](CLI::App& cmd, stats_options& o) {
            cmd.add_flag("--no-stream", o.no_stream, "Print one reading and exit");
            cmd.add_option("--format", o.format, "json: one JSON object per container and line");
            cmd.add_option("CONTAINER", o.containers,
                           "Ids, id prefixes or names (default: all "
                           "running)");
        },
        run_stats);
    add_command<cp_options>(
        ctx, ctx.app, "cp",
        "Copy files between a running container and the host (CONTAINER:PATH on one side; - "
        "for a tar archive on stdin or stdout)",
        [](CLI::App& cmd, cp_options& o) {
            cmd.add_flag("-a,--archive", o.archive,
                         "Keep the owners of files copied in (else they are root's)");
            cmd.add_flag("-L,--follow-link", o.follow_link, "Follow a symlink given as SRC");
            cmd.add_option("SRC", o.src, "CONTAINER:PATH, a host path, or -")->required();
            cmd.add_option("DEST", o.dest, "CONTAINER:PATH, a host path, or -")->required();
        },
        run_cp);
    add_command<exec_options>(
        ctx, ctx.app, "exec",
        "Run a command in a running container (exit code: the command's; 125 cz failed, 126 "
        "cannot execute, 127 not found)",
        [](CLI::App& cmd, exec_options& o) {
            cmd.add_flag("-i,--interactive", o.interactive, "Pass standard input to the command");
            cmd.add_flag("-t,--tty", o.tty, "Give the command a terminal");
            cmd.add_option("-e,--env", o.env, "Set an environment variable")
                ->type_name("NAME[=VALUE]")
                ->allow_extra_args(false);
            cmd.add_option("-w,--workdir", o.workdir, "Working directory")->type_name("DIR");
            cmd.add_option("-u,--user", o.user, "User: name or uid, with :group or :gid")
                ->type_name("USER[:GROUP]");
            // CONTAINER and the command after it are taken as they are.
            cmd.prefix_command();
            cmd.parse_complete_callback([&cmd, &o] { o.words = cmd.remaining(); });
        },
        run_exec);
}

} // namespace cz::cli
