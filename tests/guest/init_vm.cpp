// cz-init's boot (guest/init) as PID 1 of real VMs, on both kernels: Debian's, whose drivers are
// modules cz-init loads, and the minimal one, which has them built in. The guest program
// (vm/init_check.cpp) reports each check on the console; every one must pass.
#include "support/support.hpp"
#include "vm/support.hpp"

#include <cz/vm/qemu.hpp>
#include <cz/vm/run.hpp>

#include <sstream>
#include <string>

using namespace cz_test;
using namespace cz::vm::test;

namespace {

// The read-only image disk: an ext4 file system with /hello.txt, made by mke2fs.
std::filesystem::path image_disk() {
    static const auto path = [] {
        const std::string dir = (test_root() / "guest-init-image").string();
        sh_ok("rm -rf " + quote(dir) + " && mkdir -p " + quote(dir + "/tree") +
              " && printf 'hello from the image\\n' > " + quote(dir + "/tree/hello.txt") +
              " && mke2fs -q -t ext4 -d " + quote(dir + "/tree") + " " + quote(dir + "/image.ext4") +
              " 8M");
        return std::filesystem::path(dir) / "image.ext4";
    }();
    return path;
}

void boot_and_check(const cz::vm::kernel_info& k) {
    const char* program = std::getenv("CZ_INIT_CHECK");
    REQUIRE_MESSAGE(program, "CZ_INIT_CHECK is not set (run through meson test)");
    auto initrd = test_root() / ("init-check-" + std::string(to_string(k.flavor)) + ".cpio.gz");
    cz::vm::initramfs_builder().init(program).add_modules(k.modules).write_gzip(initrd);

    cz::vm::config cfg;
    cfg.kernel = k.image;
    cfg.initrd = initrd;
    cfg.root = test_root();
    cfg.append = "cz.test=init cz.log=debug";
    cfg.disks = {{image_disk(), true}};
    cfg.vsock.reset();
    asio::io_context ctx;
    cz::vm::qemu_vm vm(ctx, cfg);
    std::error_code ec;
    auto r = cz::vm::run_machine(vm, {.timeout = std::chrono::minutes(2), .console_lines = 60}, ec);
    INFO(vm.console());
    REQUIRE(!ec);
    CHECK(!r.timed_out);
    CHECK(r.status.clean());

    std::istringstream lines(vm.console());
    int checks = 0;
    bool done = false;
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("CZ-CHECK ", 0) == 0) {
            ++checks;
            CHECK_MESSAGE(line.find(" ok") != std::string::npos, line);
        }
        done = done || line == "CZ-DONE";
    }
    CHECK(done);
    CHECK(checks >= 20);
}

} // namespace

TEST_CASE("cz-init boot: Debian's kernel, modules loaded by cz-init") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    if (!have("mke2fs")) CZ_SKIP("mke2fs (e2fsprogs) is not installed");
    boot_and_check(debian_kernel({"overlay.ko", "virtio_blk.ko"}));
}

TEST_CASE("cz-init boot: the minimal kernel, everything built in") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    if (!have("mke2fs")) CZ_SKIP("mke2fs (e2fsprogs) is not installed");
    boot_and_check(minimal_kernel());
}
