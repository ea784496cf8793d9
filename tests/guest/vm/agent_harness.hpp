// What the programs that drive cz-init in a real VM share (tests/guest/agent_vm.cpp,
// tests/guest/agent_hostile_vm.cpp, benchmarks/agent_rpc.cpp): the image disk the containers run
// from, cz-init's initramfs, the VM over either agent transport, connecting to cz-init while it
// boots, running the host's side on a thread of its own, the OCI configs of busybox containers,
// and RPC helpers.
//
// Threads: the VM's io_context serves its vsock device; serve() runs it on the calling thread
// while the host's side (a cz::agent::client on an io_context of its own) runs on a second one.
//
// Failures throw std::runtime_error (or cz's errors): doctest reports them, and the benchmark,
// which has no doctest, stops with them.
#pragma once

#include "../../vm/support.hpp"

#include <cz/agent/client.hpp>
#include <cz/vm/qemu.hpp>
#include <cz/vsock/host.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cz::guest::test {

using cz::vm::test::test_root;

enum class transport { vsock, serial };

inline const char* transport_name(transport t) {
    return t == transport::vsock ? "vsock" : "virtio-serial";
}

// The contents of /hello.txt in every image.
inline const std::string image_hello_text = "hello from the image\n";

// A file put into an image: its path there (relative, e.g. "bin/helper"; missing parents are
// made) and on the host. A directory is copied with everything under it, owners and modes kept.
struct image_file {
    std::string path;
    std::filesystem::path source;
};

// `text` as one single-quoted shell word.
inline std::string shell_word(const std::string& text) {
    std::string q = "'";
    for (char c : text)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// An ext4 image (<test root>/<name>/image.ext4, made once per program) of busybox-static with
// its applets, /hello.txt and `extra`: the containers' root file system.
inline std::filesystem::path busybox_image(const std::string& name,
                                           const std::vector<image_file>& extra = {}) {
    static std::map<std::string, std::filesystem::path> made;
    if (auto it = made.find(name); it != made.end()) return it->second;
    const std::string dir = (test_root() / name).string();
    const std::string tree = shell_word(dir + "/tree");
    std::string cmd = "rm -rf " + shell_word(dir) + " && mkdir -p " + tree + "/bin " + tree +
                      "/proc " + tree + "/dev " + tree + "/sys " + tree + "/tmp && printf " +
                      shell_word(image_hello_text) + " > " + tree +
                      "/hello.txt && cp /bin/busybox " + tree +
                      "/bin/busybox && for a in $(/bin/busybox --list); do [ -e " + tree +
                      "/bin/$a ] || ln -s busybox " + tree + "/bin/$a; done";
    for (const auto& f : extra) {
        const std::string target = dir + "/tree/" + f.path;
        cmd += " && mkdir -p " + shell_word(std::filesystem::path(target).parent_path().string()) +
               " && cp -a " + shell_word(f.source.string()) + " " + shell_word(target);
    }
    cmd += " && mke2fs -q -t ext4 -d " + tree + " " + shell_word(dir + "/image.ext4") + " 16M";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making the image failed: " + cmd);
    return made[name] = std::filesystem::path(dir) / "image.ext4";
}

// Debian's kernel with the modules cz-init loads for these VMs.
inline const cz::vm::kernel_info& agent_kernel() {
    static const auto k =
        cz::vm::test::debian_kernel({"overlay.ko", "virtio_blk.ko", "vmw_vsock_virtio_transport.ko",
                                     "virtio_console.ko", "virtio_net.ko"});
    return k;
}

// cz-init ($CZ_INIT, set by meson) as /init, with agent_kernel()'s modules.
inline std::filesystem::path cz_init_initramfs() {
    static const auto path = [] {
        auto program = cz::vm::test::required_env_path("CZ_INIT");
        // Written aside and renamed: another program may be booting from the one there now.
        auto p = test_root() / "cz-init-debian.cpio.gz";
        auto tmp = test_root() / ("cz-init-debian.cpio.gz." + std::to_string(::getpid()));
        cz::vm::initramfs_builder()
            .init(program)
            .add_modules(agent_kernel().modules)
            .write_gzip(tmp);
        std::filesystem::rename(tmp, p);
        return p;
    }();
    return path;
}

// virtio-serial ports on one virtio-serial-device, each on a Unix socket <state dir>/<name>.sock
// that QEMU listens on (the host connects; the guest finds the port by name in sysfs).
inline cz::vm::device_hook virtio_serial_ports(std::vector<std::string> names) {
    return [names](cz::vm::device_context& d) {
        std::vector<std::string> args{"-device", "virtio-serial-device"};
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto id = "serial" + std::to_string(i);
            args.insert(args.end(),
                        {"-chardev",
                         "socket,id=" + id + ",server=on,wait=off,path=" +
                             (d.state_dir() / (names[i] + ".sock")).string(),
                         "-device", "virtserialport,chardev=" + id + ",name=" + names[i]});
        }
        return args;
    };
}

// The name of cz-init's virtio-serial port (cz.agent=serial:NAME).
inline const std::string agent_port_name = "cz.agent";

