// cz image pull: an image from a registry into the store under the state root, through
// cz/oci/registry's client.
//
//   cz image pull REF [--platform os/arch[/variant]] [--insecure] [--quiet]
//
// A registry on a loopback address is spoken to in plain HTTP; any other over HTTPS unless
// --insecure names it. A registry that wants credentials gets those docker keeps for it (`cz
// login`; cz/oci/registry/credentials.hpp), looked up when it asks. Each finished blob gets a
// line; on a terminal, one more line under them shows the whole pull as it goes (a bar, bytes,
// rate, time left), rewritten in place. --quiet prints only the digest pulled. https_proxy,
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

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <unistd.h>

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
    if (!o.quiet) client.on_progress([&](const oci::registry::blob_progress& p) { display.blob(p); });
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

// The whole pull as one line: the bytes of the blobs seen so far, a bar, the rate since the first
// byte, and the time left at that rate.
struct pull_display::state {
    std::mutex mutex;
    std::FILE* out;
    bool terminal;
    bool drawn = false; // the pull's line is on the terminal
    std::chrono::steady_clock::time_point start{}, last_draw{};
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> blobs; // done, total

    static std::string mebibytes(std::uint64_t bytes) {
        return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    }
    std::string line() const {
        std::uint64_t done = 0, total = 0;
        for (const auto& [digest, b] : blobs) {
            done += b.first;
            total += b.second;
        }
        constexpr int width = 24;
        int filled = total ? static_cast<int>(width * done / total) : 0;
        std::string bar = std::string(filled, '=') + std::string(width - filled, ' ');
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        std::string left =
            rate > 0 && total > done
                ? fmt::format(", {:.0f}s left", static_cast<double>(total - done) / rate)
                : "";
        return fmt::format("[{}] {} of {} in {} blobs, {}/s{}", bar, mebibytes(done),
                           mebibytes(total), blobs.size(),
                           mebibytes(static_cast<std::uint64_t>(rate)), left);
    }
    void erase() {
        if (drawn) fmt::print(out, "\r\033[K");
        drawn = false;
    }
    void draw() {
        last_draw = std::chrono::steady_clock::now();
        fmt::print(out, "\r\033[K{}", line());
        drawn = true;
    }
};

pull_display::pull_display(std::FILE* out) : s_(std::make_unique<state>()) {
    s_->out = out;
    s_->terminal = ::isatty(::fileno(out)) != 0;
}

pull_display::~pull_display() { clear(); }

void pull_display::blob(const oci::registry::blob_progress& p) {
    std::lock_guard lock(s_->mutex);
    auto now = std::chrono::steady_clock::now();
    if (s_->start == std::chrono::steady_clock::time_point{}) s_->start = now;
    s_->blobs[p.digest.hex()] = {p.done, p.total};
    if (p.finished) {
        s_->erase();
        fmt::print(s_->out, "{}: done, {}\n", p.digest.hex().substr(0, 12),
                   state::mebibytes(p.total));
        if (s_->terminal) s_->draw();
    } else if (s_->terminal && now - s_->last_draw > std::chrono::milliseconds(100)) {
        s_->draw();
    }
    std::fflush(s_->out);
}

void pull_display::line(std::string_view text) {
    std::lock_guard lock(s_->mutex);
    s_->erase();
    fmt::print(s_->out, "{}\n", text);
    if (s_->terminal && !s_->blobs.empty()) s_->draw();
    std::fflush(s_->out);
}

void pull_display::clear() {
    std::lock_guard lock(s_->mutex);
    s_->erase();
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
