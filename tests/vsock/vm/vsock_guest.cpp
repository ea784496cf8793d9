// The guest half of the vsock VM tests and benchmark: a small static program that the
// initramfs's /init runs. It listens on vsock port 1234; each connection starts with one command
// line, and the host side (tests/vsock/vm/*.cpp) checks the results:
//
//   echo                 echo every byte until EOF, then close
//   sink                 read until EOF (host half-close), then reply "<bytes> <fnv64 hex>\n"
//   source N             send N pattern bytes, shutdown(SHUT_WR), then read until EOF and close
//   dial PORT N          connect to CID 2 PORT, send N pattern bytes, shutdown(SHUT_WR), read
//                        the answer until EOF, reply "<answer>" on this connection
//   dialmany PORT K      K concurrent connections to CID 2 PORT, each sends "conn <i>\n" and
//                        expects it echoed; replies "ok <count>\n"
//   serial-sink DEV N    read N bytes from the virtio-serial port DEV (auto: the first),
//                        reply like sink
//   serial-source DEV N  write N pattern bytes to DEV, reply "done\n"
//   irqs                 one line "<virtio device id> <interrupts>" per virtio device (the
//                        benchmark's interrupts per MiB), then close
//   reboot               reboot(RB_AUTOBOOT)
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::uint8_t pattern_byte(std::uint64_t i) {
    return static_cast<std::uint8_t>((i * 2654435761u) >> 13);
}

struct fnv {
    std::uint64_t h = 1469598103934665603ull;
    void add(const unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            h = (h ^ p[i]) * 1099511628211ull;
    }
};

bool write_all(int fd, const void* data, std::size_t n) {
    auto* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool send_pattern(int fd, std::uint64_t n) {
    std::vector<unsigned char> buf(256 * 1024);
    std::uint64_t off = 0;
    while (off < n) {
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), n - off));
        for (std::size_t i = 0; i < k; ++i)
            buf[i] = pattern_byte(off + i);
        if (!write_all(fd, buf.data(), k)) return false;
        off += k;
    }
    return true;
}

// Reads until EOF (or `limit` bytes); returns the byte count and checksum.
std::uint64_t drain(int fd, fnv& sum, std::uint64_t limit = ~0ull) {
    std::vector<unsigned char> buf(256 * 1024);
    std::uint64_t total = 0;
    while (total < limit) {
        std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), limit - total));
        ssize_t r = ::read(fd, buf.data(), want);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        sum.add(buf.data(), static_cast<std::size_t>(r));
        total += static_cast<std::uint64_t>(r);
    }
    return total;
}

std::string read_line(int fd) {
    std::string line;
    char c;
    while (line.size() < 256) {
        ssize_t r = ::read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || c == '\n') break;
        line.push_back(c);
    }
    return line;
}

int dial_host(unsigned port) {
    int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_vm a{};
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_HOST;
    a.svm_port = port;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void reply(int fd, const std::string& s) {
    write_all(fd, s.data(), s.size());
}

// "auto": the first virtio-serial port device (/dev/vport<N>p<M>, port 0 is the console's).
std::string serial_device(const char* arg) {
    if (std::strcmp(arg, "auto") != 0) return arg;
    for (int d = 0; d < 4; ++d)
        for (int p = 1; p < 8; ++p) {
            std::string path = "/dev/vport" + std::to_string(d) + "p" + std::to_string(p);
            if (::access(path.c_str(), F_OK) == 0) return path;
        }
    return "/dev/vport0p1";
}

std::string read_small_file(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    for (;;) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        out.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);
    return out;
}

// For each virtio device (virtio<N> in /sys/bus/virtio/devices): its device id and the
// interrupts its line took, summed over CPUs (/proc/interrupts, the line ending in virtio<N>).
std::string virtio_irqs() {
    std::string table = read_small_file("/proc/interrupts");
    std::string out;
    for (int n = 0; n < 16; ++n) {
        std::string name = "virtio" + std::to_string(n);
        std::string id = read_small_file("/sys/bus/virtio/devices/" + name + "/device");
        if (id.empty()) continue;
        unsigned long long total = 0;
        std::size_t pos = 0;
        while (pos < table.size()) {
            std::size_t end = table.find('\n', pos);
            if (end == std::string::npos) end = table.size();
            std::string line = table.substr(pos, end - pos);
            pos = end + 1;
            while (!line.empty() && line.back() == ' ')
                line.pop_back();
            if (line.size() < name.size() + 1 ||
                line.compare(line.size() - name.size(), name.size(), name) != 0 ||
                line[line.size() - name.size() - 1] != ' ')
                continue;
            std::size_t colon = line.find(':');
            if (colon == std::string::npos) continue;
            const char* p = line.c_str() + colon + 1;
            for (;;) {
                char* e = nullptr;
                unsigned long long v = std::strtoull(p, &e, 10);
                if (e == p) break;
                total += v;
                p = e;
            }
        }
        out += std::to_string(std::strtoul(id.c_str(), nullptr, 16)) + " " + std::to_string(total) +
               "\n";
    }
    return out;
}

