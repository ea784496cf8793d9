// One QEMU microvm with cz's vsock device, for the VM tests and the benchmark: the backend runs
// on its own io_context thread, QEMU is a child process, and the guest runs vsock_guest (see
// vsock_guest.cpp) from the initramfs built by make-initramfs.sh.
//
// cz/vm's QEMU backend was not on its branch when this was written, so the harness starts
// qemu-system-x86_64 itself with the arguments cz/vm needs to add for every VM (see qemu_args).
#pragma once

#include <cz/vsock/backend.hpp>
#include <cz/vsock/host.hpp>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cz::vsock::test {

// Where make-initramfs.sh put vmlinuz and initramfs.cpio.gz (CZ_VSOCK_VM_ASSETS), or empty.
inline std::filesystem::path vm_assets() {
    const char* p = std::getenv("CZ_VSOCK_VM_ASSETS");
    if (!p) return {};
    std::filesystem::path d(p);
    if (!std::filesystem::exists(d / "vmlinuz") || !std::filesystem::exists(d / "initramfs.cpio.gz"))
        return {};
    return d;
}

// KVM only with a hardware KVM module loaded (DESIGN.md): on this machine kind /dev/kvm exists
// but is a software stand-in whose emulation fails on the guest kernel (cmpxchg16b).
inline bool kvm_usable() {
    return ::access("/dev/kvm", R_OK | W_OK) == 0 &&
           (std::filesystem::exists("/sys/module/kvm_intel") ||
            std::filesystem::exists("/sys/module/kvm_amd"));
}

class test_vm {
public:
    struct options {
        std::uint64_t mem_mib = 256;
        bool virtio_serial = false; // add a virtserialport on <dir>/serial.sock (benchmark)
        bool allow_reboot = true;
    };

    explicit test_vm(std::filesystem::path assets) : test_vm(std::move(assets), options{}) {}
    test_vm(std::filesystem::path assets, options opt) : assets_(std::move(assets)), opt_(opt) {
        char tmpl[] = "/tmp/cz-vsock-vm.XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        backend_config cfg;
        cfg.vhost_user_socket = dir_ / "vhost-user-vsock.sock";
        cfg.uds_path = dir_ / "vsock.sock";
        be_ = std::make_unique<backend>(io_, cfg);
        be_->start();
        guard_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
            io_.get_executor());
        thread_ = std::thread([this] { io_.run(); });
    }
    ~test_vm() {
        kill();
        asio::post(io_, [this] { be_->stop(); });
        guard_.reset();
        io_.stop();
        thread_.join();
        be_.reset();
        if (!std::getenv("CZ_KEEP_VM_DIR")) std::filesystem::remove_all(dir_);
    }

    const std::filesystem::path& dir() const { return dir_; }
    backend& device_backend() { return *be_; }
    host make_host(asio::io_context& io) { return host(io, hybrid_transport{dir_ / "vsock.sock"}); }
    pid_t pid() const { return pid_; }

    // Under TCG on a loaded host the guest's PIT calibration of the TSC fails ("Unable to
    // calibrate against PIT"), the kernel falls back to jiffies and boot crawls; giving the TSC
    // frequency up front avoids the calibration entirely.
    static std::string kernel_cmdline() {
        return "console=ttyS0 reboot=t panic=-1 loglevel=4 tsc_early_khz=2000000 tsc=reliable";
    }

    // QEMU's command line: microvm, shared memfd RAM, the vhost-user vsock device.
    std::vector<std::string> qemu_command() const {
        std::vector<std::string> a = {
            "qemu-system-x86_64", "-M", "microvm,memory-backend=mem", "-m",
            std::to_string(opt_.mem_mib) + "M", "-smp", "1", "-nodefaults", "-no-user-config",
            "-nographic", "-serial", "file:" + (dir_ / "console.log").string(),
            "-global", "virtio-mmio.force-legacy=false",
            "-kernel", (assets_ / "vmlinuz").string(),
            "-initrd", (assets_ / "initramfs.cpio.gz").string(),
            "-append", kernel_cmdline()};
        if (kvm_usable()) {
            a.insert(a.end(), {"-accel", "kvm", "-accel", "tcg"});
        } else {
            a.insert(a.end(), {"-accel", "tcg"});
        }
        if (!opt_.allow_reboot) a.push_back("-no-reboot");
        for (auto& s : backend::qemu_memory_args(opt_.mem_mib, "mem")) a.push_back(s);
        for (auto& s : be_->qemu_args()) a.push_back(s);
        if (opt_.virtio_serial) {
            a.insert(a.end(), {"-device", "virtio-serial-device", "-chardev",
                               "socket,id=ser0,path=" + (dir_ / "serial.sock").string() +
                                   ",server=on,wait=off",
                               "-device", "virtserialport,chardev=ser0,name=bench"});
        }
        return a;
    }

    void boot(std::chrono::seconds timeout = std::chrono::seconds(120)) {
        auto cmd = qemu_command();
        pid_ = ::fork();
        if (pid_ == 0) {
            int log = ::open((dir_ / "qemu.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            std::vector<char*> argv;
            for (auto& s : cmd) argv.push_back(const_cast<char*>(s.c_str()));
            argv.push_back(nullptr);
            ::execvp(argv[0], argv.data());
            ::_exit(127);
        }
        wait_ready(timeout);
    }

    // Waits until the guest program answers on port 1234.
    void wait_ready(std::chrono::seconds timeout = std::chrono::seconds(120)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!alive()) throw std::runtime_error("QEMU exited during boot: " + log());
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
        throw std::runtime_error("guest not ready in time (backend: " +
                                 std::to_string(be_->stats().frontends) + " frontends, last error: " +
                                 be_->stats().last_frontend_error.message() + ")" + log());
    }

    bool alive() {
        if (pid_ <= 0) return false;
        int st;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        return true;
    }

    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    std::string log() const {
        std::ostringstream s;
        for (auto f : {"qemu.log", "console.log"}) {
            std::ifstream in(dir_ / f);
            s << "\n--- " << f << " ---\n" << in.rdbuf();
        }
        return s.str();
    }

private:
    std::filesystem::path assets_;
    options opt_;
    std::filesystem::path dir_;
    asio::io_context io_;
    std::unique_ptr<backend> be_;
    std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
    std::thread thread_;
    pid_t pid_ = -1;
};

// Guest program helpers.
inline std::uint8_t pattern_byte(std::uint64_t i) {
    return static_cast<std::uint8_t>((i * 2654435761u) >> 13);
}
struct fnv64 {
    std::uint64_t h = 1469598103934665603ull;
    void add(const unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    }
    std::string hex() const {
        char b[17];
        std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
        return b;
    }
};

} // namespace cz::vsock::test
