// examples/cz/cli.hpp — what the command files of the cz tool share.
//
// Exit codes, the same for every command:
//   0  success
//   1  an error: one line on stderr, "cz: <what failed>: <why>"
//   2  usage error (bad flags or arguments); CLI11 prints the usage
// except `cz run`, whose codes are docker's (examples/cz/cmd_run.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <cz/core/error.hpp>
#include <cz/core/size.hpp>
#include <cz/core/unique_fd.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace cz::oci::registry {
struct registry_options;
struct blob_progress;
} // namespace cz::oci::registry

namespace cz::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;
inline constexpr int exit_usage = 2;

// Each command file adds its subcommands to the app. The callback a subcommand sets stores the
// function to run in `run`; main() runs it after parsing, so errors are reported in one place.
struct context {
    CLI::App& app;
    std::function<int()>& run;
};

// Registers the command `name` under `parent`, the one way cz's commands are declared:
//
//   struct tar_list_options { std::string file = "-"; bool json = false; };
//   int run_tar_list(const tar_list_options& o);
//   add_command<tar_list_options>(ctx, *tar_cmd, "list", "Print the member names...",
//       [](CLI::App& cmd, tar_list_options& o) { cmd.add_flag("--json", o.json, "..."); },
//       run_tar_list);
//
// `Options` is a plain struct whose member initialisers are the defaults. add_command owns one
// for the life of the app; `declare(CLI::App&, Options&)` binds flags and arguments to its
// members. When parsing selects the command, main() calls `run(options)` and exits with what it
// returns. Checks that need the parsed values (sizes, flags that exclude each other) belong at
// the top of `run`, before it does anything: a CLI::ValidationError thrown there (by
// parse_size_option, for one) is a usage error, reported by main() as CLI11 reports its own.
template <class Options, class Declare>
CLI::App* add_command(context ctx, CLI::App& parent, std::string name, std::string help,
                      Declare&& declare, int (*run)(const Options&)) {
    auto options = std::make_shared<Options>();
    auto* cmd = parent.add_subcommand(std::move(name), std::move(help));
    std::forward<Declare>(declare)(*cmd, *options);
    cmd->callback(
        [options, run, &slot = ctx.run] { slot = [options, run] { return run(*options); }; });
    return cmd;
}

// Options given before the command name, which every command sees: `cz --root DIR image ls`.
struct global_options {
    std::string root; // --root; empty when not given
};
global_options& globals();

// cz's state root (DESIGN "State on disk"): `command_root` when a command has its own --root and
// it was given, else the global --root, else $CZ_ROOT, else $XDG_DATA_HOME/cz (an absolute
// XDG_DATA_HOME only, as the XDG spec says), else ~/.local/share/cz. Throws when none of them
// is set (no HOME).
std::filesystem::path state_root(const std::string& command_root = {});

void register_core_commands(context ctx);
void register_tar_commands(context ctx);
void register_ext4_commands(context ctx);
void register_netlink_commands(context ctx);
void register_vm_commands(context ctx);
void register_image_commands(context ctx);
void register_image_pull_command(context ctx, CLI::App& image_cmd);
void register_image_push_command(context ctx, CLI::App& image_cmd);
void register_store_commands(context ctx);
void register_run_command(context ctx);
// Whether the command line selected `cz run` (whose failures exit 125, as docker's do).
bool is_run_command(const CLI::App& app);
void register_container_commands(context ctx);
// Whether the command line selected `cz exec` (whose failures exit 125 too).
bool is_exec_command(const CLI::App& app);

// Registry requests ask docker's credentials (`cz login`) when a registry wants some; why they
// could not be had (a malformed config file, a failing helper) goes to `error`, which must
// outlive the requests.
void use_docker_credentials(oci::registry::registry_options& options, std::string& error);

// What a pull shows on `out`: on a terminal, a line per blob with its progress bar (bytes, rate,
// time left; "done" once committed) and one for the whole pull, redrawn in place; elsewhere a
// line per finished blob.
// Safe to call from two threads (`cz run` builds the root filesystem while the pull goes on).
class pull_display {
public:
    explicit pull_display(std::FILE* out);
    ~pull_display();
    pull_display(const pull_display&) = delete;
    pull_display& operator=(const pull_display&) = delete;
    void blob(const oci::registry::blob_progress& p);
    void line(std::string_view text); // a line of its own, above the pull's line
    void clear();                     // the whole pull's line goes (before a result or an error)

private:
    struct state;
    std::unique_ptr<state> s_;
};
void register_login_commands(context ctx);

// A size option's value by cz's one size grammar (cz/core/size.hpp: 512, 64K, 1.5G, 2GiB); a
// value outside it is a usage error naming the option.
inline std::uint64_t parse_size_option(const char* option, const std::string& text) {
    std::error_code ec;
    auto bytes = parse_size(text, ec);
    if (ec)
        throw CLI::ValidationError(option, "'" + text + "' is not a size (" + ec.message() +
                                               "; e.g. 512, 64K, 1.5G, 2GiB)");
    return bytes;
}

// Opens a file for reading, "-" meaning standard input. Throws cz::system_error naming the path.
unique_fd open_input(const std::string& path);

} // namespace cz::cli
