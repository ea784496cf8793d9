// cz login, cz logout: a registry's credentials where docker keeps them (cz/oci/registry's
// credentials.hpp), so docker, skopeo, podman and cz share them.
//
//   cz login [--username U] [--password-stdin] [--insecure] REGISTRY
//   cz logout REGISTRY
//
// login asks for what is missing on the terminal (the password without echo), checks the
// credentials with the registry (GET /v2/ through its authentication flow) and only then keeps
// them: in the credential helper docker's config file names for the registry, else base64 in the
// file itself ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), written atomically.
#include "cli.hpp"

#include <cz/oci/reference.hpp>
#include <cz/oci/registry/client.hpp>
#include <cz/oci/registry/credentials.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <termios.h>
#include <unistd.h>

namespace cz::cli {

namespace {

namespace reg = oci::registry;

struct login_options {
    std::string registry;
    std::string username;
    bool password_stdin = false;
    bool insecure = false;
};

struct logout_options {
    std::string registry;
};

// REGISTRY as references name it (host[:port]), from that or a URL ("https://r.example/v2/");
// anything else (an image name, a path) is refused.
std::string registry_name(const std::string& text) {
    std::string_view s = text;
    if (s.starts_with("https://"))
        s.remove_prefix(8);
    else if (s.starts_with("http://"))
        s.remove_prefix(7);
    std::string host(s.substr(0, s.find('/')));
    std::error_code ec;
    std::string why;
    auto ref = oci::parse_reference(host + "/x", ec, &why);
    if (host.empty() || ec || reg::credentials_key(ref.domain) != reg::credentials_key(host))
        throw CLI::ValidationError("REGISTRY", "'" + text +
                                                   "' is not a registry (host[:port], e.g. "
                                                   "docker.io, ghcr.io, localhost:5000)");
    return ref.domain;
}

// One line from standard input (the terminal), without its end; without echo unless `echo`.
// Echo goes off before the prompt shows, so nothing typed after the prompt is ever echoed; what
// was typed ahead is kept (TCSANOW, not TCSAFLUSH).
std::string ask(const char* prompt, bool echo) {
    termios old{};
    bool restore = !echo && ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    fmt::print(stderr, "{}", prompt);
    std::fflush(stderr);
    std::string line;
    char c;
    for (;;) {
        auto n = ::read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || c == '\n' || line.size() > 4096) break;
        line.push_back(c);
    }
    if (restore) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fmt::print(stderr, "\n");
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// All of standard input, without the line end after it (as `docker login --password-stdin`).
std::string read_stdin() {
    std::string text;
    char buf[4096];
    for (;;) {
        auto n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_error(last_system_error(), "standard input");
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > 64 * 1024)
            throw std::runtime_error("--password-stdin: more than 64 KiB on standard input");
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return text;
}

reg::docker_config load_docker_config() {
    std::error_code ec;
    error_info why;
    auto path = reg::docker_config_path();
    if (path.empty()) throw std::runtime_error("no docker config file: set DOCKER_CONFIG or HOME");
    auto config = reg::docker_config::load(path, ec, &why);
    if (ec) throw_error(ec, "{}", to_string(why));
    return config;
}

// Where `config` keeps `registry`'s credentials, in words.
std::string kept_in(const reg::docker_config& config, const std::string& registry) {
    auto helper = config.helper_for(registry);
    return helper.empty() ? config.path().string() : "docker-credential-" + helper;
}

int run_login(const login_options& o) {
    auto registry = registry_name(o.registry);
    bool terminal = ::isatty(STDIN_FILENO) != 0;
    if (o.password_stdin && o.username.empty())
        throw CLI::ValidationError("--password-stdin",
                                   "needs --username (standard input holds the password)");
    if (!o.password_stdin && !terminal)
        throw CLI::ValidationError("--password-stdin", "standard input is not a terminal to ask "
                                                       "for the password on: give it on standard "
                                                       "input with --password-stdin");
    // Read the config first: a malformed file fails before anything is asked or sent.
    auto config = load_docker_config();
    reg::credentials creds;
    creds.username = o.username.empty() ? ask("Username: ", true) : o.username;
    if (creds.username.empty()) throw std::runtime_error("login: no user name given");
    creds.password = o.password_stdin ? read_stdin() : ask("Password: ", false);
    if (creds.password.empty()) throw std::runtime_error("login: no password given");

    asio::io_context io;
    reg::registry_options options;
    options.proxy = reg::proxy_from_environment(); // HTTPS_PROXY, NO_PROXY, ...
    if (o.insecure) options.insecure.push_back(registry);
    options.credentials = [&](std::string_view) { return std::optional(creds); };
    reg::registry_client client(io.get_executor(), options);
    std::error_code checked;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto [e] = co_await client.async_check_credentials(
                registry, asio::experimental::as_tuple(asio::use_awaitable));
            checked = e;
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    if (checked)
        throw_error(checked, "login to {}: {}", registry,
                    client.last_error().empty() ? checked.message() : client.last_error());

    std::error_code ec;
    error_info why;
    config.store(registry, creds, ec, &why);
    if (ec) throw_error(ec, "login to {}: keeping the credentials: {}", registry, to_string(why));
    fmt::print("Login Succeeded: {} (kept in {})\n", registry, kept_in(config, registry));
    return exit_ok;
}

int run_logout(const logout_options& o) {
    auto registry = registry_name(o.registry);
    auto config = load_docker_config();
    std::error_code ec;
    error_info why;
    bool removed = config.erase(registry, ec, &why);
    if (ec) throw_error(ec, "logout from {}: {}", registry, to_string(why));
    if (!removed)
        throw std::runtime_error(fmt::format("logout: not logged in to {} (nothing in {})",
                                             registry, kept_in(config, registry)));
    fmt::print("Removed the credentials for {} from {}\n", registry, kept_in(config, registry));
    return exit_ok;
}

} // namespace

void register_login_commands(context ctx) {
    const char* where = "Credentials are kept where docker keeps them: in the credential helper "
                        "named by credHelpers or credsStore in $DOCKER_CONFIG/config.json (else "
                        "~/.docker/config.json), or base64 in that file.";
    auto* login = add_command<login_options>(
        ctx, ctx.app, "login",
        "Check a user name and password with a registry, then keep them for pulls",
        [](CLI::App& cmd, login_options& o) {
            cmd.add_option("REGISTRY", o.registry, "The registry: host[:port] (docker.io, ...)")
                ->required();
            cmd.add_option("--username,-u", o.username,
                           "User name (default: asked on the terminal)");
            cmd.add_flag("--password-stdin", o.password_stdin,
                         "Read the password from standard input (default: asked on the terminal, "
                         "without echo)");
            cmd.add_flag("--insecure", o.insecure,
                         "Speak plain HTTP to the registry; loopback registries always are");
        },
        run_login);
    login->footer(where);
    auto* logout = add_command<logout_options>(
        ctx, ctx.app, "logout", "Forget the credentials kept for a registry",
        [](CLI::App& cmd, logout_options& o) {
            cmd.add_option("REGISTRY", o.registry, "The registry: host[:port] (docker.io, ...)")
                ->required();
        },
        run_logout);
    logout->footer(where);
}

} // namespace cz::cli