struct agent_vm_config {
    transport via = transport::vsock;
    std::filesystem::path image; // /dev/vda, read-only: the containers' root under an overlay
    // More virtio-serial ports, besides the agent's (see virtio_serial_ports).
    std::vector<std::string> serial_ports;
    std::string log_level = "debug";
    // QEMU's user-mode networking (a virtio-net device, eth0 in the guest), when set.
    std::optional<cz::vm::user_network> network;
};

// A VM with cz-init as PID 1 serving the agent over `via`. Every VM has cz's vsock device.
class agent_vm {
public:
    agent_vm(asio::io_context& ctx, const agent_vm_config& c)
        : ctx_(ctx), via_(c.via), vm_(ctx, config(c), qemu(c)) {}

    void start() {
        vm_.start();
        vsock_socket_ = vm_.vsock_socket();
        state_dir_ = vm_.state_dir();
        qemu_pid_ = vm_.pid();
    }

    transport via() const noexcept { return via_; }
    pid_t qemu_pid() const noexcept { return qemu_pid_; }
    cz::vm::qemu_vm& vm() noexcept { return vm_; }
    // The socket of an extra virtio-serial port.
    std::filesystem::path serial_socket(const std::string& name) const {
        return state_dir_ / (name + ".sock");
    }
    // The host end of the vsock device (a thread other than the one serving the VM dials).
    cz::vsock::host vsock_host(asio::io_context& io) const {
        return cz::vsock::host(io, cz::vsock::hybrid_transport{vsock_socket_});
    }

    // A connection to cz-init: vsock port 1024 dialled through the device, or the agent port's
    // socket. While the guest boots there is no listener yet (vsock) or nobody reads the port
    // (serial, whose socket connects at once): tries again until `timeout`.
    asio::local::stream_protocol::socket
    connect(asio::io_context& io, std::error_code& ec,
            std::chrono::milliseconds timeout = std::chrono::minutes(1)) const {
        asio::local::stream_protocol::socket socket(io);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (via_ == transport::vsock) {
                auto s = vsock_host(io).dial(1024, ec);
                if (!ec) socket.assign(asio::local::stream_protocol(), s.release(), ec);
            } else {
                socket.connect(
                    asio::local::stream_protocol::endpoint(serial_socket(agent_port_name).string()),
                    ec);
            }
            if (!ec || std::chrono::steady_clock::now() >= deadline) return socket;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    // Runs `talk()` on a thread of its own while this thread serves the VM, until the VM ends
    // (cz-init powers off after Shutdown) or `timeout`. When talk() throws, the VM is stopped and
    // the exception rethrown here. Returns the VM's exit status; `ec`: the wait's error.
    template <class Talk>
    cz::vm::exit_status serve(Talk talk, std::chrono::milliseconds timeout, std::error_code& ec) {
        std::exception_ptr failure;
        std::thread talker([&] {
            try {
                talk();
            } catch (...) {
                failure = std::current_exception();
                // The guest will not power off by itself now.
                asio::post(ctx_, [this] {
                    vm_.async_stop(cz::vm::stop_options{std::chrono::milliseconds(0)},
                                   [](std::error_code, const cz::vm::exit_status&) {});
                });
            }
        });
        auto status = vm_.wait_for(timeout, ec);
        talker.join();
        if (failure) std::rethrow_exception(failure);
        return status;
    }

private:
    static cz::vm::config config(const agent_vm_config& c) {
        cz::vm::config cfg;
        cfg.kernel = agent_kernel().image;
        cfg.initrd = cz_init_initramfs();
        cfg.root = test_root();
        cfg.disks = {{c.image, true}};
        cfg.network = c.network;
        cfg.append = "cz.rootfs=/dev/vda cz.log=" + c.log_level;
        if (c.via == transport::serial) cfg.append += " cz.agent=serial:" + agent_port_name;
        return cfg;
    }
    static cz::vm::qemu_options qemu(const agent_vm_config& c) {
        cz::vm::qemu_options q;
        auto ports = c.serial_ports;
        if (c.via == transport::serial) ports.insert(ports.begin(), agent_port_name);
        if (!ports.empty()) q.devices.push_back(virtio_serial_ports(ports));
        return q;
    }

    asio::io_context& ctx_;
    transport via_;
    cz::vm::qemu_vm vm_;
    std::filesystem::path vsock_socket_, state_dir_;
    pid_t qemu_pid_ = 0;
};

// The config.json of a busybox container on the image (the overlay cz-init mounted), with
// /proc and `mounts` (OCI mount objects) besides.
inline std::string container_config(const std::vector<std::string>& args,
                                    const nlohmann::json& mounts = nlohmann::json::array()) {
    nlohmann::json all = {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}};
    for (const auto& m : mounts)
        all.push_back(m);
    nlohmann::json spec = {
        {"ociVersion", "1.0.2"},
        {"process",
         {{"args", args},
          {"cwd", "/"},
          {"env", {"PATH=/bin"}},
          {"user", {{"uid", 0}, {"gid", 0}}}}},
        {"root", {{"path", "/run/cz/rootfs/merged"}}},
        {"hostname", "c"},
        {"mounts", all},
        {"linux",
         {{"namespaces",
           {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "uts"}}, {{"type", "ipc"}}}}}},
    };
    return spec.dump();
}

