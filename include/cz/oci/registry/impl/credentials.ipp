// Out-of-line definitions for cz/oci/registry/credentials.hpp.
#pragma once

#include <cz/core/unique_fd.hpp>
#include <cz/oci/detail/json_depth.hpp>
#include <cz/oci/registry/credentials.hpp>

#include <fmt/format.h>
#include <openssl/base64.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace cz::oci::registry {
namespace detail {

inline bool set_credentials_error(std::error_code& ec, error_info* detail, errc e,
                                  std::string message, std::optional<std::uint64_t> offset = {}) {
    ec = e;
    if (detail) *detail = {std::move(message), offset};
    return false;
}

// `s` for an error message: control bytes as spaces, at most 200 bytes, trimmed.
inline std::string printable(std::string_view s) {
    std::string out(s.substr(0, 200));
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    while (!out.empty() && out.front() == ' ')
        out.erase(0, 1);
    return out;
}

// RFC 4648 base64 with padding, strictly (what Go's base64.StdEncoding, and so docker, takes).
inline std::optional<std::string> base64_decode(std::string_view in) {
    std::size_t max = 0;
    if (!EVP_DecodedLength(&max, in.size())) return std::nullopt;
    std::string out(max, '\0');
    std::size_t n = 0;
    if (!EVP_DecodeBase64(reinterpret_cast<std::uint8_t*>(out.data()), &n, max,
                          reinterpret_cast<const std::uint8_t*>(in.data()), in.size()))
        return std::nullopt;
    out.resize(n);
    return out;
}

inline std::string base64_encode(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    auto n = EVP_EncodeBlock(reinterpret_cast<std::uint8_t*>(out.data()),
                             reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
    out.resize(n);
    return out;
}

// A helper NAME as docker-credential-NAME: one file name, found through PATH, never a path.
inline bool is_helper_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    return true;
}

inline std::string json_key_path(std::string_view object, std::string_view key) {
    return fmt::format("{}[\"{}\"]", object, printable(key));
}

// The optional string member `name` of `entry` into `out`; false (and the error) when it is
// there but not a string.
inline bool optional_string(const nlohmann::ordered_json& entry, const char* name,
                            const std::string& where, std::string& out, std::error_code& ec,
                            error_info* detail) {
    auto it = entry.find(name);
    if (it == entry.end() || it->is_null()) return true;
    if (!it->is_string())
        return set_credentials_error(
            ec, detail, errc::malformed_credentials,
            fmt::format("{}.{}: a {}, not a string", where, name, it->type_name()));
    out = it->get<std::string>();
    return true;
}

// What cz reads from a parsed document: auths, credsStore, credHelpers.
inline bool interpret_docker_config(parsed_docker_config& c, std::error_code& ec,
                                    error_info* detail) {
    c.auths.clear();
    c.creds_store.clear();
    c.cred_helpers.clear();
    const auto& doc = c.document;
    if (!doc.is_object())
        return set_credentials_error(ec, detail, errc::malformed_credentials,
                                     fmt::format("a JSON {}, not an object", doc.type_name()));
    if (auto it = doc.find("auths"); it != doc.end() && !it->is_null()) {
        if (!it->is_object())
            return set_credentials_error(
                ec, detail, errc::malformed_credentials,
                fmt::format("auths: a {}, not an object", it->type_name()));
        for (const auto& [key, entry] : it->items()) {
            auto where = json_key_path("auths", key);
            if (!entry.is_object())
                return set_credentials_error(
                    ec, detail, errc::malformed_credentials,
                    fmt::format("{}: a {}, not an object", where, entry.type_name()));
            docker_auth a;
            a.key = key;
            std::string auth;
            if (!optional_string(entry, "auth", where, auth, ec, detail) ||
                !optional_string(entry, "username", where, a.creds.username, ec, detail) ||
                !optional_string(entry, "password", where, a.creds.password, ec, detail) ||
                !optional_string(entry, "identitytoken", where, a.creds.identity_token, ec, detail))
                return false;
            if (!auth.empty()) {
                auto decoded = base64_decode(auth);
                if (!decoded)
                    return set_credentials_error(ec, detail, errc::malformed_credentials,
                                                 fmt::format("{}.auth: not base64", where));
                auto colon = decoded->find(':');
                if (colon == std::string::npos || colon == 0)
                    return set_credentials_error(
                        ec, detail, errc::malformed_credentials,
                        fmt::format("{}.auth: not \"user:password\" with a user", where));
                a.creds.username = decoded->substr(0, colon);
                a.creds.password = decoded->substr(colon + 1);
            }
            c.auths.push_back(std::move(a));
        }
    }
    if (auto it = doc.find("credsStore"); it != doc.end() && !it->is_null()) {
        if (!it->is_string())
            return set_credentials_error(
                ec, detail, errc::malformed_credentials,
                fmt::format("credsStore: a {}, not a string", it->type_name()));
        c.creds_store = it->get<std::string>();
        if (!c.creds_store.empty() && !is_helper_name(c.creds_store))
            return set_credentials_error(
                ec, detail, errc::malformed_credentials,
                fmt::format("credsStore: '{}' is not a helper name (letters, digits, '.', '_', "
                            "'-')",
                            printable(c.creds_store)));
    }
    if (auto it = doc.find("credHelpers"); it != doc.end() && !it->is_null()) {
        if (!it->is_object())
            return set_credentials_error(
                ec, detail, errc::malformed_credentials,
                fmt::format("credHelpers: a {}, not an object", it->type_name()));
        for (const auto& [key, name] : it->items()) {
            auto where = json_key_path("credHelpers", key);
            if (!name.is_string())
                return set_credentials_error(
                    ec, detail, errc::malformed_credentials,
                    fmt::format("{}: a {}, not a string", where, name.type_name()));
            auto helper = name.get<std::string>();
            if (!is_helper_name(helper))
                return set_credentials_error(
                    ec, detail, errc::malformed_credentials,
                    fmt::format("{}: '{}' is not a helper name (letters, digits, '.', '_', '-')",
                                where, printable(helper)));
            c.cred_helpers[key] = helper;
        }
    }
    return true;
}

// One run of a helper: what it printed and how it ended.
struct helper_run {
    std::string out;
    std::string err;
    bool signaled = false;
    int code = 0; // exit status, or the signal
};

// The protocol's "not found" answer, which is no error for get and erase.
inline bool is_not_found(const helper_run& r) {
    return printable(r.out) == "credentials not found in native keychain";
}

inline std::string helper_failure(const std::string& program, const char* action,
                                  const helper_run& r) {
    auto said = printable(r.out.empty() ? r.err : r.out);
    std::string how = r.signaled ? fmt::format("killed by signal {}", r.code)
                                 : fmt::format("exit status {}", r.code);
    return fmt::format("{} {}: {}{}{}", program, action, how, said.empty() ? "" : ": ", said);
}

// SIGPIPE blocked on this thread while a helper runs (a helper that exits without reading its
// input must not kill cz), and a SIGPIPE raised meanwhile consumed before it is unblocked.
class sigpipe_guard {
public:
    sigpipe_guard() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~sigpipe_guard() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            sigtimedwait(&pipe_, nullptr, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;
    const sigset_t& old_mask() const noexcept { return old_; }

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool was_pending_ = false;
};

// Runs docker-credential-`name` `action` with `input` on its stdin, without a shell; kills it
// at the timeout. False (and the error) when it could not be run to its end.
inline bool run_helper(std::string_view name, const char* action, std::string_view input,
                       const credential_helper_options& options, helper_run& result,
                       std::error_code& ec, error_info* detail) {
    std::string program = "docker-credential-" + std::string(name);
    auto fail = [&](std::string what) {
        return set_credentials_error(ec, detail, errc::credential_helper_failed,
                                     fmt::format("{} {}: {}", program, action, what));
    };
    if (!is_helper_name(name))
        return fail(fmt::format("'{}' is not a helper name", printable(name)));
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return fail(last_system_error().message());
    unique_fd in_read(in[0]), in_write(in[1]);
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(last_system_error().message());
    unique_fd out_read(out[0]), out_write(out[1]);
    if (::pipe2(err, O_CLOEXEC) != 0) return fail(last_system_error().message());
    unique_fd err_read(err[0]), err_write(err[1]);

    sigpipe_guard guard;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
    // The child starts with the caller's signal mask (without the guard's SIGPIPE) and SIGPIPE
    // at its default, even when the caller ignores it.
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &guard.old_mask());
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string action_arg = action;
    char* argv[] = {program.data(), action_arg.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc == ENOENT) return fail("not found in PATH");
    if (rc != 0) return fail(std::error_code(rc, std::system_category()).message());
    in_read.reset();
    out_write.reset();
    err_write.reset();

