// One QEMU microvm (cz::vm::qemu_vm) with cz's vsock backend, for the VM tests and the benchmark.
// The guest boots Debian's cloud kernel (fetched into the test root on first use) and an
// initramfs of busybox, the kernel's modules, tests/vm/guest-init.sh as /init (cz.test=vsock: it
// runs vsock_guest, see vsock_guest.cpp).
//
// The backend is the harness's own, added through qemu_options::devices, not qemu_vm's built-in
// device (config::vsock): it is what these tests test. They look into it (frontend_connected(),
// host_streams(), stats()) and check that one backend outlives a QEMU that is killed and serves
// the next one on the same sockets, whereas qemu_vm's device lives and dies with its VM.
//
// Threading: the backend and the VM share one io_context. A thread of its own runs it, except
// while the test thread runs it inside qemu_vm's synchronous calls (start, wait).
#pragma once

#include <cz/vm/qemu.hpp>
#include <cz/vsock/backend.hpp>
#include <cz/vsock/host.hpp>

#include "../../vm/support.hpp"

#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace cz::vsock::test {

class test_vm {
public:
    struct options {
        // Devices besides the vsock device (the benchmark's virtio-serial port).
        std::vector<cz::vm::device_hook> devices;
    };

    test_vm() : test_vm(options{}) {}
    explicit test_vm(options opt) : opt_(std::move(opt)) {
        // Not in a VM's state directory: the backend and its sockets outlive each VM (boot() after
        // kill() starts a new QEMU against them).
        char tmpl[] = "/tmp/cz-vsock-vm.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        dir_ = tmpl;
        backend_config cfg;
        cfg.vhost_user_socket = dir_ / "vhost-user-vsock.sock";
        cfg.uds_path = dir_ / "vsock.sock";
        be_ = std::make_unique<backend>(io_, cfg);
        be_->start();
        runner_.emplace(io_);
    }
    ~test_vm() {
        kill();
        runner_.reset();
        vm_.reset();
        be_->stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    backend& device_backend() { return *be_; }
    host make_host(asio::io_context& io) { return host(io, hybrid_transport{dir_ / "vsock.sock"}); }
    // The running VM's state directory (sockets of devices added through options::devices).
    const std::filesystem::path& state_dir() const { return vm_->state_dir(); }
    const char* accel_name() const {
        return vm_->accel() == cz::vm::accel_mode::kvm ? "KVM" : "TCG";
    }

    // Starts a VM (again, after kill(): the backend serves the new QEMU on the same sockets) and
    // waits until the guest program answers.
    void boot(std::chrono::seconds timeout = std::chrono::seconds(120)) {
        // virtio_console: the benchmark's virtio-serial port (the tests need only vsock).
        static const auto kernel = cz::vm::test::debian_kernel({"virtio_console.ko"});
        // The vm suite's init, in the mode that loads the modules and runs vsock_guest.
        static const auto initramfs = cz::vm::test::make_test_initramfs(
            kernel, cz::vm::test::source_root() / "tests/vm/guest-init.sh",
            "initramfs-vsock.cpio.gz");
        cz::vm::config cfg;
        cfg.kernel = kernel.image;
        cfg.initrd = initramfs;
        cfg.append = "cz.test=vsock";
        cfg.root = cz::vm::test::test_root();
        cfg.vsock.reset(); // the harness's backend instead, see the top of this file
        cz::vm::qemu_options qemu;
        qemu.devices = opt_.devices;
        qemu.devices.push_back([this](cz::vm::device_context&) {
            return cz::vm::qemu_vhost_user_vsock_args(be_->config().vhost_user_socket);
        });
        runner_.reset();
        vm_.emplace(io_, std::move(cfg), std::move(qemu));
        vm_->start();
        // qemu_vm ends the VM when the guest reboots (-no-reboot); here a reboot resets the guest
        // instead, as on a real machine, and the reboot test checks that the device survives it.
        auto reset_on_reboot =
            vm_->qmp().async_execute("set-action", {{"reboot", "reset"}}, asio::use_future);
        runner_.emplace(io_);
        reset_on_reboot.get();
        wait_ready(timeout);
    }

    // Waits until the guest program answers on port 1234.
    void wait_ready(std::chrono::seconds timeout = std::chrono::seconds(120)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!alive()) throw std::runtime_error("QEMU exited during boot" + log());
            asio::io_context io;
            auto h = make_host(io);
            h.handshake_timeout = std::chrono::milliseconds(3000);
            std::error_code ec;
            auto s = h.dial(1234, ec);
            if (!ec) {
                asio::write(s, asio::buffer(std::string("echo\n")), ec);
                char c = 0;
                if (!ec) asio::write(s, asio::buffer(std::string("x")), ec);
                if (!ec) asio::read(s, asio::buffer(&c, 1), ec);
                if (!ec && c == 'x') return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        throw std::runtime_error(
            "guest not ready in time (backend: " + std::to_string(be_->stats().frontends) +
            " frontends, last error: " + be_->stats().last_frontend_error.message() + ")" + log());
    }

    bool alive() {
        return vm_ && on_io([this] { return vm_->running(); });
    }

    // Kills QEMU (SIGKILL, like a crash) and waits until qemu_vm has reaped it.
    void kill() {
        if (!alive()) return;
        runner_.reset();
        ::kill(vm_->pid(), SIGKILL);
        vm_->wait();
        runner_.emplace(io_);
    }

    // The guest's console, for failure messages.
    std::string log() {
        return vm_ ? "\n--- console ---\n" + on_io([this] { return vm_->console(); }) : "";
    }

private:
    // Runs f where the VM may be looked at: on the thread that runs the io_context, if one does.
    template <class F>
    std::invoke_result_t<F> on_io(F f) {
        if (!runner_) return f();
        return asio::post(io_, asio::use_future(std::move(f))).get();
    }

    options opt_;
    std::filesystem::path dir_;
    asio::io_context io_;
    std::unique_ptr<backend> be_;
    std::optional<cz::vm::qemu_vm> vm_;
    std::optional<cz::vm::test::io_thread> runner_;
};

// vsock_guest's pattern and checksum, and stream helpers (tests/vm/support.hpp).
using cz::vm::test::fnv64;
using cz::vm::test::pattern_byte;
using cz::vm::test::pattern_sum;
using cz::vm::test::read_to_eof;
using cz::vm::test::write_pattern;

} // namespace cz::vsock::test
