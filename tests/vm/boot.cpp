// The vm suite: real VMs under QEMU (TCG where KVM is not usable), booting Debian's cloud kernel
// (fetched on first use with kernel/fetch-debian-kernel.sh into the test root) and the minimal
// kernel (built on first use unless a matching one is cached), with a busybox initramfs whose
// init is guest-init.sh, and tests/vsock's static vsock_guest for the vsock case.
#include <cz/vm/qemu.hpp>

#include <cz/vm/kernel.hpp>
#include <cz/vm/run.hpp>

#include "support.hpp"
#include "support/support.hpp"

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>

namespace fs = std::filesystem;
using namespace cz::vm;
using namespace cz::vm::test;
using namespace std::chrono_literals;

namespace {

// The test initramfs for a kernel, with guest-init.sh as /init.
fs::path initramfs_for(const kernel_info& k) {
    return make_test_initramfs(k, source_root() / "tests/vm/guest-init.sh",
                               "initramfs-" + std::string(to_string(k.flavor)) + ".cpio.gz");
}

config test_config(const kernel_info& k, const std::string& mode) {
    static std::map<std::string, fs::path> initramfs;
    auto& ir = initramfs[k.directory.string()];
    if (ir.empty()) ir = initramfs_for(k);
    config cfg;
    cfg.kernel = k.image;
    cfg.initrd = ir;
    cfg.append = "cz.test=" + mode;
    cfg.root = test_root();
    cfg.memory_mib = 256;
    return cfg;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for (auto& e : fs::directory_iterator("/proc/self/fd")) {
        (void)e;
        ++n;
    }
    return n;
}

// No child left, reaped or not, and nothing left in the state root.
void check_no_leaks(std::size_t fds_before) {
    CHECK(open_fds() == fds_before);
    errno = 0;
    CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
    std::error_code ec;
    CHECK(fs::is_empty(test_root() / "vms", ec));
}

struct boot_result {
    exit_status status;
    std::string console;
};

boot_result boot(config cfg, qemu_options qemu = {}, std::chrono::milliseconds timeout = 120s) {
    asio::io_context ctx;
    qemu_vm vm(ctx, std::move(cfg), std::move(qemu));
    vm.start();
    CHECK(fs::is_directory(vm.state_dir()));
    std::error_code ec;
    auto st = vm.wait_for(timeout, ec);
    INFO("console:\n" << vm.console());
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK_FALSE(fs::exists(vm.state_dir()));
    return {st, vm.console()};
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Serves one HTTP request on 127.0.0.1 from a thread; the guest reaches it as 10.0.2.2.
class one_shot_http {
public:
    explicit one_shot_http(std::string body) : body_(std::move(body)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 1) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            char buf[2048];
            std::string req;
            while (req.find("\r\n\r\n") == std::string::npos) {
                auto n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                req.append(buf, static_cast<std::size_t>(n));
            }
            request_ = req;
            auto resp = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
                        "\r\nConnection: close\r\n\r\n" + body_;
            auto ignored = ::write(c, resp.data(), resp.size());
            (void)ignored;
            ::close(c);
        });
    }
    ~one_shot_http() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    std::uint16_t port() const { return port_; }
    const std::string& request() const { return request_; }

private:
    std::string body_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::string request_;
};

void make_ext4(const fs::path& image, const fs::path& content_dir) {
    cz_test::sh_ok("mke2fs -q -F -t ext4 -d " + cz_test::quote(content_dir.string()) + " " +
                   cz_test::quote(image.string()) + " 8M");
}

// The pids of the processes whose command line contains `what`.
std::vector<pid_t> processes_mentioning(const std::string& what) {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        auto name = it->path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(it->path() / "cmdline", std::ios::binary);
        std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmdline.find(what) != std::string::npos) pids.push_back(std::stoi(name));
    }
    return pids;
}

