// What the benchmarks that make OCI images share (oci_load.cpp, registry_pull.cpp,
// container_cold_run.cpp): a setting from the environment or the command line, a sink that
// hashes a layer's tar (its diff_id) on its way into the compressor, layers of a chosen size, and
// Debian's docker-registry on loopback.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/oci/media_types.hpp>
#include <cz/oci/store.hpp>
#include <cz/tar/writer.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace cz::bench {

// $env when set, else argv[index] when given, else `fallback`.
inline std::uint64_t setting(const char* env, int argc, char** argv, int index,
                             std::uint64_t fallback) {
    if (const char* v = std::getenv(env)) return std::stoull(v);
    return argc > index ? std::stoull(argv[index]) : fallback;
}

// Hashes what passes on to `inner` (the layer's diff_id); finish() leaves `inner` open.
struct hashing_sink {
    cz::sink_ref inner;
    cz::sha256_hasher hasher;
    void write(cz::bytes_view data, std::error_code& ec) {
        hasher.update(data);
        inner.write(data, ec);
    }
    void finish(std::error_code& ec) { ec.clear(); }
};

// How much of a layer's data put_layer makes compressible.
enum class layer_data {
    mostly_random, // each MiB 7/8 random and 1/8 text: compresses little, as real binaries do
    random,        // incompressible
};

// Stores a gzip layer holding one file of `size` bytes of `data`; returns it and its diff_id.
inline cz::oci::descriptor put_layer(const cz::oci::content_store& cs, std::uint64_t size,
                                     unsigned seed, cz::digest& diff_id,
                                     layer_data data = layer_data::mostly_random) {
    cz::oci::descriptor unknown;
    unknown.media_type = std::string(cz::oci::media_type::oci_layer_gzip);
    unknown.size = -1;
    std::error_code ec;
    auto blob = cs.begin_write(unknown, ec);
    if (ec) throw cz::system_error(ec, "begin_write");
    cz::compressing_sink gz(blob, cz::compression::gzip, 1);
    hashing_sink hashed{gz, {}};
    cz::tar::writer w(hashed, {.deterministic = true});
    cz::tar::entry e;
    e.name = fmt::format("data/{}.bin", seed);
    e.mode = 0644;
    e.size = size;
    w.add(e);
    std::mt19937_64 rng(seed);
    constexpr std::size_t chunk_size = 1 << 20;
    const std::size_t text_size = data == layer_data::random ? 0 : chunk_size / 8;
    std::vector<std::byte> chunk(chunk_size);
    std::uint64_t line = 0;
    for (std::uint64_t done = 0; done < size;) {
        std::string text;
        while (text.size() < text_size)
            text += fmt::format("{:010} layer {} the quick brown fox jumps over the lazy dog\n",
                                line++, seed);
        std::memcpy(chunk.data(), text.data(), text_size);
        for (std::size_t i = text_size; i < chunk_size; i += 8) {
            auto x = rng();
            std::memcpy(chunk.data() + i, &x, 8);
        }
        auto n = std::min<std::uint64_t>(size - done, chunk_size);
        w.write(cz::bytes_view(chunk.data(), n));
        done += n;
    }
    w.finish();
    gz.finish(ec);
    if (ec) throw cz::system_error(ec, "gzip");
    diff_id = hashed.hasher.final();
    auto d = blob.commit(ec);
    if (ec) throw cz::system_error(ec, "commit");
    d.media_type = unknown.media_type;
    return d;
}

// A TCP port on 127.0.0.1 that nothing listens on now.
inline std::uint16_t free_port() {
    cz::unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free port on 127.0.0.1");
    return ntohs(a.sin_port);
}

inline bool accepts(std::uint16_t port) {
    cz::unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return s && ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// docker-registry serving `dir`/data on 127.0.0.1 in plain HTTP, stopped with the object.
class docker_registry {
public:
    explicit docker_registry(const std::string& dir) : port_(free_port()) {
        std::ofstream(dir + "/config.yml") << "version: 0.1\nlog:\n  level: error\n"
                                           << "storage:\n  filesystem:\n    rootdirectory: " << dir
                                           << "/data\nhttp:\n  addr: 127.0.0.1:" << port_ << "\n";
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            int fd = ::open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            std::string config = dir + "/config.yml";
            ::execlp("docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
            ::_exit(127);
        }
        for (int i = 0; i < 200 && !accepts(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!accepts(port_)) {
            stop();
            throw std::runtime_error("docker-registry did not start listening (see " + dir +
                                     "/registry.log)");
        }
    }
    ~docker_registry() { stop(); }
    docker_registry(const docker_registry&) = delete;
    docker_registry& operator=(const docker_registry&) = delete;
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    std::uint16_t port_;
    pid_t pid_ = -1;
};

} // namespace cz::bench
