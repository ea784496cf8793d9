// cz image pull: an image from a registry into the store under the state root, through
// cz/oci/registry's client.
//
//   cz image pull REF [--platform os/arch[/variant]] [--insecure] [--quiet]
//
// A registry on a loopback address is spoken to in plain HTTP; any other over HTTPS unless
// --insecure names it. A registry that wants credentials gets those docker keeps for it (`cz
// login`; cz/oci/registry/credentials.hpp), looked up when it asks. On a terminal, each blob has
// a line with a progress bar (bytes, rate, time left; "done" once verified and committed) and one
// more line shows the whole pull, all redrawn in place; elsewhere each finished blob gets a
// line. --quiet prints only the digest pulled. https_proxy,
// http_proxy and no_proxy (or HTTPS_PROXY...) from the environment name the proxy to go
// through, as for docker.
#include "cli.hpp"

#include <cz/oci/platform.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/registry/client.hpp>
#include <cz/oci/registry/credentials.hpp>
#include <cz/oci/store.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

namespace cz::cli {

namespace {

struct image_pull_options {
    std::string ref;
    std::string platform;
    std::vector<std::string> insecure;
    bool quiet = false;
    std::FILE* out = stdout; // progress and result
};

int run_image_pull(const image_pull_options& o) {
    std::error_code ec;
    std::string why;
    auto ref = oci::parse_reference(o.ref, ec, &why);
    if (ec) throw_error(ec, "{}: {}", o.ref, why);
    auto want = oci::host_platform();
    if (!o.platform.empty()) {
        want = oci::parse_platform(o.platform, ec, &why);
        if (ec) throw_error(ec, "--platform {}: {}", o.platform, why);
    }
    auto root = state_root();
    auto content = oci::content_store::open(root, ec, &why);
    if (ec) throw_error(ec, "store {}: {}", root.string(), why);
    oci::image_store images(content);

    asio::io_context io;
    oci::registry::registry_options options;
    options.proxy = oci::registry::proxy_from_environment(); // HTTPS_PROXY, NO_PROXY, ...
    options.insecure = o.insecure;
    // Why docker's credentials could not be had, when that is why the pull failed.
    std::string credentials_error;
    use_docker_credentials(options, credentials_error);
    oci::registry::registry_client client(io.get_executor(), options);
    pull_display display(o.out);
    if (!o.quiet)
        client.on_progress([&](const oci::registry::blob_progress& p) { display.blob(p); });
    std::pair<std::error_code, oci::descriptor> result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto [e, d] = co_await client.async_pull(
                ref, want, images, asio::experimental::as_tuple(asio::use_awaitable));
            result = {e, d};
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    display.clear();
    if (result.first && !credentials_error.empty())
        throw_error(result.first, "{}", credentials_error);
    if (result.first == oci::registry::errc::unauthorized)
        throw_error(result.first, "{} (log in with: cz login {})", client.last_error(), ref.domain);
    if (result.first)
        throw_error(result.first, "{}",
                    client.last_error().empty() ? ref.str() : client.last_error());
    if (o.quiet)
        fmt::print(o.out, "{}\n", result.second.digest.str());
    else
        fmt::print(o.out, "Pulled: {} ({})\n", ref.str(), result.second.digest.str());
    return exit_ok;
}

} // namespace

// On a terminal, a block of lines at the bottom, redrawn in place: one per blob (a bar, the bytes
// so far, the rate, the time left; "done" once committed), and one for the whole pull. Elsewhere,
// a line per finished blob.
struct pull_display::state {
    struct blob_state {
        std::string name; // the digest's first 12 hex digits
        std::uint64_t done = 0, total = 0;
        bool finished = false;
        std::chrono::steady_clock::time_point start;
    };
    std::mutex mutex;
    std::FILE* out;
    bool terminal;
    int drawn = 0; // lines of the block now on the terminal
    std::chrono::steady_clock::time_point start{}, last_draw{};
    std::vector<blob_state> blobs; // in the order first seen

