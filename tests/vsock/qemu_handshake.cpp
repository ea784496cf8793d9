// Integration: a real QEMU 7.2 connects to cz's vhost-user backend. QEMU runs the vhost-user
// handshake while it realizes vhost-user-vsock-device (features, protocol features, owner,
// vring call/err fds, GET_CONFIG for the guest CID) even with the guest paused (-S), and fails to
// start if any reply is wrong. Then it is killed: the backend drops it cleanly and serves the next
// QEMU on the same socket.
#include <cz/vsock/backend.hpp>

#include <cz/vm/qemu.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

pid_t spawn_qemu(const std::vector<std::string>& args, const std::filesystem::path& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        FILE* f = std::fopen(log.c_str(), "w");
        if (f) {
            ::dup2(fileno(f), 1);
            ::dup2(fileno(f), 2);
        }
        std::vector<char*> argv;
        for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

} // namespace

TEST_CASE("QEMU completes the vhost-user handshake with cz's vsock backend") {
    char tmpl[] = "/tmp/cz-vsock-qemu.XXXXXX";
    std::filesystem::path dir = ::mkdtemp(tmpl);
    asio::io_context io;
    cz::vsock::backend_config cfg;
    cfg.device.guest_cid = 42;
    cfg.vhost_user_socket = dir / "vhost-user.sock";
    cfg.uds_path = dir / "vsock.sock";
    cz::vsock::backend be(io, cfg);
    be.start();
    auto guard = asio::make_work_guard(io);
    std::thread t([&] { io.run(); });

    std::vector<std::string> args = {"qemu-system-x86_64", "-M", "microvm,memory-backend=mem",
                                     "-m", "64M", "-S", "-nodefaults", "-no-user-config",
                                     "-display", "none", "-accel", "tcg",
                                     "-global", "virtio-mmio.force-legacy=false"};
    for (auto& a : cz::vm::qemu_memory_args(64)) args.push_back(a);
    for (auto& a : cz::vm::qemu_vhost_user_vsock_args(cfg.vhost_user_socket)) args.push_back(a);

    for (int run = 1; run <= 2; ++run) {
        CAPTURE(run);
        pid_t pid = spawn_qemu(args, dir / "qemu.log");
        REQUIRE(pid > 0);
        // GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_OWNER, GET_FEATURES,
        // SET_VRING_CALL x2, SET_VRING_ERR x2, GET_CONFIG: 10 messages in QEMU 7.2 before the
        // guest runs (the last one, GET_CONFIG, is answered before QEMU finishes realize).
        auto deadline = std::chrono::steady_clock::now() + 60s;
        while (std::chrono::steady_clock::now() < deadline &&
               be.stats().messages < std::uint64_t(10 * run))
            std::this_thread::sleep_for(20ms);
        std::this_thread::sleep_for(300ms);
        int status = 0;
        bool exited = ::waitpid(pid, &status, WNOHANG) == pid;
        CHECK_MESSAGE(!exited, "QEMU exited: see ", (dir / "qemu.log").string());
        CHECK(be.stats().messages >= std::uint64_t(10 * run));
        CHECK(be.frontend_connected());
        CHECK(be.stats().frontends == std::uint64_t(run));
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        for (int i = 0; i < 300 && be.frontend_connected(); ++i) std::this_thread::sleep_for(10ms);
        CHECK(!be.frontend_connected());
        CHECK(be.stats().last_frontend_error == cz::vsock::errc::frontend_disconnected);
    }
    asio::post(io, [&] { be.stop(); });
    guard.reset();
    t.join();
    std::filesystem::remove_all(dir);
}

int main(int argc, char** argv) {
    if (std::system("qemu-system-x86_64 --version >/dev/null 2>&1") != 0) {
        std::cout << "skipped: qemu-system-x86_64 not installed\n";
        return 77;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
