// cz digest, cz decompress — cz/core's hashing and decompression from the command line.
#include "cli.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>

#include <fmt/format.h>

#include <string>
#include <vector>

namespace cz::cli {

struct digest_options {
    std::vector<std::string> files;
};

int run_digest(const digest_options& o) {
    for (const auto& path : o.files) {
        auto fd = open_input(path);
        fd_source src(fd.get());
        sha256_hasher hasher;
        std::error_code ec;
        copy(src, hasher, ec);
        throw_if(ec, path);
        fmt::print("{}  {}\n", hasher.final(), path);
    }
    return exit_ok;
}

struct decompress_options {
    std::string file = "-";
    std::string max_output; // a size (parse_size_option); empty: no limit
};

int run_decompress(const decompress_options& o) {
    decompression_limits limits;
    if (!o.max_output.empty()) limits.max_output = parse_size_option("--max-output", o.max_output);
    auto fd = open_input(o.file);
    fd_source src(fd.get());
    decompressing_source dec(src, decompressing_source::mode::detect, limits);
    fd_sink out(1);
    std::error_code ec;
    copy(dec, out, ec);
    if (ec) throw_error(ec, "{}: at compressed offset {}", o.file, dec.bytes_in());
    return exit_ok;
}

void register_core_commands(context ctx) {
    // cz digest FILE...
    add_command<digest_options>(
        ctx, ctx.app, "digest",
        "Print the OCI content digest (sha256:<hex>) of each file, as stored",
        [](CLI::App& cmd, digest_options& o) {
            cmd.add_option("FILE", o.files, "Files to hash; - for standard input")->required();
        },
        run_digest);

    // cz decompress FILE
    add_command<decompress_options>(
        ctx, ctx.app, "decompress",
        "Decompress a gzip or zstd stream (detected by magic) to standard output; plain "
        "input is copied as is",
        [](CLI::App& cmd, decompress_options& o) {
            cmd.add_option("FILE", o.file, "Input file; - for standard input (the default)");
            cmd.add_option("--max-output", o.max_output,
                           "Fail once the output would exceed SIZE (e.g. 10G)");
        },
        run_decompress);
}

} // namespace cz::cli