// The process object of an exec into a running container: `user` is its process.user object.
inline std::string process_config(const std::vector<std::string>& args, const nlohmann::json& user,
                                  const std::string& cwd, const std::vector<std::string>& env) {
    return nlohmann::json{{"args", args}, {"cwd", cwd}, {"env", env}, {"user", user}}.dump();
}

// The same as root in /, with PATH=/bin.
inline std::string process_config(const std::vector<std::string>& args) {
    return process_config(args, {{"uid", 0}, {"gid", 0}}, "/", {"PATH=/bin"});
}

// CreateProcess for `config` (which must outlive the request), with the given stream ids (0:
// /dev/null).
inline cz_agent_CreateProcess create_request(const std::string& container,
                                             const std::string& process, const std::string& config,
                                             std::uint32_t in = 0, std::uint32_t out = 0,
                                             std::uint32_t err = 0) {
    cz_agent_CreateProcess create{};
    std::error_code ec;
    cz::agent::set_string(create.container_id, container, ec);
    cz::agent::set_string(create.process_id, process, ec);
    if (ec) throw std::runtime_error("container or process id too long: " + container);
    create.config.data = reinterpret_cast<const std::byte*>(config.data());
    create.config.size = config.size();
    create.stdin_stream = in;
    create.stdout_stream = out;
    create.stderr_stream = err;
    return create;
}

// StartProcess, WaitProcess, DeleteProcess, KillProcess: an RPC naming one process.
template <class Rpc>
Rpc process_request(const std::string& container, const std::string& process) {
    Rpc r{};
    std::error_code ec;
    cz::agent::set_string(r.container_id, container, ec);
    cz::agent::set_string(r.process_id, process, ec);
    if (ec) throw std::runtime_error("container or process id too long: " + container);
    return r;
}

// Stat of `path`, following symlinks.
inline cz_agent_Stat stat_request(const std::string& path) {
    cz_agent_Stat s = cz_agent_Stat_init_zero;
    std::error_code ec;
    cz::agent::set_string(s.path, path, ec);
    if (ec) throw std::runtime_error("path too long: " + path);
    s.follow_symlinks = true;
    return s;
}

// Throws when an RPC failed, naming `what` and the guest's message.
inline void check_answer(const std::error_code& ec, const cz::agent::response& r,
                         const std::string& what) {
    if (!ec) return;
    std::string detail;
    if (r.which_result == cz_agent_Response_error_tag)
        detail = " (" + std::string(cz::agent::get_string(r.result.error.message)) + ", errno " +
                 std::to_string(r.result.error.sys_errno) + ")";
    throw std::runtime_error(what + ": " + ec.message() + detail);
}

// One RPC that must succeed (check_answer).
template <class Rpc>
asio::awaitable<cz::agent::response> call(cz::agent::client& c, const Rpc& rpc,
                                          const std::string& what) {
    auto [ec, r] = co_await c.async_call(rpc, asio::experimental::as_tuple(asio::use_awaitable));
    check_answer(ec, r, what);
    co_return r;
}

// Runs a process of `container` (CreateProcess, StartProcess, WaitProcess, DeleteProcess) with
// its stdout on stream `out`, opened here and closed after. Returns what it wrote and its exit
// status; throws naming the RPC that failed.
inline asio::awaitable<std::pair<std::string, int>>
capture_output(cz::agent::client& c, std::string container, std::string process, std::string config,
               std::uint32_t out) {
    using asio::experimental::as_tuple;
    std::error_code ec;
    c.open_stream(out, ec);
    if (ec) throw std::runtime_error("stream " + std::to_string(out) + ": " + ec.message());
    co_await call(c, create_request(container, process, config, 0, out, 0), "create " + process);
    co_await call(c, process_request<cz_agent_StartProcess>(container, process),
                  "start " + process);
    std::string text;
    std::byte buf[4096];
    for (;;) {
        auto [e, n] = co_await c.async_read_stream(out, buf, as_tuple(asio::use_awaitable));
        text.append(reinterpret_cast<const char*>(buf), n);
        if (e) break;
    }
    auto w = co_await call(c, process_request<cz_agent_WaitProcess>(container, process),
                           "wait " + process);
    co_await call(c, process_request<cz_agent_DeleteProcess>(container, process),
                  "delete " + process);
    c.close_stream(out);
    co_return std::pair{text, w.result.wait_process.status};
}

// Runs `talk` on `io` until it ends, then closes `c` (whose async_run would keep `io` running
// otherwise); rethrows what `talk` threw.
inline void run_talk(asio::io_context& io, cz::agent::client& c, asio::awaitable<void> talk) {
    std::exception_ptr failure;
    asio::co_spawn(io, std::move(talk), [&](std::exception_ptr e) {
        failure = e;
        c.close();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

} // namespace cz::guest::test
