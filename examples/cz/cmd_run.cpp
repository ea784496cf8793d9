// cz run: a container from an image, in a microVM of its own, with its stdio attached; cz exits
// with the container's exit code (cz/container/run.hpp does the work).
//
//   cz run [--rm] [-i] [-t] [-e K=V]... [--env-file F]... [-w DIR] [-u USER] [--entrypoint CMD]
//          [--cpus N] [--memory SIZE] [--rootfs-size SIZE] [-p [IP:]HOSTPORT:GUESTPORT]... [--net
//          user|none]
//          [-v HOSTDIR:GUESTDIR[:ro]]... [--read-only] [--kernel PATH|FLAVOUR] [--init PATH]
//          [--name NAME] [--hostname NAME] [--ulimit NAME=SOFT[:HARD]]...
//          [--pull missing|always|never] [--platform P]
//          [--timings] [--no-template] IMAGE [CMD ARGS...]
//
// Exit codes are docker's: the container's own; 125 when cz fails (including bad options);
// 126 when the command cannot be executed; 127 when it does not exist. An image missing from
// the store is pulled first (--pull), its root filesystem built as the layers arrive; progress on
// stderr. Volumes (-v) reach the guest through virtio-fs when cz is root and virtiofsd is
// installed, else through virtio-9p; CZ_VOLUME_TRANSPORT=virtiofs or 9p forces one.
#include "cli.hpp"

#include <cz/container/pull.hpp>
#include <cz/container/run.hpp>
#include <cz/container/supervisor.hpp>
#include <cz/oci/error.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/registry/client.hpp>
#include <cz/oci/registry/error.hpp>
#include <cz/oci/registry/proxy.hpp>
#include <cz/vm/config.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cz::cli {