void serve(int fd) {
    std::string cmd = read_line(fd);
    char arg1[128] = {0};
    unsigned long long n = 0, port = 0;
    if (cmd == "echo") {
        std::vector<char> buf(64 * 1024);
        for (;;) {
            ssize_t r = ::read(fd, buf.data(), buf.size());
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || !write_all(fd, buf.data(), static_cast<std::size_t>(r))) break;
        }
    } else if (cmd == "sink") {
        fnv sum;
        std::uint64_t total = drain(fd, sum);
        char out[64];
        std::snprintf(out, sizeof out, "%" PRIu64 " %016" PRIx64 "\n", total, sum.h);
        reply(fd, out);
    } else if (std::sscanf(cmd.c_str(), "source %llu", &n) == 1) {
        if (send_pattern(fd, n)) {
            ::shutdown(fd, SHUT_WR);
            fnv sum;
            drain(fd, sum);
        }
    } else if (std::sscanf(cmd.c_str(), "dialmany %llu %llu", &port, &n) == 2) {
        std::atomic<int> ok{0};
        std::vector<std::thread> threads;
        for (unsigned long long i = 0; i < n; ++i) {
            threads.emplace_back([&, i] {
                int c = dial_host(static_cast<unsigned>(port));
                if (c < 0) return;
                std::string msg = "conn " + std::to_string(i) + "\n";
                write_all(c, msg.data(), msg.size());
                std::string back = read_line(c);
                if (back == "conn " + std::to_string(i)) ++ok;
                ::close(c);
            });
        }
        for (auto& t : threads)
            t.join();
        reply(fd, "ok " + std::to_string(ok.load()) + "\n");
    } else if (std::sscanf(cmd.c_str(), "dial %llu %llu", &port, &n) == 2) {
        int c = dial_host(static_cast<unsigned>(port));
        if (c < 0) {
            reply(fd, "error " + std::string(std::strerror(errno)) + "\n");
        } else {
            send_pattern(c, n);
            ::shutdown(c, SHUT_WR);
            std::string answer;
            char buf[256];
            for (;;) {
                ssize_t r = ::read(c, buf, sizeof buf);
                if (r <= 0) break;
                answer.append(buf, static_cast<std::size_t>(r));
            }
            ::close(c);
            reply(fd, answer);
        }
    } else if (std::sscanf(cmd.c_str(), "serial-sink %127s %llu", arg1, &n) == 2) {
        int dev = ::open(serial_device(arg1).c_str(), O_RDONLY | O_CLOEXEC);
        fnv sum;
        std::uint64_t total = dev >= 0 ? drain(dev, sum, n) : 0;
        if (dev >= 0) ::close(dev);
        char out[64];
        std::snprintf(out, sizeof out, "%" PRIu64 " %016" PRIx64 "\n", total, sum.h);
        reply(fd, out);
    } else if (std::sscanf(cmd.c_str(), "serial-source %127s %llu", arg1, &n) == 2) {
        int dev = ::open(serial_device(arg1).c_str(), O_WRONLY | O_CLOEXEC);
        bool ok = dev >= 0 && send_pattern(dev, n);
        if (dev >= 0) ::close(dev);
        reply(fd, ok ? "done\n" : "error\n");
    } else if (cmd == "irqs") {
        reply(fd, virtio_irqs());
    } else if (cmd == "reboot") {
        ::sync();
        ::reboot(RB_AUTOBOOT);
    } else {
        reply(fd, "unknown command\n");
    }
    ::close(fd);
}

} // namespace

int main() {
    int l = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_vm a{};
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_ANY;
    a.svm_port = 1234;
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(l, 128) != 0) {
        std::perror("vsock_guest: listen");
        return 1;
    }
    std::printf("vsock_guest: ready\n");
    std::fflush(stdout);
    for (;;) {
        int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::thread(serve, c).detach();
    }
}