    static std::string mebibytes(std::uint64_t bytes) {
        return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    }
    // "[=====>      ] 12.0 MiB of 64.0 MiB, 31.2 MiB/s, 2s left"
    static std::string progress(std::uint64_t done, std::uint64_t total,
                                std::chrono::steady_clock::time_point since) {
        constexpr int width = 24;
        int filled = total ? static_cast<int>(width * std::min(done, total) / total) : 0;
        std::string bar = std::string(filled, '=') + std::string(width - filled, ' ');
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
        double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        std::string left =
            rate > 0 && total > done
                ? fmt::format(", {:.0f}s left", static_cast<double>(total - done) / rate)
                : "";
        return fmt::format("[{}] {} of {}, {}/s{}", bar, mebibytes(done), mebibytes(total),
                           mebibytes(static_cast<std::uint64_t>(rate)), left);
    }
    void erase() {
        if (drawn > 0) fmt::print(out, "\033[{}F\033[J", drawn); // up to the block's top, clear
        drawn = 0;
    }
    void draw() {
        erase();
        last_draw = std::chrono::steady_clock::now();
        std::uint64_t done = 0, total = 0;
        for (const auto& b : blobs) {
            done += b.done;
            total += b.total;
            if (b.finished)
                fmt::print(out, "{}: done, {}\n", b.name, mebibytes(b.total));
            else
                fmt::print(out, "{}: {}\n", b.name, progress(b.done, b.total, b.start));
        }
        fmt::print(out, "total: {} in {} blobs\n", progress(done, total, start), blobs.size());
        drawn = static_cast<int>(blobs.size()) + 1;
    }
};

pull_display::pull_display(std::FILE* out) : s_(std::make_unique<state>()) {
    s_->out = out;
    s_->terminal = ::isatty(::fileno(out)) != 0;
}

pull_display::~pull_display() = default;

void pull_display::blob(const oci::registry::blob_progress& p) {
    std::lock_guard lock(s_->mutex);
    auto now = std::chrono::steady_clock::now();
    if (s_->start == std::chrono::steady_clock::time_point{}) s_->start = now;
    auto name = p.digest.hex().substr(0, 12);
    auto it = std::find_if(s_->blobs.begin(), s_->blobs.end(),
                           [&](const state::blob_state& b) { return b.name == name; });
    if (it == s_->blobs.end()) {
        s_->blobs.push_back({name, 0, 0, false, now});
        it = s_->blobs.end() - 1;
    }
    it->done = p.done;
    it->total = p.total;
    it->finished = p.finished;
    if (!s_->terminal) {
        if (p.finished) fmt::print(s_->out, "{}: done, {}\n", name, state::mebibytes(p.total));
    } else if (p.finished || now - s_->last_draw > std::chrono::milliseconds(100)) {
        s_->draw();
    }
    std::fflush(s_->out);
}

void pull_display::line(std::string_view text) {
    std::lock_guard lock(s_->mutex);
    // Above the block: the block is drawn again under it.
    s_->erase();
    fmt::print(s_->out, "{}\n", text);
    if (s_->terminal && !s_->blobs.empty()) s_->draw();
    std::fflush(s_->out);
}

void pull_display::clear() {
    std::lock_guard lock(s_->mutex);
    // The blobs' lines stay (finished ones as "done"); the whole pull's line goes.
    if (s_->drawn > 0) {
        fmt::print(s_->out, "\033[1F\033[J");
        s_->drawn = 0;
    }
    std::fflush(s_->out);
}

void use_docker_credentials(oci::registry::registry_options& options, std::string& error) {
    options.credentials =
        [&error](std::string_view registry) -> std::optional<oci::registry::credentials> {
        std::error_code ec;
        error_info why;
        auto config =
            oci::registry::docker_config::load(oci::registry::docker_config_path(), ec, &why);
        if (!ec) {
            auto found = config.get(registry, ec, &why);
            if (!ec) return found;
        }
        error = fmt::format("credentials for {}: {} ({})", registry, to_string(why), ec.message());
        return std::nullopt;
    };
}

void register_image_pull_command(context ctx, CLI::App& image_cmd) {
    add_command<image_pull_options>(
        ctx, image_cmd, "pull",
        "Pull an image from a registry into the store: the manifest for this machine's platform "
        "(or --platform), its config and layers, then the tag. Through the proxy that "
        "HTTPS_PROXY names (HTTP_PROXY for plain HTTP), except to NO_PROXY's hosts and localhost",
        [](CLI::App& cmd, image_pull_options& o) {
            cmd.add_option("REF", o.ref,
                           "Image reference (busybox, ghcr.io/org/app:1, ...@sha256:...)")
                ->required();
            cmd.add_option("--platform", o.platform, "os/arch[/variant] (default: this machine's)");
            cmd.add_option("--insecure", o.insecure,
                           "A registry (host[:port]) to speak plain HTTP to; loopback registries "
                           "always are")
                ->type_name("REGISTRY");
            cmd.add_flag("--quiet,-q", o.quiet, "Print only the digest pulled");
        },
        run_image_pull);
}

} // namespace cz::cli
