// vm_vsock_hello: boots a microVM whose only program is vm_vsock_guest, says hello to it over
// vsock and prints its answer.
//
//     vm_vsock_hello GUEST_PROGRAM [CZ_ROOT]
//
// cz/vm and cz/vsock: a kernel from the cz root (`cz kernel fetch` puts Debian's there), an
// initramfs holding the guest program and the kernel's modules, a QEMU microvm with cz's vsock
// device, and the host end of that device. The VM's io_context serves the device while
// wait_for() runs on this thread, so a second thread does the talking.
#include <cz/vm.hpp>
#include <cz/vsock/host.hpp>

#include <asio/read.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

int main(int argc, char** argv) try {
    if (argc < 2 || argc > 3) {
        fmt::print(stderr, "usage: vm_vsock_hello GUEST_PROGRAM [CZ_ROOT]\n");
        return 2;
    }
    const std::filesystem::path root = argc == 3 ? argv[2] : cz::vm::default_root();
    auto kernel = cz::vm::find_kernel(root, cz::vm::kernel_flavor::debian);

    cz::vm::config cfg;
    cfg.root = root;
    cfg.kernel = kernel.image;
    cfg.initrd = root / "vm_vsock_hello.cpio.gz";
    cz::vm::initramfs_builder().init(argv[1]).add_modules(kernel.modules).write_gzip(cfg.initrd);

    asio::io_context ctx;
    cz::vm::qemu_vm vm(ctx, cfg);
    vm.start();

    std::string answer;
    std::thread talker([&answer, socket = vm.vsock_socket()] {
        asio::io_context io;
        cz::vsock::host host(io, cz::vsock::hybrid_transport{socket});
        // Until the guest listens, dial fails (connection refused): it is still booting.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
        std::error_code ec;
        do {
            auto s = host.dial(1024, ec);
            if (!ec) {
                asio::write(s, asio::buffer(std::string("hello from the host\n")), ec);
                s.shutdown(asio::socket_base::shutdown_send, ec);
                answer.resize(512);
                answer.resize(asio::read(s, asio::buffer(answer), ec)); // ec: eof at the end
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        } while (std::chrono::steady_clock::now() < deadline);
    });
    std::error_code ec;
    auto status = vm.wait_for(std::chrono::minutes(2), ec); // the guest powers off after answering
    talker.join();

    fmt::print("{}", answer.empty() ? "the guest did not answer\n" : answer);
    fmt::print("VM: {}\n", status.describe());
    return !answer.empty() && status.clean() ? 0 : 1;
} catch (const std::exception& e) {
    fmt::print(stderr, "vm_vsock_hello: {}\n", e.what());
    return 1;
}