    auto deadline = std::chrono::steady_clock::now() + options.timeout;
    auto remaining_ms = [&] {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
    };
    auto kill_and_reap = [&] {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    };
    std::size_t written = 0;
    if (input.empty()) in_write.reset();
    for (int fd : {in_write.get(), out_read.get(), err_read.get()})
        if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (out_read || err_read) {
        pollfd fds[3] = {
            {in_write.get(), POLLOUT, 0}, {out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
        int wait = remaining_ms();
        if (wait == 0) {
            kill_and_reap();
            return fail(fmt::format("still running after {} ms, killed", options.timeout.count()));
        }
        int n = ::poll(fds, 3, wait);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            auto e = last_system_error();
            kill_and_reap();
            return fail(e.message());
        }
        if (in_write && fds[0].revents != 0) {
            auto w = ::write(in_write.get(), input.data() + written, input.size() - written);
            if (w > 0) written += static_cast<std::size_t>(w);
            // Done, or the helper closed its stdin (EPIPE): it has what it wanted.
            if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR))
                in_write.reset();
        }
        std::pair<unique_fd*, std::string*> readers[] = {{&out_read, &result.out},
                                                         {&err_read, &result.err}};
        for (int i = 0; i < 2; ++i) {
            auto& [fd, text] = readers[i];
            if (!*fd || fds[i + 1].revents == 0) continue;
            char buf[4096];
            auto r = ::read(fd->get(), buf, sizeof buf);
            if (r > 0) {
                text->append(buf, static_cast<std::size_t>(r));
                if (text->size() > max_helper_output) {
                    kill_and_reap();
                    return fail(fmt::format("printed more than {} bytes", max_helper_output));
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                fd->reset();
            }
        }
    }
    in_write.reset();
    // Its output is closed; it should be exiting.
    for (;;) {
        int status = 0;
        auto r = ::waitpid(pid, &status, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail(last_system_error().message());
        if (r == pid) {
            result.signaled = WIFSIGNALED(status);
            result.code = result.signaled ? WTERMSIG(status) : WEXITSTATUS(status);
            return true;
        }
        if (remaining_ms() == 0) {
            kill_and_reap();
            return fail(fmt::format("still running after {} ms, killed", options.timeout.count()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// A JSON text of the protocol's {"ServerURL", "Username", "Secret"}; errc::invalid_argument when
// a value is not UTF-8 (JSON cannot carry it).
inline std::optional<std::string> helper_request(std::string_view server, const credentials& c) {
    nlohmann::json j = {{"ServerURL", server},
                        {"Username", c.identity_token.empty() ? c.username : "<token>"},
                        {"Secret", c.identity_token.empty() ? c.password : c.identity_token}};
    try {
        return j.dump();
    } catch (const nlohmann::json::type_error&) {
        return std::nullopt;
    }
}

// Writes `text` to `path` atomically: a temporary file beside it, mode 0600, synced, renamed.
inline bool write_atomically(const std::filesystem::path& path, std::string_view text,
                             std::error_code& ec, error_info* detail) {
    auto fail = [&](std::error_code e, const std::string& what) {
        ec = e;
        if (detail) *detail = {fmt::format("{}: {}", what, e.message()), std::nullopt};
        return false;
    };
    auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    // Its directory, made as docker makes it (0700), each missing level.
    std::filesystem::path made;
    for (const auto& part : dir) {
        made /= part;
        if (::mkdir(made.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(last_system_error(), made.string());
    }
    std::string temp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    unique_fd fd(::mkostemp(temp.data(), O_CLOEXEC));
    if (!fd) return fail(last_system_error(), temp);
    auto discard = [&](std::error_code e, const std::string& what) {
        ::unlink(temp.c_str());
        return fail(e, what);
    };
    if (::fchmod(fd.get(), 0600) != 0) return discard(last_system_error(), temp);
    std::size_t done = 0;
    while (done < text.size()) {
        auto w = ::write(fd.get(), text.data() + done, text.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return discard(last_system_error(), temp);
        done += static_cast<std::size_t>(w);
    }
    if (::fsync(fd.get()) != 0) return discard(last_system_error(), temp);
    fd.reset();
    if (::rename(temp.c_str(), path.c_str()) != 0) return discard(last_system_error(), path);
    unique_fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dirfd) ::fsync(dirfd.get());
    return true;
}

} // namespace detail

CZ_DECL std::string credentials_key(std::string_view registry) {
    std::string_view s = registry;
    if (s.starts_with("https://"))
        s.remove_prefix(8);
    else if (s.starts_with("http://"))
        s.remove_prefix(7);
    s = s.substr(0, s.find('/'));
    if (s == "docker.io" || s == "index.docker.io" || s == "registry-1.docker.io")
        return std::string(docker_hub_key);
    return std::string(s);
}

CZ_DECL std::filesystem::path docker_config_path() {
    if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
        return std::filesystem::path(d) / "config.json";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".docker" / "config.json";
    return {};
}

CZ_DECL parsed_docker_config parse_docker_config(std::string_view text, std::error_code& ec,
                                                 error_info* detail) {
    ec.clear();
    parsed_docker_config c;
    if (text.size() > max_docker_config_size) {
        detail::set_credentials_error(
            ec, detail, errc::malformed_credentials,
            fmt::format("{} bytes, more than the {} allowed", text.size(), max_docker_config_size));
        return {};
    }
    if (!oci::detail::depth_within(text, 64)) {
        detail::set_credentials_error(ec, detail, errc::malformed_credentials,
                                      "arrays and objects nested more than 64 deep");
        return {};
    }
    try {
        c.document = nlohmann::ordered_json::parse(text.begin(), text.end());
    } catch (const nlohmann::ordered_json::parse_error& e) {
        // e.byte counts from 1 and may point one past the end.
        std::uint64_t at = std::min<std::uint64_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
        detail::set_credentials_error(ec, detail, errc::malformed_credentials,
                                      "not JSON: syntax error", at);
        return {};
    } catch (const nlohmann::ordered_json::exception& e) {
        detail::set_credentials_error(ec, detail, errc::malformed_credentials,
                                      fmt::format("not JSON: {}", e.what()));
        return {};
    }
    if (!detail::interpret_docker_config(c, ec, detail)) return {};
    return c;
}

CZ_DECL std::optional<credentials> helper_get(std::string_view helper, std::string_view server,
                                              const credential_helper_options& options,
                                              std::error_code& ec, error_info* detail) {
    ec.clear();
    detail::helper_run r;
    if (!detail::run_helper(helper, "get", server, options, r, ec, detail)) return std::nullopt;
    std::string program = "docker-credential-" + std::string(helper);
    if (r.signaled || r.code != 0) {
        if (!r.signaled && detail::is_not_found(r)) return std::nullopt;
        detail::set_credentials_error(ec, detail, errc::credential_helper_failed,
                                      detail::helper_failure(program, "get", r));
        return std::nullopt;
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object() || !j.contains("Username") || !j["Username"].is_string() ||
        !j.contains("Secret") || !j["Secret"].is_string()) {
        detail::set_credentials_error(
            ec, detail, errc::credential_helper_failed,
            fmt::format("{} get: its answer is not {{\"Username\": ..., \"Secret\": ...}}: '{}'",
                        program, detail::printable(r.out)));
        return std::nullopt;
    }
    credentials c;
    auto user = j["Username"].get<std::string>();
    auto secret = j["Secret"].get<std::string>();
    if (user.empty() && secret.empty()) return std::nullopt;
    if (user == "<token>")
        c.identity_token = std::move(secret);
    else {
        c.username = std::move(user);
        c.password = std::move(secret);
    }
    return c;
}

CZ_DECL void helper_store(std::string_view helper, std::string_view server,
                          const credentials& creds, const credential_helper_options& options,
                          std::error_code& ec, error_info* detail) {
    ec.clear();
    std::string program = "docker-credential-" + std::string(helper);
    auto request = detail::helper_request(server, creds);
    if (!request) {
        detail::set_credentials_error(ec, detail, errc::credential_helper_failed,
                                      fmt::format("{} store: the user name, password or token is "
                                                  "not UTF-8 text",
                                                  program));
        return;
    }
    detail::helper_run r;
    if (!detail::run_helper(helper, "store", *request, options, r, ec, detail)) return;
    if (r.signaled || r.code != 0)
        detail::set_credentials_error(ec, detail, errc::credential_helper_failed,
                                      detail::helper_failure(program, "store", r));
}

CZ_DECL bool helper_erase(std::string_view helper, std::string_view server,
                          const credential_helper_options& options, std::error_code& ec,
                          error_info* detail) {
    ec.clear();
    detail::helper_run r;
    if (!detail::run_helper(helper, "erase", server, options, r, ec, detail)) return false;
    if (!r.signaled && r.code == 0) return true;
    if (!r.signaled && detail::is_not_found(r)) return false;
    detail::set_credentials_error(
        ec, detail, errc::credential_helper_failed,
        detail::helper_failure("docker-credential-" + std::string(helper), "erase", r));
    return false;
}

CZ_DECL docker_config docker_config::load(const std::filesystem::path& path, std::error_code& ec,
                                          error_info* detail) {
    ec.clear();
    docker_config c;
    c.path_ = path;
    if (path.empty()) return c;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return c;
        ec = last_system_error();
        if (detail) *detail = {path.string(), std::nullopt};
        return {};
    }
    std::string text;
    char buf[65536];
    for (;;) {
        auto n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ec = last_system_error();
            if (detail) *detail = {path.string(), std::nullopt};
            return {};
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max_docker_config_size) break; // the parser names the limit
    }
    error_info why;
    c.parsed_ = parse_docker_config(text, ec, &why);
    if (ec) {
        if (detail) *detail = {fmt::format("{}: {}", path.string(), why.message), why.offset};
        return {};
    }
    return c;
}

CZ_DECL std::string docker_config::helper_for(std::string_view registry) const {
    auto key = credentials_key(registry);
    if (auto it = parsed_.cred_helpers.find(key); it != parsed_.cred_helpers.end())
        return it->second;
    for (const auto& [k, name] : parsed_.cred_helpers)
        if (credentials_key(k) == key) return name;
    return parsed_.creds_store;
}

CZ_DECL std::optional<credentials>
docker_config::get(std::string_view registry, std::error_code& ec, error_info* detail) const {
    ec.clear();
    auto key = credentials_key(registry);
    if (auto helper = helper_for(registry); !helper.empty())
        return helper_get(helper, key, helper_options_, ec, detail);
    const docker_auth* found = nullptr;
    for (const auto& a : parsed_.auths)
        if (a.key == key || (!found && credentials_key(a.key) == key)) found = &a;
    if (!found || found->creds == credentials{}) return std::nullopt;
    return found->creds;
}

CZ_DECL void docker_config::store(std::string_view registry, const credentials& creds,
                                  std::error_code& ec, error_info* detail) {
    ec.clear();
    if (creds.username.find(':') != std::string::npos) {
        ec = make_error_code(std::errc::invalid_argument);
        if (detail)
            *detail = {fmt::format("user name '{}': a ':' cannot be stored in docker's "
                                   "\"user:password\"",
                                   detail::printable(creds.username)),
                       std::nullopt};
        return;
    }
    auto key = credentials_key(registry);
    auto helper = helper_for(registry);
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    if (!helper.empty()) {
        helper_store(helper, key, creds, helper_options_, ec, detail);
        if (ec) return;
    } else {
        if (!creds.username.empty())
            entry["auth"] = detail::base64_encode(creds.username + ":" + creds.password);
        if (!creds.identity_token.empty()) entry["identitytoken"] = creds.identity_token;
    }
    auto& doc = parsed_.document;
    if (!doc.contains("auths") || !doc["auths"].is_object())
        doc["auths"] = nlohmann::ordered_json::object();
    auto& auths = doc["auths"];
    for (auto it = auths.begin(); it != auths.end();)
        it = it.key() != key && credentials_key(it.key()) == key ? auths.erase(it) : std::next(it);
    auths[key] = std::move(entry);
    save(ec, detail);
}

CZ_DECL bool docker_config::erase(std::string_view registry, std::error_code& ec,
                                  error_info* detail) {
    ec.clear();
    auto key = credentials_key(registry);
    bool found = false;
    if (auto helper = helper_for(registry); !helper.empty()) {
        found = helper_erase(helper, key, helper_options_, ec, detail);
        if (ec) return false;
    }
    auto& doc = parsed_.document;
    bool changed = false;
    if (auto a = doc.find("auths"); a != doc.end() && a->is_object()) {
        for (auto it = a->begin(); it != a->end();) {
            if (credentials_key(it.key()) == key) {
                it = a->erase(it);
                changed = true;
            } else {
                ++it;
            }
        }
    }
    if (changed) save(ec, detail);
    return !ec && (found || changed);
}

CZ_DECL void docker_config::save(std::error_code& ec, error_info* detail) {
    if (path_.empty()) {
        ec = make_error_code(std::errc::invalid_argument);
        if (detail)
            *detail = {"no docker config file to write: set DOCKER_CONFIG or HOME", std::nullopt};
        return;
    }
    // A config.json that is a symbolic link stays one: its target is what is replaced.
    std::error_code fs_ec;
    struct stat st {};
    auto target = ::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)
                      ? std::filesystem::weakly_canonical(path_, fs_ec)
                      : path_;
    if (fs_ec) {
        ec = fs_ec;
        if (detail) *detail = {path_.string(), std::nullopt};
        return;
    }
    std::string text;
    try {
        text = parsed_.document.dump(1, '\t') + "\n";
    } catch (const nlohmann::ordered_json::type_error&) {
        ec = errc::malformed_credentials;
        if (detail)
            *detail = {fmt::format("{}: a user name, password or token that is not UTF-8 text",
                                   path_.string()),
                       std::nullopt};
        return;
    }
    if (!detail::write_atomically(target, text, ec, detail)) return;
    std::error_code ignored;
    parsed_docker_config reread;
    reread.document = std::move(parsed_.document);
    detail::interpret_docker_config(reread, ignored, nullptr);
    parsed_ = std::move(reread);
}

} // namespace cz::oci::registry