namespace {

struct run_command_options {
    bool rm = false; // with -d: remove the container once it exits; else nothing is left anyway
    bool detach = false;
    bool interactive = false;
    bool tty = false;
    std::vector<std::string> env;
    std::vector<std::string> env_files;
    std::string workdir;
    std::string user;
    std::string entrypoint;
    bool entrypoint_given = false;
    std::string cpus;
    std::string memory;
    std::string rootfs_size;
    std::vector<std::string> publish;
    std::vector<std::string> volumes;
    std::string net = "user";
    bool read_only = false;
    std::string kernel;
    std::string init;
    std::string name;
    std::string hostname;
    std::string platform;
    std::string pull = "missing";
    std::vector<std::string> ulimits;
    bool timings = false;
    bool no_template = false;
    std::vector<std::string> words; // IMAGE [CMD ARGS...]
};

// How cz run ends when cz itself fails (docker's 125), and when the command is the problem.
constexpr int exit_cz_failed = 125;
constexpr int exit_not_executable = 126;
constexpr int exit_not_found = 127;

// A usage error: reported by main() as CLI11's own, exit code 125 for this command.
[[noreturn]] void usage(const std::string& option, const std::string& why) {
    throw CLI::ValidationError(option, why);
}

container::run_options make_options(const run_command_options& o) {
    container::run_options r;
    if (o.words.empty()) usage("IMAGE", "an image is required: cz run IMAGE [CMD ARGS...]");
    r.root = state_root();
    r.image = o.words.front();
    r.spec.args.assign(o.words.begin() + 1, o.words.end());
    auto lookup = [](const std::string& name) { return std::getenv(name.c_str()); };
    for (const auto& file : o.env_files) {
        std::ifstream in(file);
        if (!in) throw_error(last_system_error(), "--env-file {}", file);
        std::stringstream text;
        text << in.rdbuf();
        std::error_code ec;
        std::string why;
        auto entries = container::parse_env_file(text.str(), lookup, ec, &why);
        if (ec) usage("--env-file", file + ": " + why);
        r.spec.env.insert(r.spec.env.end(), entries.begin(), entries.end());
    }
    for (const auto& e : o.env) {
        std::string entry;
        if (e.empty() || e.front() == '=') usage("--env", "'" + e + "' is not NAME=value");
        if (container::expand_env_option(e, lookup, entry)) r.spec.env.push_back(entry);
    }
    if (o.entrypoint_given) {
        r.spec.entrypoint = std::vector<std::string>();
        if (!o.entrypoint.empty()) r.spec.entrypoint->push_back(o.entrypoint);
    }
    r.spec.working_dir = o.workdir;
    if (!o.workdir.empty() && o.workdir.front() != '/')
        usage("--workdir", "'" + o.workdir + "' is not an absolute path");
    r.spec.user = o.user;
    r.spec.terminal = o.tty;
    r.spec.read_only = o.read_only;
    r.spec.hostname = o.hostname;
    if (!o.cpus.empty()) {
        char* end = nullptr;
        double cpus = std::strtod(o.cpus.c_str(), &end);
        if (end == o.cpus.c_str() || *end != '\0' || !(cpus >= 0.01) || cpus > 255)
            usage("--cpus", "'" + o.cpus + "' is not a number of CPUs (0.01 to 255)");
        r.spec.cpus = cpus;
        r.cpus = static_cast<unsigned>(cpus + 0.999);
    }
    if (!o.memory.empty()) {
        auto bytes = parse_size_option("--memory", o.memory);
        if (bytes < (6u << 20)) usage("--memory", "at least 6M");
        r.spec.memory_limit = static_cast<std::int64_t>(bytes);
        // The VM gets the container's memory plus what the guest kernel and cz-init need.
        r.memory_mib = std::max<std::uint64_t>(256, (bytes >> 20) + 128);
    }
    if (!o.rootfs_size.empty()) {
        r.scratch_bytes = parse_size_option("--rootfs-size", o.rootfs_size);
        if (r.scratch_bytes < (16u << 20)) usage("--rootfs-size", "at least 16M");
    }
    for (const auto& p : o.publish) {
        std::error_code ec;
        r.ports.push_back(vm::parse_port_forward(p, ec));
        if (ec) usage("--publish", "'" + p + "' is not [IP:]HOSTPORT:GUESTPORT");
    }
    for (const auto& v : o.volumes) {
        std::error_code ec;
        std::string why;
        r.volumes.push_back(container::parse_volume(v, ec, &why));
        if (ec) usage("--volume", why);
    }
    if (const char* t = std::getenv("CZ_VOLUME_TRANSPORT")) {
        std::error_code ec;
        r.volume_mode = container::parse_volume_transport(t, ec);
        if (ec) usage("CZ_VOLUME_TRANSPORT", std::string("'") + t + "': virtiofs, 9p or auto");
    }
    if (o.net == "none")
        r.network = container::network_mode::none;
    else if (o.net != "user")
        usage("--net", "'" + o.net + "': user or none");
    if (!o.publish.empty() && r.network == container::network_mode::none)
        usage("--publish", "needs a network (--net user)");
    if (!o.name.empty() && !container::valid_container_name(o.name))
        usage("--name",
              "'" + o.name + "': 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit");
    r.name = o.name;
    for (const auto& u : o.ulimits) {
        std::error_code ec;
        std::string why;
        r.spec.rlimits.push_back(container::parse_ulimit(u, ec, &why));
        if (ec) usage("--ulimit", why);
    }
    if (o.pull == "always")
        r.pull = container::pull_policy::always;
    else if (o.pull == "never")
        r.pull = container::pull_policy::never;
    else if (o.pull != "missing")
        usage("--pull", "'" + o.pull + "': missing, always or never");
    r.kernel = o.kernel;
    r.init = o.init;
    if (!o.platform.empty()) {
        std::error_code ec;
        std::string why;
        r.platform = oci::parse_platform(o.platform, ec, &why);
        if (ec) usage("--platform", o.platform + ": " + why);
    }
    r.stdin_fd = o.interactive ? STDIN_FILENO : -1;
    if (o.tty && !o.detach && ::isatty(STDIN_FILENO) == 0 && o.interactive)
        throw std::runtime_error("the input device is not a TTY (leave out -t)");
    return r;
}

// cz run -d: the container under a supervisor of its own (cz/container/supervisor.hpp); prints
// its id once its process has started. A pull happens here first, where its progress shows.
int run_detached(const run_command_options& o, container::run_options opts, pull_display& display) {
    std::error_code ec;
    std::string why;
    if (container::needs_pull(opts)) {
        container::pull_options p;
        p.platform = opts.platform;
        p.registry = opts.registry;
        p.on_blob = opts.on_pull_progress;
        p.on_layer = [&](std::size_t i, std::size_t n) {
            display.line(fmt::format("building the root filesystem of {}: layer {} of {}",
                                     opts.image, i + 1, n));
        };
        container::pull_image(opts.root, opts.image, p, ec, &why);
        display.clear();
        if (ec) {
            fmt::print(stderr, "cz: pulling {}: {}: {}\n", opts.image, why, ec.message());
            return exit_cz_failed;
        }
    }
    opts.pull = container::pull_policy::never;
    opts.on_pull_progress = nullptr;
    opts.on_progress = nullptr;
    opts.on_warning = nullptr;
    container::detached_options d;
    d.name = opts.name;
    d.auto_remove = o.rm;
    d.open_stdin = o.interactive;
    d.run = std::move(opts);
    int code = exit_cz_failed;
    auto id = container::start_detached(d, ec, &why, &code);
    if (ec) {
        fmt::print(stderr, "cz: {}: {}\n", why, ec.message());
        return code;
    }
    fmt::print("{}\n", id);
    return 0;
}

int run_run(const run_command_options& o) {
    auto opts = make_options(o);
    // A pull's progress and the run's own lines, on stderr.
    pull_display display(stderr);
    opts.use_template = !o.no_template;
    opts.on_warning = [&](std::string_view line) {
        display.clear();
        fmt::print(stderr, "cz: warning: {}\n", line);
    };
    opts.registry.proxy = oci::registry::proxy_from_environment();
    std::string credentials_error; // why docker's credentials could not be had
    use_docker_credentials(opts.registry, credentials_error);
    opts.on_pull_progress = [&](const oci::registry::blob_progress& p) { display.blob(p); };
    opts.on_progress = [&](std::string_view line) { display.line(line); };
    std::error_code ec;
    std::string why;
    if (o.detach) return run_detached(o, std::move(opts), display);
    auto r = container::run(opts, ec, &why);
    display.clear();
    if (o.timings) {
        fmt::print(stderr, "timings:");
        for (const auto& t : r.timings)
            fmt::print(stderr, " {} {:.1f} ms", t.phase,
                       std::chrono::duration<double, std::milli>(t.duration).count());
        fmt::print(stderr, "; {}\n", r.from_template ? "from a VM template" : "cold boot");
    }
    if (r.oom_killed) fmt::print(stderr, "cz: the container ran out of memory (OOM-killed)\n");
    for (const auto& warning : r.warnings)
        fmt::print(stderr, "cz: warning: {}\n", warning);
    if (!ec) return r.exit_code;
    if (!credentials_error.empty() && ec == oci::registry::errc::unauthorized)
        why = credentials_error;
    else if (ec == oci::registry::errc::unauthorized)
        why += " (log in with: cz login " + oci::parse_reference(opts.image).domain + ")";
    fmt::print(stderr, "cz: {}: {}\n", why, ec.message());
    if (!r.console_tail.empty())
        fmt::print(stderr, "the VM's console ended with:\n{}", r.console_tail);
    if (ec == container::errc::command_not_found) return exit_not_found;
    if (ec == container::errc::command_not_executable) return exit_not_executable;
    if (ec == container::errc::interrupted) return 130;
    return exit_cz_failed;
}

} // namespace

