// cz — run OCI containers in lightweight Linux VMs. The command-line tool.
//
// Each group of commands lives in its own cmd_*.cpp file and registers itself here. main() owns
// error reporting: every failure becomes one line on stderr and exit code 1.
#include "cli.hpp"

#include <cz/core/config.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <iterator>
#include <stdexcept>
#include <string_view>

namespace cz::cli {

unique_fd open_input(const std::string& path) {
    if (path == "-") return unique_fd(::fcntl(0, F_DUPFD_CLOEXEC, 3));
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_error(last_system_error(), "{}", path);
    return fd;
}

global_options& globals() {
    static global_options g;
    return g;
}

std::filesystem::path state_root(const std::string& command_root) {
    if (!command_root.empty()) return command_root;
    if (!globals().root.empty()) return globals().root;
    if (const char* r = std::getenv("CZ_ROOT"); r && *r) return r;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x == '/')
        return std::filesystem::path(x) / "cz";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".local/share/cz";
    throw std::runtime_error(
        "no state root: give --root DIR, or set CZ_ROOT, XDG_DATA_HOME or HOME");
}

struct version_options {};

int run_version(const version_options&) {
    fmt::print("cz {}\n", version_string);
    return exit_ok;
}

namespace {

void register_version_command(context ctx) {
    add_command<version_options>(
        ctx, ctx.app, "version", "Print cz's version", [](CLI::App&, version_options&) {},
        run_version);
}

void register_image_group(context ctx) {
    register_image_commands(ctx);
    register_image_push_command(ctx, *ctx.app.get_subcommand("image"));
}

// cz's commands in groups, with the top-level names each group adds, in the order `cz --help`
// lists them. main() registers only the group whose name the command line starts with: building
// CLI11's whole tree is a measurable part of a short command like `cz exec ID true`.
struct command_group {
    std::initializer_list<std::string_view> names;
    void (*add)(context);
};
const command_group command_groups[] = {
    {{"version"}, register_version_command},
    {{"digest", "decompress"}, register_core_commands},
    {{"tar"}, register_tar_commands},
    {{"ext4"}, register_ext4_commands},
    {{"net"}, register_netlink_commands},
    {{"vm", "kernel", "template"}, register_vm_commands},
    {{"image"}, register_image_group},
    {{"store"}, register_store_commands},
    {{"run"}, register_run_command},
    {{"ps", "logs", "stop", "kill", "wait", "rm", "inspect", "stats", "cp", "exec"},
     register_container_commands},
    {{"login", "logout"}, register_login_commands},
};

// The command the command line names: its first argument that is not cz's own option (--root
// DIR). Empty when an option comes first (--help) or there is none.
std::string_view command_name(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--root") {
            ++i;
        } else if (!arg.starts_with("--root=")) {
            return arg.starts_with("-") ? std::string_view{} : arg;
        }
    }
    return {};
}

bool has_command(CLI::App& app, std::string_view name) {
    return !app.get_subcommands([&](CLI::App* c) { return c->get_name() == name; }).empty();
}

// Registers the group that adds `name`'s command, or every group when no group names it (help,
// a mistyped command: CLI11 then lists or rejects against the whole tree).
void register_commands(context ctx, std::string_view name) {
    bool added[std::size(command_groups)] = {};
    for (std::size_t i = 0; i < std::size(command_groups); ++i) {
        for (auto n : command_groups[i].names) {
            if (n == name) {
                command_groups[i].add(ctx);
                added[i] = true;
                break;
            }
        }
    }
    if (!name.empty() && has_command(ctx.app, name)) return;
    for (std::size_t i = 0; i < std::size(command_groups); ++i)
        if (!added[i]) command_groups[i].add(ctx);
}

} // namespace

} // namespace cz::cli

int main(int argc, char** argv) {
    // A closed stdout (`cz ... | head`) is an ordinary EPIPE error, not a silent death.
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"cz runs OCI containers inside lightweight Linux virtual machines.\n"
                 "Each module also works alone: digests, compression, tar, ext4, ...",
                 "cz"};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Print help for every command");
    app.add_option("--root", cz::cli::globals().root,
                   "State root (images, kernels, VMs); default: $CZ_ROOT, else "
                   "$XDG_DATA_HOME/cz, else ~/.local/share/cz")
        ->type_name("DIR");
    app.footer("Run 'cz COMMAND --help' for a command's options.\n"
               "Exit codes: 0 success, 1 error, 2 usage error.");

    std::function<int()> run;
    cz::cli::context ctx{app, run};
    auto docker_codes = [](const CLI::App& a) {
        return cz::cli::is_run_command(a) || cz::cli::is_exec_command(a);
    };

    cz::cli::register_commands(ctx, cz::cli::command_name(argc, argv));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return docker_codes(app) ? 125 : cz::cli::exit_usage;
    }
    // `cz run` and `cz exec` fail as docker's do: 125 for cz's own errors, usage errors included.
    const int exit_error = docker_codes(app) ? 125 : cz::cli::exit_error;
    const int exit_usage = docker_codes(app) ? 125 : cz::cli::exit_usage;

    try {
        int rc = run ? run() : cz::cli::exit_ok;
        if (std::fflush(stdout) != 0)
            throw cz::system_error(cz::last_system_error(), "standard output");
        return rc;
    } catch (const CLI::ParseError& e) {
        // A value that only `run` can check (a size, flags that exclude each other): a usage
        // error, reported as CLI11 reports the ones it finds while parsing.
        app.exit(e);
        return exit_usage;
    } catch (const std::system_error& e) {
        fmt::print(stderr, "cz: {}\n", e.what());
    } catch (const std::exception& e) {
        fmt::print(stderr, "cz: {}\n", e.what());
    }
    return exit_error;
}
