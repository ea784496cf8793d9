// docker-registry on loopback for the registry tests: started in a directory of its own, with
// plain HTTP or HTTPS (a CA made for the test), Basic or token authentication, stopped with the
// object; the token service for the latter (token_server); and run(), which drives a test's
// coroutine to its end.
#pragma once

#include "support/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_future.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace cz_test {

inline std::uint16_t free_port() {
    using asio::ip::tcp;
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// An htpasswd line "user:bcrypt-hash" for docker-registry's Basic authentication, or "" when
// this machine cannot make one. distribution takes bcrypt only; Python's crypt makes one ($2a$ and
// $2b$ hash alike).
inline std::string htpasswd_line(const std::string& user, const std::string& password) {
    std::string hash;
    if (sh("python3 -c \"import crypt, sys; print(crypt.crypt(sys.argv[1], "
           "crypt.mksalt(crypt.METHOD_BLOWFISH)).replace('\\$2b\\$', '\\$2a\\$'))\" " +
               quote(password) + " 2>/dev/null",
           &hash) != 0 ||
        !hash.starts_with("$2"))
        return {};
    while (!hash.empty() && hash.back() == '\n')
        hash.pop_back();
    return user + ":" + hash;
}

// Starts `argv` (argv[0] from PATH) with its stdout and stderr in `log`, not in the test's output.
inline pid_t spawn_logged(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// Returns once something accepts connections on 127.0.0.1:`port`; throws after 5 s.
inline void wait_listening(std::uint16_t port, const std::string& what) {
    using tcp = asio::ip::tcp;
    for (int i = 0; i < 100; ++i) {
        asio::io_context io;
        tcp::socket s(io);
        std::error_code ec;
        s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
        if (!ec) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error(what + " did not start listening");
}

// docker-registry serving a directory of its own on 127.0.0.1, for the test's lifetime.
// With `tls`, it serves HTTPS with a certificate for IP 127.0.0.1 and the name registry.test (what
// a proxy in the tests reaches it by) signed by a CA made here (ca_file()).
class registry_server {
    using tcp = asio::ip::tcp;

public:
    // `htpasswd`: a line "user:bcrypt-hash" turns on distribution's Basic authentication.
    // `auth`: an "auth:" section of the configuration instead (token_server::auth_config()).
    explicit registry_server(bool tls = false, const std::string& htpasswd = {},
                             const std::string& auth = {})
        : port_(free_port()) {
        std::string config_text = "version: 0.1\n"
                                  "log:\n  level: error\n"
                                  "storage:\n  filesystem:\n    rootdirectory: " +
                                  (dir_.path / "data").string() +
                                  "\n"
                                  "http:\n  addr: 127.0.0.1:" +
                                  std::to_string(port_) + "\n";
        if (tls) {
            auto d = quote(dir_.path.string());
            write_file(dir_.path / "san.ext", "subjectAltName=IP:127.0.0.1,DNS:registry.test\n");
            sh_ok("cd " + d +
                  " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                  " -keyout ca.key -out ca.pem -days 2 -subj /CN=cz-test-ca 2>/dev/null"
                  " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                  " -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null"
                  " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
                  " -out server.pem -days 2 -extfile san.ext 2>/dev/null");
            config_text += "  tls:\n    certificate: " + (dir_.path / "server.pem").string() +
                           "\n    key: " + (dir_.path / "server.key").string() + "\n";
        }
        if (!htpasswd.empty()) {
            write_file(dir_.path / "htpasswd", htpasswd + "\n");
            config_text += "auth:\n  htpasswd:\n    realm: cz-test\n    path: " +
                           (dir_.path / "htpasswd").string() + "\n";
        }
        config_text += auth;
        auto config = dir_.path / "config.yml";
        write_file(config, config_text);
        pid_ =
            spawn_logged({"docker-registry", "serve", config.string()}, dir_.path / "registry.log");
        wait_listening(port_, "docker-registry");
    }
    ~registry_server() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string port() const { return std::to_string(port_); }
    std::filesystem::path ca_file() const { return dir_.path / "ca.pem"; }
    // Its access log so far: one line per request ("PATCH /v2/cz/app/blobs/uploads/... 202").
    std::string log() const { return read_file(dir_.path / "registry.log"); }

private:
    temp_dir dir_{"cz-registry"};
    std::uint16_t port_;
    pid_t pid_ = -1;
};

// tests/oci/token_server.py on 127.0.0.1, for the test's lifetime: the token service of a
// docker-registry started with auth_config() (RS256 tokens for `user`:`password` by Basic, or
// for the identity token `refresh` by OAuth2's refresh grant). Needs python3 with cryptography.
class token_server {
public:
    token_server(const std::string& user, const std::string& password, const std::string& refresh)
        : port_(free_port()) {
        const char* root = std::getenv("CZ_SOURCE_ROOT");
        REQUIRE_MESSAGE(root, "CZ_SOURCE_ROOT is not set (run the tests through meson test)");
        auto script = std::filesystem::path(root) / "tests" / "oci" / "token_server.py";
        pid_ = spawn_logged({"python3", script.string(), dir_.path.string(), std::to_string(port_),
                             user, password, refresh},
                            dir_.path / "server.log");
        try {
            wait_listening(port_, "token_server.py (" + read_file(dir_.path / "server.log") + ")");
        } catch (...) {
            stop();
            throw;
        }
    }
    ~token_server() { stop(); }
    // Whether python3 can run the server (its cryptography package).
    static bool available() {
        return sh("python3 -c 'import cryptography.x509' >/dev/null 2>&1") == 0;
    }
    // The "auth:" section of a docker-registry configuration that trusts this server.
    std::string auth_config() const {
        return "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(port_) +
               "/token\n    service: cz-test\n    issuer: cz-test-issuer\n"
               "    rootcertbundle: " +
               (dir_.path / "token.pem").string() + "\n";
    }
    // The requests served: "GET basic", "GET anonymous", "POST refresh", one a line.
    std::string log() const { return read_file(dir_.path / "token.log"); }

private:
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    temp_dir dir_{"cz-token"};
    std::uint16_t port_;
    pid_t pid_ = -1;
};

// Runs `body` (a coroutine taking the io_context) to completion.
template <class F>
void run(F body) {
    asio::io_context io;
    auto done = asio::co_spawn(io, body(io), asio::use_future);
    io.run();
    done.get();
}

} // namespace cz_test
