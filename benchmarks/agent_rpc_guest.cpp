// The guest half of the agent benchmark (agent_rpc.cpp): a static program in the benchmark VM's
// image, which the benchmark runs in a container through cz-init.
//
//   fork-exec N PROGRAM [ARG...]  fork, exec PROGRAM and wait for it, N times; prints each time
//                                 in microseconds, one a line: the floor that CreateProcess +
//                                 StartProcess + WaitProcess is compared with
//   zeros N                       writes N zero bytes to stdout, 64 KiB at a time: a producer
//                                 faster than busybox's `head -c` (4 KiB at a time), so that the
//                                 transport, not the producer, is what the copy waits for
//   to-vsock PORT                 listens on vsock PORT, accepts one connection and copies stdin
//                                 to it until eof: the raw vsock figure
//   to-serial NAME                copies stdin to the virtio-serial port named NAME (found in
//                                 /sys/class/virtio-ports): the raw virtio-serial figure
//
// The copies read stdin as cz-init reads a process's stdout (a 256 KiB pipe, read up to 256 KiB at
// a time), so that
// `head -c N /dev/zero | agent_rpc_guest to-...` and `head -c N /dev/zero` as a process whose
// stdout cz-init streams differ only in what moves the bytes to the transport.
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

int usage() {
    std::fprintf(stderr, "usage: agent_rpc_guest fork-exec N PROGRAM [ARG...] | zeros N | "
                         "to-vsock PORT | to-serial NAME\n");
    return 2;
}

double now_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

int fork_exec(int runs, char** argv) {
    for (int i = 0; i < runs; ++i) {
        double start = now_us();
        pid_t pid = ::fork();
        if (pid < 0) {
            std::perror("fork");
            return 1;
        }
        if (pid == 0) {
            ::execv(argv[0], argv);
            ::_exit(127);
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        double us = now_us() - start;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "%s: wait status %#x\n", argv[0], status);
            return 1;
        }
        std::printf("%.1f\n", us);
    }
    return 0;
}

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

int zeros(unsigned long long n) {
    static char buf[64 << 10];
    while (n > 0) {
        std::size_t k = n < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf;
        if (!write_all(1, buf, k)) {
            std::perror("write stdout");
            return 1;
        }
        n -= k;
    }
    return 0;
}

// Copies stdin to `fd` until eof, as cz-init copies a process's output: the pipe made 256 KiB
// large and read up to 256 KiB at a time (guest/agent/processes.cpp's output_chunk).
int copy_stdin_to(int fd) {
    static char buf[256 << 10];
    ::fcntl(0, F_SETPIPE_SZ, static_cast<int>(sizeof buf));
    for (;;) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            std::perror("read stdin");
            return 1;
        }
        if (n == 0) return 0;
        if (!write_all(fd, buf, static_cast<std::size_t>(n))) {
            std::perror("write");
            return 1;
        }
    }
}

int to_vsock(unsigned port) {
    int listener = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = port;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0) {
        std::perror("vsock listen");
        return 1;
    }
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
        std::perror("vsock accept");
        return 1;
    }
    int rc = copy_stdin_to(conn);
    ::close(conn); // the host reads to eof
    return rc;
}

int to_serial(const std::string& name) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/class/virtio-ports", ec)) {
        std::ifstream in(entry.path() / "name");
        std::string port;
        if (!std::getline(in, port) || port != name) continue;
        auto device = "/dev/" + entry.path().filename().string();
        int fd = ::open(device.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            std::perror(device.c_str());
            return 1;
        }
        int rc = copy_stdin_to(fd);
        ::close(fd);
        return rc;
    }
    std::fprintf(stderr, "no virtio-serial port named %s\n", name.c_str());
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    std::string mode = argv[1];
    if (mode == "fork-exec" && argc >= 4)
        return fork_exec(std::max(std::atoi(argv[2]), 1), argv + 3);
    if (mode == "zeros") return zeros(std::strtoull(argv[2], nullptr, 10));
    if (mode == "to-vsock") return to_vsock(static_cast<unsigned>(std::atoi(argv[2])));
    if (mode == "to-serial") return to_serial(argv[2]);
    return usage();
}