// The disks of guest-init.sh's "disk" mode, in test_root()/NAME: ro.img (hello.txt) and an empty
// rw.img, both ext4 made by mke2fs.
fs::path make_test_disks(const std::string& name) {
    auto dir = test_root() / name;
    fs::remove_all(dir);
    fs::create_directories(dir / "ro-content");
    fs::create_directories(dir / "rw-content");
    std::ofstream(dir / "ro-content/hello.txt") << "hello-from-the-host\n";
    make_ext4(dir / "ro.img", dir / "ro-content");
    make_ext4(dir / "rw.img", dir / "rw-content");
    return dir;
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("boot: Debian's cloud kernel runs init, which prints markers and powers off") {
    auto fds = open_fds();
    auto cfg = test_config(debian_kernel(), "hello");
    cfg.cpus = 2;
    auto r = boot(cfg);
    CHECK(r.status.reason == exit_reason::poweroff);
    CHECK(r.status.shutdown_reason == "guest-shutdown");
    CHECK(r.status.clean());
    CHECK(contains(r.console, "CZ-BOOTED"));
    CHECK_FALSE(contains(r.console, "CZ-INSMOD-FAILED"));
    CHECK(contains(r.console, "CZ-HELLO " + debian_kernel().version + " cpus=2"));
    CHECK(contains(r.console, "CZ-DONE"));
    check_no_leaks(fds);
}

TEST_CASE("boot: Debian's kernel under run_machine, as `cz vm boot` runs it: status, console") {
    auto fds = open_fds();
    {
        asio::io_context ctx;
        qemu_vm vm(ctx, test_config(debian_kernel(), "hello"));
        std::error_code ec;
        auto r = run_machine(vm, {.timeout = 120s, .console_lines = 3}, ec);
        INFO("console:\n" << vm.console());
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(r.started);
        CHECK_FALSE(r.timed_out);
        CHECK(r.status.reason == exit_reason::poweroff);
        CHECK(r.status.shutdown_reason == "guest-shutdown");
        CHECK(vm.console().ends_with(r.console_tail));
        CHECK(std::count(r.console_tail.begin(), r.console_tail.end(), '\n') <= 3);
        CHECK(contains(r.console_tail, "CZ-DONE"));
        CHECK_FALSE(fs::exists(vm.state_dir()));
    }
    check_no_leaks(fds);
}

TEST_CASE("boot: the minimal kernel runs init with everything built in, with and without ACPI") {
    const auto& k = minimal_kernel();
    CHECK(k.modules.empty());
    auto fds = open_fds();
    SUBCASE("ACPI (microvm's default): markers, then ACPI power-off") {
        auto r = boot(test_config(k, "hello"));
        CHECK(r.status.reason == exit_reason::poweroff);
        CHECK(r.status.shutdown_reason == "guest-shutdown");
        CHECK(contains(r.console, "CZ-BOOTED"));
        CHECK(contains(r.console, "CZ-HELLO " + k.version + " cpus=1"));
        CHECK(contains(r.console, "CZ-DONE"));
    }
    SUBCASE("no ACPI: QEMU puts the disks on the command line (virtio_mmio.device=)") {
        auto dir = make_test_disks("minimal-disk-test");
        auto cfg = test_config(k, "disk");
        qemu_options no_acpi;
        no_acpi.acpi = false;
        cfg.disks = {{dir / "ro.img", true}, {dir / "rw.img", false}};
        auto r = boot(cfg, no_acpi);
        CHECK_FALSE(contains(r.console, "ACPI: Interpreter enabled"));
        CHECK(contains(r.console, "CZ-VDA-CONTENT hello-from-the-host"));
        CHECK(contains(r.console, "CZ-VDA-WRITE-REFUSED"));
        CHECK(contains(r.console, "CZ-VDB-WRITTEN"));
        // Without ACPI there is no power-off: the init reboots, and -no-reboot ends the VM.
        CHECK(r.status.reason == exit_reason::reboot);
        CHECK(r.status.clean());
        fs::remove_all(dir);
    }
    check_no_leaks(fds);
}

TEST_CASE("disks: a read-only ext4 image is /dev/vda with its content; writes are refused") {
    auto fds = open_fds();
    auto dir = make_test_disks("disk-test");
    auto ro_before = cz_test::read_file(dir / "ro.img");

    auto cfg = test_config(debian_kernel(), "disk");
    cfg.disks = {{dir / "ro.img", true}, {dir / "rw.img", false}};
    auto r = boot(cfg);
    INFO("console:\n" << r.console);
    CHECK(r.status.reason == exit_reason::poweroff);
    CHECK(contains(r.console, "CZ-VDA-RO 1"));
    CHECK(contains(r.console, "CZ-VDA-CONTENT hello-from-the-host"));
    CHECK(contains(r.console, "CZ-VDA-WRITE-REFUSED"));
    CHECK(contains(r.console, "CZ-VDB-WRITTEN"));
    CHECK(cz_test::read_file(dir / "ro.img") == ro_before);
    // The real peer reads what the guest wrote.
    auto rw_img = cz_test::quote((dir / "rw.img").string());
    CHECK(cz_test::sh_ok("debugfs -R 'cat /guest.txt' " + rw_img + " 2>/dev/null") ==
          "written-by-guest\n");
    CHECK(cz_test::sh("e2fsck -fn " + rw_img + " >/dev/null 2>&1") == 0);
    fs::remove_all(dir);
    check_no_leaks(fds);
}

TEST_CASE("network: the guest fetches a page from the host's loopback through 10.0.2.2") {
    auto fds = open_fds();
    std::optional<one_shot_http> server(std::in_place, "page-from-host-loopback");
    auto cfg = test_config(debian_kernel(), "net");
    cfg.append += " cz.port=" + std::to_string(server->port());
    cfg.network = user_network{};
    auto r = boot(cfg);
    INFO("console:\n" << r.console);
    CHECK(r.status.reason == exit_reason::poweroff);
    CHECK(contains(r.console, "CZ-PAGE page-from-host-loopback"));
    CHECK(contains(server->request(), "GET / HTTP/1."));
    server.reset();
    check_no_leaks(fds);
}

TEST_CASE("failures: guest panic, QEMU killed from outside, a guest that never finishes") {
    auto fds = open_fds();
    SUBCASE("panic") {
        auto r = boot(test_config(debian_kernel(), "panic"));
        CHECK(r.status.reason == exit_reason::panic);
        CHECK(contains(r.console, "CZ-PANICKING"));
        CHECK(contains(r.console, "Kernel panic - not syncing"));
    }
    SUBCASE("QEMU killed with SIGKILL by someone else") {
        asio::io_context ctx;
        auto cfg = test_config(debian_kernel(), "hang");
        qemu_vm* self = nullptr;
        bool sent = false;
        cfg.on_console = [&](std::string_view) {
            if (!sent && contains(self->console(), "CZ-HANGING")) {
                sent = true;
                ::kill(self->pid(), SIGKILL);
            }
        };
        qemu_vm vm(ctx, cfg);
        self = &vm;
        vm.start();
        auto dir = vm.state_dir();
        std::error_code ec;
        auto st = vm.wait_for(120s, ec);
        REQUIRE(!ec);
        CHECK(sent);
        CHECK(st.reason == exit_reason::killed);
        CHECK(st.process.signaled);
        CHECK(st.process.code == SIGKILL);
        CHECK(contains(st.describe(), "killed"));
        CHECK_FALSE(fs::exists(dir));
        CHECK_FALSE(vm.running());
    }
    SUBCASE("a guest that never powers off: wait_for times out and stops it") {
        asio::io_context ctx;
        qemu_vm vm(ctx, test_config(debian_kernel(), "hang"));
        vm.start();
        auto dir = vm.state_dir();
        auto pid = vm.pid();
        std::error_code ec;
        auto st = vm.wait_for(8s, ec);
        CHECK(ec == errc::timed_out);
        CHECK(st.reason == exit_reason::stopped);
        CHECK_FALSE(fs::exists(dir));
        CHECK(::kill(pid, 0) == -1);
    }
    SUBCASE("a VM destroyed while running takes QEMU with it") {
        pid_t pid = 0;
        fs::path dir;
        {
            asio::io_context ctx;
            qemu_vm vm(ctx, test_config(debian_kernel(), "hang"));
            vm.start();
            pid = vm.pid();
            dir = vm.state_dir();
            CHECK(::kill(pid, 0) == 0);
        }
        CHECK(::kill(pid, 0) == -1);
        CHECK_FALSE(fs::exists(dir));
    }
    SUBCASE("the program that owns a VM is killed: QEMU dies with it, its state is swept later") {
        int ready[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        pid_t owner = ::fork();
        REQUIRE(owner >= 0);
        if (owner == 0) {
            // The owner: starts a VM, says where its state is, and waits to be killed.
            ::close(ready[0]);
            try {
                asio::io_context ctx;
                qemu_vm vm(ctx, test_config(debian_kernel(), "hang"));
                vm.start();
                auto dir = vm.state_dir().string();
                if (::write(ready[1], dir.data(), dir.size()) == static_cast<ssize_t>(dir.size()))
                    while (true) ::pause();
            } catch (...) {
            }
            std::_Exit(1);
        }
        ::close(ready[1]);
        // Whatever happens below, the owner does not outlive this subcase.
        struct reaper {
            pid_t pid;
            ~reaper() {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
        } reap{owner};
        pollfd p{ready[0], POLLIN, 0};
        REQUIRE_MESSAGE(::poll(&p, 1, 60000) == 1, "the owner did not start its VM");
        char buf[4096];
        auto n = ::read(ready[0], buf, sizeof buf);
        ::close(ready[0]);
        REQUIRE(n > 0);
        fs::path dir(std::string(buf, static_cast<std::size_t>(n)));
        auto qemu_pids = processes_mentioning(dir.string());
        CHECK(qemu_pids.size() == 1);
        REQUIRE(::kill(owner, SIGKILL) == 0);
        auto qemu_left = [&] { return !processes_mentioning(dir.string()).empty(); };
        for (int i = 0; i < 100 && qemu_left(); ++i) std::this_thread::sleep_for(50ms);
        CHECK_FALSE(qemu_left());
        CHECK(fs::exists(dir)); // nobody was left to remove it
        CHECK(remove_stale_state(test_root(), 0s) == 1);
        CHECK_FALSE(fs::exists(dir));
    }
    SUBCASE("QEMU refuses the kernel: start fails with QEMU's message") {
        auto dir = test_root() / "bad-kernel";
        fs::create_directories(dir);
        std::ofstream(dir / "vmlinuz") << "this is not a kernel";
        asio::io_context ctx;
        auto cfg = test_config(debian_kernel(), "hello");
        cfg.kernel = dir / "vmlinuz";
        qemu_vm vm(ctx, cfg);
        std::error_code ec;
        vm.start(ec);
        CHECK(ec == errc::vmm_start_failed);
        CHECK(contains(vm.error_detail().message, "qemu"));
        CHECK(vm.wait(ec).reason == exit_reason::vmm_error);
        CHECK(ec == errc::not_running);
        fs::remove_all(dir);
    }
    SUBCASE("no QEMU binary") {
        asio::io_context ctx;
        auto cfg = test_config(debian_kernel(), "hello");
        qemu_options qemu;
        qemu.binary = "/nonexistent/qemu-system-x86_64";
        qemu_vm vm(ctx, cfg, qemu);
        std::error_code ec;
        vm.start(ec);
        CHECK(ec == errc::vmm_not_found);
    }
    check_no_leaks(fds);
}

TEST_CASE("parallel: four VMs on one io_context") {
    auto fds = open_fds();
    std::optional<asio::io_context> ctx_storage(std::in_place);
    auto& ctx = *ctx_storage;
    std::vector<std::unique_ptr<qemu_vm>> vms;
    std::vector<exit_status> results(4);
    int done = 0;
    for (int i = 0; i < 4; ++i) {
        vms.push_back(std::make_unique<qemu_vm>(ctx, test_config(debian_kernel(), "hello")));
        vms.back()->start();
    }
    for (int i = 0; i < 4; ++i)
        vms[static_cast<std::size_t>(i)]->async_wait([&, i](std::error_code ec, exit_status st) {
            CHECK(!ec);
            results[static_cast<std::size_t>(i)] = st;
            ++done;
        });
    ctx.restart();
    {
        asio::steady_timer limit(ctx, 240s);
        limit.async_wait([&](std::error_code ec) {
            if (!ec)
                for (auto& vm : vms) vm->async_stop({0ms, 1000ms}, [](std::error_code, exit_status) {});
        });
        while (done < 4 && ctx.run_one() > 0) {
        }
    }
    for (std::size_t i = 0; i < 4; ++i) {
        INFO("vm " << i << ": " << vms[i]->console());
        CHECK(results[i].reason == exit_reason::poweroff);
        CHECK(contains(vms[i]->console(), "CZ-DONE"));
    }
    vms.clear();
    ctx_storage.reset();
    check_no_leaks(fds);
}

} // TEST_SUITE

namespace {

// Dials the guest's port, retrying while the guest is still booting (no driver yet, or nobody
// listening yet: the device refuses or times out the request).
cz::vsock::generic_socket dial_guest(cz::vsock::host& host, std::uint32_t port,
                                     std::chrono::seconds patience) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < deadline) {
        std::error_code ec;
        auto sock = host.dial(port, ec);
        if (!ec) return sock;
        std::this_thread::sleep_for(200ms);
    }
    return host.dial(port); // the last try throws what went wrong
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("vsock: every VM has cz's vsock device; host and guest dial each other through it") {
    auto fds = open_fds();
    {
        asio::io_context ctx;
        auto cfg = test_config(debian_kernel(), "vsock");
        REQUIRE(cfg.vsock);
        CHECK(cfg.vsock->guest_cid == 3);
        qemu_vm vm(ctx, cfg);
        vm.start();
        auto uds = vm.vsock_socket();
        CHECK(uds.parent_path() == vm.state_dir());
        CHECK(fs::is_socket(uds));
        // The device is served on ctx, and dial() blocks: ctx runs on a thread of its own while
        // this one plays the host application. It is stopped before wait_for() runs ctx here.
        io_thread io(ctx);
        auto host = vm.vsock_host();
        host.handshake_timeout = 3s;

        {
            INFO("host -> guest: echo");
            auto sock = dial_guest(host, 1234, 90s);
            std::string payload = "echo\n";
            std::string data;
            for (int i = 0; i < 20000; ++i) data += static_cast<char>('a' + i % 26);
            asio::write(sock, asio::buffer(payload + data));
            std::string back(data.size(), '\0');
            std::error_code ec;
            asio::read(sock, asio::buffer(back), ec);
            CHECK_MESSAGE(!ec, ec.message());
            CHECK(back == data);
        }
        {
            INFO("guest -> host: the guest dials CID 2 port 5000");
            auto acceptor = host.listen(5000);
            CHECK(fs::is_socket(uds.string() + "_5000"));
            auto control = dial_guest(host, 1234, 10s);
            asio::write(control, asio::buffer(std::string("dial 5000 4096\n")));
            pollfd p{acceptor.native_handle(), POLLIN, 0};
            REQUIRE_MESSAGE(::poll(&p, 1, 30000) == 1, "the guest did not connect to port 5000");
            auto conn = acceptor.accept();
            auto got = read_to_eof(conn); // the guest half-closes after its 4096 bytes
            REQUIRE(got.size() == 4096);
            bool same = true;
            for (std::size_t i = 0; i < got.size(); ++i)
                same = same && static_cast<std::uint8_t>(got[i]) == pattern_byte(i);
            CHECK(same);
            asio::write(conn, asio::buffer(std::string("host got 4096")));
            conn.close();
            // vsock_guest passes our answer back on the control connection.
            CHECK(read_to_eof(control) == "host got 4096");
        }
        {
            auto sock = dial_guest(host, 1234, 10s);
            asio::write(sock, asio::buffer(std::string("reboot\n")));
        }
        io.stop();
        std::error_code ec;
        auto st = vm.wait_for(60s, ec);
        INFO("console:\n" << vm.console());
        REQUIRE_MESSAGE(!ec, ec.message());
        // -no-reboot: the guest's reboot ends the VM; the device's sockets went with the state dir.
        CHECK(st.reason == exit_reason::reboot);
        CHECK(contains(vm.console(), "vsock_guest: ready"));
        CHECK_FALSE(fs::exists(uds));
        CHECK_FALSE(fs::exists(vm.state_dir()));
    }
    check_no_leaks(fds);
}

} // TEST_SUITE
