// cz image push: an image from the store under the state root to a registry, through
// cz/oci/registry's push.
//
//   cz image push [--insecure] [--quiet] LOCAL-NAME [REMOTE-REF]
//
// LOCAL-NAME is found in the store as `cz image ls` shows it (or by its normalised form);
// REMOTE-REF, by default LOCAL-NAME itself, says where it goes: registry, repository and tag (or
// digest). A registry on a loopback address is spoken to in plain HTTP; any other over HTTPS
// unless --insecure. Each blob ends in one line (pushed, already there, mounted from another
// repository); on a terminal the blob being sent is a line rewritten in place. --quiet prints
// only the digest pushed.
#include "cli.hpp"

#include <cz/oci/reference.hpp>
#include <cz/oci/registry/push.hpp>
#include <cz/oci/store.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <unistd.h>

namespace cz::cli {

namespace {

struct image_push_options {
    std::string local;
    std::string remote;
    bool insecure = false;
    bool quiet = false;
};

std::string mebibytes(std::uint64_t bytes) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// One line per blob as it ends; on a terminal, the bytes of the one going up, redrawn.
std::function<void(const oci::registry::push_progress&)> progress_printer() {
    bool terminal = ::isatty(STDOUT_FILENO) != 0;
    auto last_draw = std::chrono::steady_clock::now();
    return [terminal, last_draw](const oci::registry::push_progress& p) mutable {
        using oci::registry::push_step;
        auto name = p.digest.hex().substr(0, 12);
        auto clear = terminal ? "\r\033[K" : "";
        switch (p.step) {
        case push_step::uploading:
            if (!terminal ||
                std::chrono::steady_clock::now() - last_draw < std::chrono::milliseconds(100))
                return;
            last_draw = std::chrono::steady_clock::now();
            fmt::print("\r\033[K{}: {} of {}", name, mebibytes(p.done), mebibytes(p.total));
            break;
        case push_step::uploaded:
            fmt::print("{}{}: pushed, {}\n", clear, name, mebibytes(p.total));
            break;
        case push_step::present:
            fmt::print("{}{}: already there\n", clear, name);
            break;
        case push_step::mounted:
            fmt::print("{}{}: mounted from {}\n", clear, name, p.from);
            break;
        }
        std::fflush(stdout);
    };
}

int run_image_push(const image_push_options& o) {
    std::error_code ec;
    std::string why;
    const auto& remote_text = o.remote.empty() ? o.local : o.remote;
    auto remote = oci::parse_reference(remote_text, ec, &why);
    if (ec) throw_error(ec, "{}: {}", remote_text, why);
    auto root = state_root();
    auto content = oci::content_store::open(root, ec, &why);
    if (ec) throw_error(ec, "store {}: {}", root.string(), why);
    oci::image_store images(content);

    asio::io_context io;
    oci::registry::registry_options options;
    options.proxy = oci::registry::proxy_from_environment(); // HTTPS_PROXY, NO_PROXY, ...
    if (o.insecure) options.insecure = {remote.domain};
    std::string credentials_error;
    use_docker_credentials(options, credentials_error);
    oci::registry::registry_client client(io.get_executor(), options);
    oci::registry::push_options push_options;
    if (!o.quiet) push_options.progress = progress_printer();
    std::pair<std::error_code, oci::registry::push_result> result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto [e, r] = co_await oci::registry::async_push(
                client, images, o.local, remote, push_options,
                asio::experimental::as_tuple(asio::use_awaitable));
            result = {e, r};
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    if (result.first && !credentials_error.empty())
        throw_error(result.first, "{}", credentials_error);
    if (result.first)
        throw_error(result.first, "{}",
                    client.last_error().empty() ? remote.str() : client.last_error());
    const auto& pushed = result.second.pushed;
    if (o.quiet)
        fmt::print("{}\n", pushed.digest.str());
    else
        fmt::print("Pushed: {} ({})\n", remote.str(), pushed.digest.str());
    return exit_ok;
}

} // namespace

void register_image_push_command(context ctx, CLI::App& image_cmd) {
    add_command<image_push_options>(
        ctx, image_cmd, "push",
        "Push an image from the store to a registry: the blobs the repository lacks (mounted "
        "from another repository of the registry when one has them), then its manifests and "
        "the tag",
        [](CLI::App& cmd, image_push_options& o) {
            cmd.add_option("LOCAL-NAME", o.local,
                           "The image in the store (as `cz image ls` shows it: app:1, "
                           "ghcr.io/org/app:1, ...)")
                ->required();
            cmd.add_option("REMOTE-REF", o.remote,
                           "Where it goes: registry/repository:tag or ...@sha256:... "
                           "(default: LOCAL-NAME)");
            cmd.add_flag("--insecure", o.insecure,
                         "Speak plain HTTP to REMOTE-REF's registry; loopback registries always "
                         "are");
            cmd.add_flag("--quiet,-q", o.quiet, "Print only the digest pushed");
        },
        run_image_push);
}

} // namespace cz::cli
