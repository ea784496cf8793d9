// cz digest, cz decompress — cz/core's hashing and decompression from the command line.
#include "cli.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>

#include <fmt/format.h>

namespace cz::cli {

void register_core_commands(context ctx) {
    // cz digest FILE...
    {
        auto* cmd = ctx.app.add_subcommand(
            "digest", "Print the OCI content digest (sha256:<hex>) of each file, as stored");
        auto files = std::make_shared<std::vector<std::string>>();
        cmd->add_option("FILE", *files, "Files to hash; - for standard input")->required();
        cmd->callback([files, &run = ctx.run] {
            run = [files] {
                for (const auto& path : *files) {
                    auto fd = open_input(path);
                    fd_source src(fd.get());
                    sha256_hasher hasher;
                    std::error_code ec;
                    copy(src, hasher, ec);
                    throw_if(ec, path);
                    fmt::print("{}  {}\n", hasher.final(), path);
                }
                return exit_ok;
            };
        });
    }

    // cz decompress FILE
    {
        auto* cmd = ctx.app.add_subcommand(
            "decompress",
            "Decompress a gzip or zstd stream (detected by magic) to standard output; plain "
            "input is copied as is");
        auto file = std::make_shared<std::string>("-");
        auto max_output = std::make_shared<std::string>();
        cmd->add_option("FILE", *file, "Input file; - for standard input (the default)");
        cmd->add_option("--max-output", *max_output,
                        "Fail once the output would exceed SIZE (e.g. 10G)");
        cmd->callback([file, max_output, &run = ctx.run] {
            decompression_limits limits;
            if (!max_output->empty()) limits.max_output = parse_size_option("--max-output", *max_output);
            run = [file, limits] {
                auto fd = open_input(*file);
                fd_source src(fd.get());
                decompressing_source dec(src, decompressing_source::mode::detect, limits);
                fd_sink out(1);
                std::error_code ec;
                copy(dec, out, ec);
                if (ec)
                    throw_error(ec, "{}: at compressed offset {}", *file, dec.bytes_in());
                return exit_ok;
            };
        });
    }
}

} // namespace cz::cli
