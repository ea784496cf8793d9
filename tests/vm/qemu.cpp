// cz/vm/qemu.hpp's device hooks without booting: cz's vsock device is one (qemu_vsock_device),
// run first; a hook that fails stops start() with its error and message; what the hooks
// registered with on_exit runs when start fails after them. start() gets as far as the hooks
// with any file as the kernel; QEMU itself is never reached (or not found). The vm suite
// (boot.cpp) boots real VMs with these devices.
#include <cz/vm/qemu.hpp>

#include "support/support.hpp"

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace cz::vm;

namespace {

// A config that passes validate() and reaches the device hooks: any file is a kernel until QEMU
// reads it.
config hook_test_config(const fs::path& dir) {
    std::ofstream(dir / "vmlinuz") << "not a kernel";
    config cfg;
    cfg.kernel = dir / "vmlinuz";
    cfg.root = dir / "root";
    cfg.accel = accel_mode::tcg;
    return cfg;
}

bool no_vm_dirs(const fs::path& root) {
    std::error_code ec;
    return fs::is_empty(root / "vms", ec) && !ec;
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("qemu: cz's vsock device as a device hook: a backend listening, QEMU's words, closed "
          "on exit") {
    cz_test::temp_dir t("cz-vm-hook");
    asio::io_context ctx;
    device_context d(ctx, t.path);
    auto hook = qemu_vsock_device(vsock_device{42});
    auto words = hook(d);
    CHECK_FALSE(d.error());
    auto socket = t.path / "vhost-user.sock";
    CHECK(words == std::vector<std::string>{"-chardev", "socket,id=czvsock,path=" + socket.string(),
                                            "-device", "vhost-user-vsock-device,chardev=czvsock"});
    CHECK(words == qemu_vhost_user_vsock_args(socket));
    CHECK(fs::is_socket(socket));
    CHECK(fs::is_socket(t.path / "vsock.sock"));
    REQUIRE(d.exit_handlers().size() == 1);
    d.exit_handlers().front()();
    CHECK_FALSE(fs::exists(socket));

    {
        INFO("a state directory it cannot listen in: the hook fails and says so");
        device_context missing(ctx, t.path / "no-such-dir");
        CHECK(hook(missing).empty());
        CHECK(missing.error());
        CHECK(missing.error_detail().message.starts_with("vsock device: "));
        CHECK(missing.exit_handlers().empty());
    }
}

TEST_CASE("qemu: device hooks run after the vsock device, in order; one that fails stops start") {
    cz_test::temp_dir t("cz-vm-hook");
    auto cfg = hook_test_config(t.path);
    asio::io_context ctx;
    std::vector<std::string> ran;
    bool first_closed = false;
    qemu_options qemu;
    qemu.devices.push_back([&](device_context& d) -> std::vector<std::string> {
        ran.push_back("first");
        // cz's vsock device came first: its vhost-user socket already listens.
        CHECK(fs::is_socket(d.state_dir() / "vhost-user.sock"));
        CHECK(&d.io_context() == &ctx);
        d.on_exit([&] { first_closed = true; });
        return {"-device", "first"};
    });
    qemu.devices.push_back([&](device_context& d) -> std::vector<std::string> {
        ran.push_back("second");
        d.fail(std::make_error_code(std::errc::device_or_resource_busy), "second device: busy");
        return {};
    });
    qemu.devices.push_back([&](device_context&) -> std::vector<std::string> {
        ran.push_back("third");
        return {};
    });
    qemu_vm vm(ctx, cfg, qemu);
    std::error_code ec;
    vm.start(ec);
    CHECK(ec == std::errc::device_or_resource_busy);
    CHECK(vm.error_detail().message == "second device: busy");
    CHECK(ran == std::vector<std::string>{"first", "second"});
    CHECK(first_closed);
    CHECK_FALSE(vm.running());
    CHECK(no_vm_dirs(cfg.root));
    vm.wait(ec);
    CHECK(ec == errc::not_running);
}

TEST_CASE("qemu: QEMU not found: start fails naming the binary, the devices are closed") {
    cz_test::temp_dir t("cz-vm-hook");
    auto cfg = hook_test_config(t.path);
    asio::io_context ctx;
    bool closed = false;
    qemu_options qemu;
    qemu.binary = (t.path / "no-qemu-here").string();
    qemu.devices.push_back([&](device_context& d) -> std::vector<std::string> {
        d.on_exit([&] { closed = true; });
        return {};
    });
    qemu_vm vm(ctx, cfg, qemu);
    std::error_code ec;
    vm.start(ec);
    CHECK(ec == errc::vmm_not_found);
    CHECK(vm.error_detail().message == qemu.binary + ": not found");
    CHECK(closed);
    CHECK(no_vm_dirs(cfg.root));
}

} // TEST_SUITE
