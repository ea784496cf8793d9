// docker-registry on loopback for the registry tests: started in a directory of its own, with
// plain HTTP or HTTPS (a CA made for the test), stopped with the object; and run(), which drives
// a test's coroutine to its end.
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
#include <optional>
#include <string>
#include <thread>

namespace cz_test {

inline std::uint16_t free_port() {
    using asio::ip::tcp;
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// A bcrypt hash of `password` for distribution's htpasswd (it takes bcrypt only), made by
// Python's crypt module ($2b$ written as $2a$, which hash alike); none without that module.
inline std::optional<std::string> bcrypt_hash(const std::string& password) {
    std::string hash;
    if (sh("python3 -c \"import crypt; print(crypt.crypt('" + password +
               "', crypt.mksalt(crypt.METHOD_BLOWFISH)).replace('\\$2b\\$', '\\$2a\\$'))\" "
               "2>/dev/null",
           &hash) != 0 ||
        !hash.starts_with("$2"))
        return std::nullopt;
    while (!hash.empty() && hash.back() == '\n')
        hash.pop_back();
    return hash;
}

// docker-registry serving a directory of its own on 127.0.0.1, for the test's lifetime.
// With `tls`, it serves HTTPS with a certificate for IP 127.0.0.1 signed by a CA made here
// (ca_file()).
class registry_server {
    using tcp = asio::ip::tcp;

public:
    // `htpasswd`: a line "user:bcrypt-hash" turns on distribution's Basic authentication.
    explicit registry_server(bool tls = false, const std::string& htpasswd = {})
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
            write_file(dir_.path / "san.ext", "subjectAltName=IP:127.0.0.1\n");
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
        auto config = dir_.path / "config.yml";
        write_file(config, config_text);
        auto log = (dir_.path / "registry.log").string();
        pid_ = ::fork();
        if (pid_ == 0) { // its access log goes to a file, not into the test's output
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execlp("docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
            ::_exit(127);
        }
        // Ready once it accepts connections.
        for (int i = 0; i < 100; ++i) {
            asio::io_context io;
            tcp::socket s(io);
            std::error_code ec;
            s.connect(endpoint(), ec);
            if (!ec) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("docker-registry did not start listening");
    }
    ~registry_server() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string port() const { return std::to_string(port_); }
    std::filesystem::path ca_file() const { return dir_.path / "ca.pem"; }

private:
    temp_dir dir_{"cz-registry"};
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
