// vm_floor.hpp — the floor a `cz run` is measured against: the same kernel booting an init that
// powers off at once, through cz/vm, in a VM of cz run's size, with nothing of cz's on top.
#pragma once

#include "bench.hpp"

#include <cz/vm.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace cz::bench {

class vm_floor {
public:
    // `poweroff_init`: a static init that powers off at once; its initramfs goes in `dir`.
    vm_floor(const std::filesystem::path& root, const cz::vm::kernel_info& kernel,
             const std::filesystem::path& poweroff_init, const std::filesystem::path& dir)
        : root_(root), kernel_(kernel.image), initrd_(dir / "poweroff.cpio.gz") {
        cz::vm::initramfs_builder().init(poweroff_init).write_gzip(initrd_);
    }

    // One boot to power-off, timed.
    sample run() const {
        return run_function([this] {
            cz::vm::config cfg;
            cfg.kernel = kernel_;
            cfg.initrd = initrd_;
            cfg.root = root_;
            cfg.vsock.reset(); // cz run's VMs have none either (the agent is on virtio-serial)
            // The same VM size as cz run's (run_options::memory_mib): under TCG the kernel's
            // boot time grows with memory (it initialises a page struct for every 4 KiB).
            cfg.memory_mib = 512;
            asio::io_context io;
            cz::vm::qemu_vm vm(io, cfg);
            vm.start();
            std::error_code ec;
            auto status = vm.wait_for(std::chrono::seconds(120), ec);
            if (ec || !status.clean())
                throw std::runtime_error("the floor VM: " + status.describe());
        });
    }

private:
    std::filesystem::path root_, kernel_, initrd_;
};

} // namespace cz::bench
