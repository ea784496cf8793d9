// examples/cz/cli.hpp — what the command files of the cz tool share.
//
// Exit codes, the same for every command:
//   0  success
//   1  an error: one line on stderr, "cz: <what failed>: <why>"
//   2  usage error (bad flags or arguments); CLI11 prints the usage
#pragma once

#include <CLI/CLI.hpp>

#include <cz/core/error.hpp>
#include <cz/core/size.hpp>
#include <cz/core/unique_fd.hpp>

#include <functional>
#include <string>

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

void register_core_commands(context ctx);
void register_tar_commands(context ctx);
void register_ext4_commands(context ctx);
void register_netlink_commands(context ctx);
void register_vm_commands(context ctx);

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