bool is_run_command(const CLI::App& app) {
    auto subs = app.get_subcommands();
    return !subs.empty() && subs.front()->get_name() == "run";
}

void register_run_command(context ctx) {
    auto* cmd = add_command<run_command_options>(
        ctx, ctx.app, "run",
        "Run a command in a new container, in a microVM of its own (exit code: the command's; "
        "125 cz failed, 126 cannot execute, 127 not found)",
        [](CLI::App& cmd, run_command_options& o) {
            cmd.add_flag("--rm", o.rm,
                         "With -d: remove the container once it exits (without -d a container "
                         "leaves nothing behind anyway)");
            cmd.add_flag("-d,--detach", o.detach,
                         "Run in the background under a supervisor; print the container's id");
            cmd.add_flag("-i,--interactive", o.interactive, "Pass standard input to the container");
            cmd.add_flag("-t,--tty", o.tty, "Give the container a terminal");
            cmd.add_option("-e,--env", o.env,
                           "Set an environment variable (NAME=value, or NAME "
                           "to pass this one's)")
                ->type_name("NAME[=VALUE]")
                ->allow_extra_args(false);
            cmd.add_option("--env-file", o.env_files, "Read environment variables from a file")
                ->type_name("FILE")
                ->allow_extra_args(false);
            cmd.add_option("-w,--workdir", o.workdir, "Working directory (created if missing)")
                ->type_name("DIR");
            cmd.add_option("-u,--user", o.user, "User: name or uid, with :group or :gid")
                ->type_name("USER[:GROUP]");
            cmd.add_option("--entrypoint", o.entrypoint,
                           "Replace the image's entrypoint (\"\" clears it)")
                ->type_name("CMD")
                ->each([&o](const std::string&) { o.entrypoint_given = true; });
            cmd.add_option("--cpus", o.cpus, "CPUs for the container (1.5: one and a half)");
            cmd.add_option("-m,--memory", o.memory, "Memory limit (512M, 2G)")->type_name("SIZE");
            cmd.add_option("-p,--publish", o.publish,
                           "Publish a container port on the host's loopback")
                ->type_name("[IP:]HOSTPORT:PORT")
                ->allow_extra_args(false);
            cmd.add_option("-v,--volume", o.volumes,
                           "Mount a host directory in the container (ro: read-only)")
                ->type_name("HOSTDIR:DIR[:ro]")
                ->allow_extra_args(false);
            cmd.add_option("--net,--network", o.net, "Network: user (NAT, the default) or none");
            cmd.add_flag("--read-only", o.read_only, "Mount the root filesystem read-only");
            cmd.add_option("--rootfs-size", o.rootfs_size,
                           "Keep the container's writes on a scratch disk of this size (default: "
                           "in the VM's memory)")
                ->type_name("SIZE");
            cmd.add_option("--kernel", o.kernel,
                           "Guest kernel: a file, or a cached flavour (debian, minimal)");
            cmd.add_option("--init", o.init, "cz-init program (default: $CZ_INIT, or beside cz)")
                ->type_name("PATH");
            cmd.add_option("--name", o.name, "Container name (default: random)");
            cmd.add_option("--hostname", o.hostname, "Hostname (default: the name)");
            cmd.add_option("--platform", o.platform, "os/arch[/variant] of the image");
            cmd.add_option("--pull", o.pull,
                           "Pull the image first: missing (when not in the store), always, never")
                ->type_name("WHEN");
            cmd.add_option("--ulimit", o.ulimits,
                           "A resource limit of the process (nofile=1024:4096, core=0)")
                ->type_name("NAME=SOFT[:HARD]")
                ->allow_extra_args(false);
            cmd.add_flag("--timings", o.timings, "Print how long each phase took, on stderr");
            cmd.add_flag("--no-template", o.no_template,
                         "Boot the VM cold, not from a VM template (cz template ls)");
            // IMAGE and everything after it (the container's command, options included) are
            // left unparsed, and taken as they are.
            cmd.prefix_command();
            cmd.parse_complete_callback([&cmd, &o] { o.words = cmd.remaining(); });
        },
        run_run);
    cmd->footer("Usage: cz run [OPTIONS] IMAGE [CMD ARGS...]\n"
                "IMAGE is a name in the store (cz image ls), pulled first when it is not there.");
}

} // namespace cz::cli
