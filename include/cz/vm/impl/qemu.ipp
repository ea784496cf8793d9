// Out-of-line definitions for cz/vm/qemu.hpp.
#pragma once

#include <cz/vm/qemu.hpp>

#include <cz/core/stream.hpp>
#include <cz/vsock/backend.hpp>

#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sys/file.h>
#include <sys/random.h>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace cz::vm {

namespace detail {
// A value inside a QEMU option list (`key=value,...`): a comma is written twice.
inline std::string qemu_option_value(std::string_view v) {
    std::string out;
    for (char c : v) {
        out += c;
        if (c == ',') out += ',';
    }
    return out;
}
} // namespace detail

CZ_DECL std::string qemu_kernel_cmdline(const config& cfg, const qemu_options& qemu,
                                        accel_mode accel, unsigned long tsc_khz) {
    // reboot=t + -no-reboot: a reboot (and panic=-1's immediate reboot) ends the VM.
    std::string s = "console=ttyS0 reboot=t panic=-1 quiet"
                    " i8042.noaux i8042.nomux i8042.dumbkbd i8042.nopnp cryptomgr.notests";
    if (accel == accel_mode::tcg && tsc_khz != 0)
        s += fmt::format(" tsc_early_khz={} tsc=reliable", tsc_khz);
    // Without tables the kernel would search the BIOS areas for an RSDP and complain.
    if (!qemu.acpi) s += " acpi=off";
    if (!cfg.append.empty()) s += " " + cfg.append;
    return s;
}

CZ_DECL std::vector<std::string> qemu_command_line(const config& cfg, const qemu_options& qemu,
                                                   const qemu_launch& l) {
    std::vector<std::string> a{qemu.binary};
    auto add = [&](std::initializer_list<std::string> words) { a.insert(a.end(), words); };
    add({"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
    add({"-M", fmt::format("microvm,x-option-roms=off,acpi={},memory-backend=mem",
                           qemu.acpi ? "on" : "off")});
    if (l.accel == accel_mode::kvm) {
        add({"-accel", "kvm", "-cpu", "host"});
    } else {
        // Every feature TCG emulates except fast-string `rep movsb` (ERMS, FSRM): with them the
        // guest's memcpy uses it, which TCG runs slowly. vsock and virtio-serial move data about
        // twice as fast without (bench_vsock_throughput); boot takes as long.
        add({"-accel", "tcg,thread=multi", "-cpu", "max,erms=off,fsrm=off"});
    }
    add({"-smp", std::to_string(cfg.cpus), "-m", fmt::format("{}M", cfg.memory_mib)});
    auto memory = qemu.memory_file
                      ? std::vector<std::string>{"-object",
                                                 fmt::format("memory-backend-file,id=mem,size={}M,"
                                                             "mem-path={},share={}",
                                                             cfg.memory_mib,
                                                             detail::qemu_option_value(
                                                                 qemu.memory_file->path.string()),
                                                             qemu.memory_file->shared ? "on" : "off")}
                      : qemu_memory_args(cfg.memory_mib, "mem");
    a.insert(a.end(), memory.begin(), memory.end());
    add({"-global", "virtio-mmio.force-legacy=false"});
    add({"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"});
    add({"-chardev", fmt::format("socket,id=qmp,fd={},server=on,wait=off", l.qmp_fd), "-mon",
         "chardev=qmp,mode=control"});
    add({"-kernel", cfg.kernel.string()});
    if (!cfg.initrd.empty()) add({"-initrd", cfg.initrd.string()});
    add({"-append", qemu_kernel_cmdline(cfg, qemu, l.accel, l.tsc_khz)});
    for (std::size_t i = 0; i < cfg.disks.size(); ++i) {
        const auto& d = cfg.disks[i];
        add({"-drive", fmt::format("id=disk{},file={},format=raw,if=none,readonly={}", i,
                                   d.path.string(), d.read_only ? "on" : "off"),
             "-device", fmt::format("virtio-blk-device,drive=disk{}", i)});
    }
    if (cfg.network) {
        std::string netdev = "user,id=net0";
        for (const auto& f : cfg.network->forwards)
            netdev += fmt::format(",hostfwd={}:{}:{}-:{}",
                                  f.proto == port_forward::protocol::udp ? "udp" : "tcp",
                                  f.host_address, f.host_port, f.guest_port);
        add({"-netdev", netdev, "-device", "virtio-net-device,netdev=net0"});
    }
    a.insert(a.end(), l.extra_args.begin(), l.extra_args.end());
    if (qemu.incoming) add({"-incoming", "defer"});
    return a;
}

CZ_DECL std::vector<std::string> qemu_memory_args(std::uint64_t mib, const std::string& id) {
    return {"-object", fmt::format("memory-backend-memfd,id={},size={}M,share=on", id, mib)};
}

CZ_DECL std::vector<std::string> qemu_vhost_user_vsock_args(const std::filesystem::path& socket,
                                                            const std::string& chardev_id) {
    return {"-chardev", fmt::format("socket,id={},path={}", chardev_id, socket.string()),
            "-device", "vhost-user-vsock-device,chardev=" + chardev_id};
}

namespace detail {
// The host end of cz's vsock device, in the state directory (see qemu_vm::vsock_socket).
inline constexpr const char* vsock_socket_name = "vsock.sock";
} // namespace detail

CZ_DECL device_hook qemu_vsock_device(vsock_device device) {
    return [device](device_context& d) -> std::vector<std::string> {
        ::cz::vsock::backend_config vc;
        vc.device.guest_cid = device.guest_cid;
        vc.vhost_user_socket = d.state_dir() / "vhost-user.sock";
        vc.uds_path = d.state_dir() / detail::vsock_socket_name;
        // Listening before QEMU starts: QEMU connects to the vhost-user socket once, at startup.
        auto backend = std::make_shared<::cz::vsock::backend>(d.io_context(), vc);
        std::error_code ec;
        backend->start(ec);
        if (ec) {
            d.fail(ec, "vsock device: " + ec.message());
            return {};
        }
        // QEMU is gone, so the guest is too: close the device's sockets and connections.
        d.on_exit([backend] { backend->stop(); });
        // Guest RAM is a shared memfd (qemu_command_line), as the backend needs.
        return qemu_vhost_user_vsock_args(vc.vhost_user_socket);
    };
}

namespace detail {

// A one-shot event coroutines can wait for: a timer that never expires, cancelled to notify.
class vm_event {
public:
    explicit vm_event(asio::any_io_executor ex) : timer_(ex, asio::steady_timer::time_point::max()) {}
    void notify() {
        set_ = true;
        timer_.cancel();
    }
    bool is_set() const noexcept { return set_; }
    asio::awaitable<void> wait() {
        while (!set_) {
            std::error_code ignored;
            co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
    }

private:
    asio::steady_timer timer_;
    bool set_ = false;
};

struct qemu_state : std::enable_shared_from_this<qemu_state> {
    qemu_state(asio::io_context& c, config cf, qemu_options q)
        : ctx(c), cfg(std::move(cf)), qemu(std::move(q)), console_eof(c.get_executor()),
          qmp_eof(c.get_executor()), exited(c.get_executor()) {}

    asio::io_context& ctx;
    config cfg;
    qemu_options qemu;
    accel_mode accel = accel_mode::tcg;
    std::filesystem::path state_dir;
    child_process child;
    std::optional<asio::posix::stream_descriptor> pidfd;
    std::optional<asio::posix::stream_descriptor> console_pipe;
    std::optional<qmp_client> qmp;
    unique_fd console_log;
    // The state directory, open and flock()ed while this VM owns it (see remove_stale_state).
    unique_fd state_lock;
    // What the device hooks asked to run once QEMU has gone (device_context::on_exit).
    std::vector<std::function<void()>> device_exit;
    bool devices_closed = false;
    vm_event console_eof, qmp_eof, exited;
    bool started = false;
    bool stop_requested = false;
    bool killed_by_stop = false;
    bool panic_seen = false;
    std::string shutdown_reason;
    std::string console_text;
    std::string scan_tail;
    error_info detail; // why start() failed (error_detail())
    exit_status status;
    vm_timings times;

    std::string read_vmm_log() const {
        std::ifstream in(state_dir / "vmm.log");
        std::string text, line;
        while (std::getline(in, line))
            if (!line.empty()) text = text.empty() ? line : text + "; " + line;
        return text.size() > 2000 ? text.substr(0, 2000) : text;
    }

    void remove_state_dir() noexcept {
        if (!state_dir.empty() && !cfg.keep_state) {
            std::error_code ignored;
            std::filesystem::remove_all(state_dir, ignored);
        }
        state_lock.reset();
    }

    // Runs the device hooks' exit handlers, once: QEMU is gone, or never came.
    void close_devices() noexcept {
        if (devices_closed) return;
        devices_closed = true;
        for (auto& f : device_exit) f();
    }

    // For start's early returns: the state directory goes, the error is passed on.
    std::error_code fail(std::error_code e) noexcept {
        close_devices();
        remove_state_dir();
        return e;
    }

    void on_console(std::string_view chunk) {
        if (times.first_console == vm_timings::time_point{})
            times.first_console = std::chrono::steady_clock::now();
        console_text += chunk;
        if (console_text.size() > cfg.console_capture_limit)
            console_text.erase(0, console_text.size() - cfg.console_capture_limit);
        // A panic message may straddle two reads: search the end of the previous one too.
        scan_tail += chunk;
        if (scan_tail.find("Kernel panic - not syncing") != std::string::npos) panic_seen = true;
        if (scan_tail.size() > 64) scan_tail.erase(0, scan_tail.size() - 64);
        if (console_log) {
            fd_sink sink(console_log.get());
            std::error_code ignored; // a full disk must not stop the VM; the capture still works
            sink.write(as_bytes(chunk), ignored);
        }
        if (cfg.on_console) cfg.on_console(chunk);
    }

    asio::awaitable<void> console_loop(std::shared_ptr<qemu_state> self) {
        char buf[4096];
        while (true) {
            std::error_code ec;
            auto n = co_await console_pipe->async_read_some(
                asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
            if (n > 0) on_console(std::string_view(buf, n));
            if (ec) break;
        }
        console_eof.notify();
        (void)self;
    }

    asio::awaitable<void> qmp_loop(std::shared_ptr<qemu_state> self) {
        std::error_code ec;
        co_await qmp->async_run(asio::redirect_error(asio::use_awaitable, ec));
        qmp_eof.notify();
        (void)self;
    }

    void finalize(const process_exit& pe) {
        exit_status st;
        st.process = pe;
        st.shutdown_reason = shutdown_reason;
        const auto& r = shutdown_reason;
        if (stop_requested) {
            st.reason = exit_reason::stopped;
            st.forced = killed_by_stop;
        } else if (r == "guest-panic" || panic_seen) {
            st.reason = exit_reason::panic;
        } else if (r == "guest-shutdown") {
            st.reason = exit_reason::poweroff;
        } else if (r == "guest-reset") {
            st.reason = exit_reason::reboot;
        } else if (r == "host-qmp-quit") {
            st.reason = exit_reason::stopped;
        } else if (r == "host-signal" || pe.signaled) {
            st.reason = exit_reason::killed;
            st.message = pe.signaled ? fmt::format("QEMU killed by signal {}", pe.code)
                                     : std::string("QEMU terminated by a signal");
        } else {
            st.reason = exit_reason::vmm_error;
            st.message = read_vmm_log();
            if (st.message.empty())
                st.message = fmt::format("QEMU exited with status {} without a shutdown event",
                                         pe.code);
        }
        status = std::move(st);
    }

    asio::awaitable<void> exit_loop(std::shared_ptr<qemu_state> self) {
        using namespace asio::experimental::awaitable_operators;
        std::error_code ec;
        co_await pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                                   asio::redirect_error(asio::use_awaitable, ec));
        auto pe = child.wait(ec);
        times.exited = std::chrono::steady_clock::now();
        // QEMU has exited, so its ends of the console pipe and the QMP socket are closed: both
        // loops are at (or about to see) end of stream. The cap guards against an fd QEMU
        // might have leaked to a process of its own.
        asio::steady_timer cap(ctx, std::chrono::seconds(2));
        co_await ((console_eof.wait() && qmp_eof.wait()) ||
                  cap.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
        finalize(pe);
        pidfd.reset();
        console_pipe.reset();
        if (qmp) qmp->close();
        console_log.reset();
        close_devices();
        remove_state_dir();
        exited.notify();
        (void)self;
    }

    // Waits until QEMU has exited or `timeout` passed; returns whether it exited.
    asio::awaitable<bool> wait_exit_for(std::chrono::milliseconds timeout) {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer t(ctx, timeout);
        std::error_code ec;
        co_await (exited.wait() || t.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
        co_return exited.is_set();
    }

    // Sends a QMP command, waiting at most `timeout` for the reply; errors are not interesting
    // here (QEMU may exit before it answers `quit`).
    asio::awaitable<void> command(std::string name, std::chrono::milliseconds timeout) {
        using namespace asio::experimental::awaitable_operators;
        if (!qmp || qmp->closed()) co_return;
        asio::steady_timer t(ctx, timeout);
        std::error_code ec1, ec2;
        co_await (qmp->async_execute(std::move(name), nullptr,
                                     asio::redirect_error(asio::use_awaitable, ec1)) ||
                  t.async_wait(asio::redirect_error(asio::use_awaitable, ec2)));
    }
};

// A Unix socket listening at `path`, and a client already connected to it (the connection waits
// in the backlog until QEMU accepts it). The path is unlinked again: nothing else can connect.
inline std::error_code make_qmp_sockets(const std::filesystem::path& path, unique_fd& listener,
                                        unique_fd& client) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    auto p = path.string();
    if (p.size() >= sizeof addr.sun_path) return std::make_error_code(std::errc::filename_too_long);
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    client.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener || !client) return last_system_error();
    // SAFETY: addr is a sockaddr_un; the length passed is its size.
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        auto ec = last_system_error();
        ::unlink(p.c_str());
        return ec;
    }
    ::unlink(p.c_str());
    return {};
}

inline std::string random_id() {
    unsigned char bytes[6];
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        std::random_device rd;
        for (auto& b : bytes) b = static_cast<unsigned char>(rd());
    }
    std::string id;
    for (auto b : bytes) id += fmt::format("{:02x}", b);
    return id;
}

// The file in a state directory that marks it as kept on purpose (config::keep_state).
inline constexpr const char* keep_marker = "keep";

} // namespace detail

CZ_DECL std::size_t remove_stale_state(const std::filesystem::path& root, std::chrono::seconds min_age) {
    namespace fs = std::filesystem;
    std::size_t removed = 0;
    std::error_code ec;
    fs::directory_iterator it(root / "vms", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const auto& dir = it->path();
        struct stat st {};
        if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        // One being made (.new-<id>, locked and renamed within microseconds): only when old.
        bool being_made = dir.filename().string().starts_with(".new-");
        if (being_made && ::time(nullptr) - st.st_mtime < min_age.count()) continue;
        if (::access((dir / detail::keep_marker).c_str(), F_OK) == 0) continue;
        unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        // Someone holds the lock: the VM is running.
        if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
        std::error_code rm_ec;
        if (fs::remove_all(dir, rm_ec) > 0 && !rm_ec) ++removed;
    }
    return removed;
}

CZ_DECL qemu_vm::qemu_vm(asio::io_context& ctx, config cfg, qemu_options qemu)
    : s_(std::make_shared<detail::qemu_state>(ctx, std::move(cfg), std::move(qemu))) {}

CZ_DECL qemu_vm::~qemu_vm() {
    if (!s_) return;
    // Synchronously: kill and reap QEMU, close everything, remove the state directory. The
    // coroutines still pending hold s_ and end harmlessly when the io_context next runs.
    std::error_code ignored;
    if (s_->child.running()) {
        s_->stop_requested = true;
        s_->child.kill(SIGKILL, ignored);
    }
    s_->child.wait(ignored);
    if (s_->qmp) s_->qmp->close();
    if (s_->console_pipe) s_->console_pipe->close(ignored);
    if (s_->pidfd) s_->pidfd->close(ignored);
    s_->console_log.reset();
    s_->close_devices();
    s_->device_exit.clear(); // releases what the devices held (cz's vsock backend)
    s_->remove_state_dir();
}

CZ_DECL asio::any_io_executor qemu_vm::executor() const { return s_->ctx.get_executor(); }

CZ_DECL asio::awaitable<std::error_code> qemu_vm::start_op() {
    using namespace asio::experimental::awaitable_operators;
    auto s = s_;
    if (s->started) co_return errc::already_started;
    s->started = true;
    s->times.start = std::chrono::steady_clock::now();
    std::error_code ec;
    validate(s->cfg, s->detail, ec);
    if (ec) co_return ec;
    s->accel = resolve_accel(s->cfg.accel);

    auto root = s->cfg.root.empty() ? default_root() : s->cfg.root;
    auto vms = root / "vms";
    std::filesystem::create_directories(vms, ec);
    if (ec) co_return ec;
    remove_stale_state(root);
    // The directory gets its name only once it is locked (made as .new-<id>, locked, renamed),
    // so a sweep by another program never sees it unlocked under a VM's name.
    for (int attempt = 0; attempt < 10 && s->state_dir.empty(); ++attempt) {
        auto id = detail::random_id();
        auto fresh = vms / (".new-" + id);
        if (::mkdir(fresh.c_str(), 0700) != 0) {
            if (errno == EEXIST) continue;
            co_return last_system_error();
        }
        s->state_lock.reset(::open(fresh.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!s->state_lock || ::flock(s->state_lock.get(), LOCK_EX | LOCK_NB) != 0 ||
            ::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, (vms / id).c_str(), RENAME_NOREPLACE) != 0) {
            auto e = last_system_error();
            ::rmdir(fresh.c_str());
            s->state_lock.reset();
            if (e == std::errc::file_exists) continue;
            co_return e;
        }
        s->state_dir = vms / id;
    }
    if (s->state_dir.empty()) co_return std::make_error_code(std::errc::file_exists);
    if (s->cfg.keep_state) {
        unique_fd marker(::open((s->state_dir / detail::keep_marker).c_str(),
                                O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        if (!marker) co_return s->fail(last_system_error());
    }

    // Every early return from here on goes through s->fail(), which removes the state directory.
    unique_fd listener, client;
    if (auto e = detail::make_qmp_sockets(s->state_dir / "qmp.sock", listener, client)) co_return s->fail(e);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) co_return s->fail(last_system_error());
    unique_fd console_read(pipe_fds[0]), console_write(pipe_fds[1]);
    unique_fd vmm_log(::open((s->state_dir / "vmm.log").c_str(),
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    s->console_log.reset(::open((s->state_dir / "console.log").c_str(),
                                O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!vmm_log || !s->console_log) co_return s->fail(last_system_error());

    qemu_launch launch;
    launch.state_dir = s->state_dir;
    launch.qmp_fd = listener.get();
    launch.accel = s->accel;
    launch.tsc_khz = s->accel == accel_mode::tcg ? host_tsc_khz() : 0;
    spawn_options opts;
    opts.stdout_fd = console_write.get();
    opts.stderr_fd = vmm_log.get();
    opts.keep_fds.push_back(listener.get());
    // cz's vsock device first, then the caller's. A hook that fails stops the rest; what the ones
    // before it registered with on_exit is closed by fail().
    device_context devices(s->ctx, s->state_dir);
    std::vector<device_hook> hooks;
    if (s->cfg.vsock) hooks.push_back(qemu_vsock_device(*s->cfg.vsock));
    hooks.insert(hooks.end(), s->qemu.devices.begin(), s->qemu.devices.end());
    for (const auto& hook : hooks) {
        if (devices.error()) break;
        auto words = hook(devices);
        launch.extra_args.insert(launch.extra_args.end(), words.begin(), words.end());
    }
    s->device_exit = std::move(devices.exit_handlers());
    if (auto e = devices.error()) {
        s->detail = devices.error_detail();
        co_return s->fail(e);
    }
    opts.keep_fds.insert(opts.keep_fds.end(), devices.passed_fds().begin(),
                         devices.passed_fds().end());
    opts.argv = qemu_command_line(s->cfg, s->qemu, launch);

    s->child = child_process::spawn(opts, ec);
    if (ec) {
        s->detail.message = ec == errc::vmm_not_found ? s->qemu.binary + ": not found" : "";
        co_return s->fail(ec);
    }
    s->times.spawned = std::chrono::steady_clock::now();
    listener.reset();
    console_write.reset();
    vmm_log.reset();

    auto ex = s->ctx.get_executor();
    // The descriptor object owns a duplicate; the child_process keeps its own pidfd.
    s->pidfd.emplace(ex, ::fcntl(s->child.pidfd(), F_DUPFD_CLOEXEC, 3));
    s->console_pipe.emplace(ex, console_read.release());
    s->qmp.emplace(qmp_client::socket_type(ex, asio::local::stream_protocol(), client.release()));
    s->qmp->on_event([w = std::weak_ptr<detail::qemu_state>(s)](const qmp_message& m) {
        auto st = w.lock();
        if (!st) return;
        if (m.name == "SHUTDOWN" && m.value.is_object()) {
            auto r = m.value.find("reason");
            if (r != m.value.end() && r->is_string()) st->shutdown_reason = r->get<std::string>();
        } else if (m.name == "GUEST_PANICKED") {
            st->panic_seen = true;
        }
        if (st->qemu.on_event) st->qemu.on_event(m);
    });
    asio::co_spawn(ex, s->console_loop(s), asio::detached);

    asio::steady_timer deadline(ex, s->cfg.start_timeout);
    std::error_code hs_ec, timer_ec;
    auto which = co_await (
        s->qmp->async_handshake(asio::redirect_error(asio::use_awaitable, hs_ec)) ||
        deadline.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
    if (which.index() == 1) hs_ec = errc::timed_out;
    if (hs_ec) {
        std::error_code ignored;
        s->child.kill(SIGKILL, ignored);
        s->child.wait(ignored);
        s->detail.message = s->read_vmm_log();
        s->qmp->close();
        s->console_pipe.reset();
        s->pidfd.reset();
        s->console_log.reset();
        co_return s->fail(hs_ec == errc::timed_out ? hs_ec : make_error_code(errc::vmm_start_failed));
    }
    s->times.qmp_ready = std::chrono::steady_clock::now();
    asio::co_spawn(ex, s->qmp_loop(s), asio::detached);
    asio::co_spawn(ex, s->exit_loop(s), asio::detached);
    co_return std::error_code{};
}

CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> qemu_vm::wait_op() {
    auto s = s_;
    if (!s->started || !s->pidfd) co_return std::pair{make_error_code(errc::not_running), exit_status{}};
    co_await s->exited.wait();
    co_return std::pair{std::error_code{}, s->status};
}

CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> qemu_vm::stop_op(stop_options opts) {
    auto s = s_;
    if (!s->started || !s->pidfd) co_return std::pair{make_error_code(errc::not_running), exit_status{}};
    if (!s->exited.is_set()) {
        s->stop_requested = true;
        bool done = false;
        if (opts.powerdown.count() > 0) {
            co_await s->command("system_powerdown", opts.powerdown);
            done = co_await s->wait_exit_for(opts.powerdown);
        }
        if (!done) {
            co_await s->command("quit", opts.quit);
            done = co_await s->wait_exit_for(opts.quit);
        }
        if (!done && s->child.running()) {
            std::error_code ignored;
            s->killed_by_stop = true;
            s->child.kill(SIGKILL, ignored);
        }
        co_await s->exited.wait();
    }
    co_return std::pair{std::error_code{}, s->status};
}

namespace detail {
// Runs the io_context until `done` (the synchronous functions' engine).
inline void run_until(asio::io_context& ctx, const bool& done) {
    ctx.restart();
    while (!done)
        if (ctx.run_one() == 0) break;
}
} // namespace detail

CZ_DECL void qemu_vm::start(std::error_code& ec) {
    bool done = false;
    async_start([&](std::error_code e) {
        ec = e;
        done = true;
    });
    detail::run_until(s_->ctx, done);
}

CZ_DECL void qemu_vm::start() {
    std::error_code ec;
    start(ec);
    if (ec) {
        auto msg = to_string(s_->detail);
        throw system_error(ec, msg.empty() ? "starting VM" : "starting VM: " + msg);
    }
}

CZ_DECL exit_status qemu_vm::wait(std::error_code& ec) {
    bool done = false;
    exit_status st;
    async_wait([&](std::error_code e, exit_status r) {
        ec = e;
        st = std::move(r);
        done = true;
    });
    detail::run_until(s_->ctx, done);
    return st;
}

CZ_DECL exit_status qemu_vm::wait() {
    std::error_code ec;
    auto st = wait(ec);
    throw_if(ec, "waiting for VM");
    return st;
}

CZ_DECL exit_status qemu_vm::wait_for(std::chrono::milliseconds timeout, std::error_code& ec) {
    if (!s_->started || !s_->pidfd) {
        ec = errc::not_running;
        return {};
    }
    bool done = false, exited = false;
    asio::co_spawn(
        s_->ctx, [s = s_, timeout]() { return s->wait_exit_for(timeout); },
        [&](std::exception_ptr, bool r) {
            exited = r;
            done = true;
        });
    detail::run_until(s_->ctx, done);
    if (exited) return s_->status;
    auto st = stop({std::chrono::milliseconds(0), std::chrono::milliseconds(2000)}, ec);
    if (!ec) ec = errc::timed_out;
    return st;
}

CZ_DECL exit_status qemu_vm::stop(stop_options opts, std::error_code& ec) {
    bool done = false;
    exit_status st;
    async_stop(opts, [&](std::error_code e, exit_status r) {
        ec = e;
        st = std::move(r);
        done = true;
    });
    detail::run_until(s_->ctx, done);
    return st;
}

CZ_DECL exit_status qemu_vm::stop(stop_options opts) {
    std::error_code ec;
    auto st = stop(opts, ec);
    throw_if(ec, "stopping VM");
    return st;
}

CZ_DECL qmp_client& qemu_vm::qmp() {
    if (!s_->qmp) throw system_error(make_error_code(errc::not_running), "QMP");
    return *s_->qmp;
}
CZ_DECL bool qemu_vm::running() const noexcept {
    return s_->started && s_->pidfd && !s_->exited.is_set();
}
CZ_DECL pid_t qemu_vm::pid() const noexcept { return s_->child.pid(); }
CZ_DECL const std::filesystem::path& qemu_vm::state_dir() const noexcept { return s_->state_dir; }

CZ_DECL std::filesystem::path qemu_vm::vsock_socket() const {
    if (!s_->cfg.vsock || s_->state_dir.empty()) return {};
    return s_->state_dir / detail::vsock_socket_name;
}

CZ_DECL ::cz::vsock::host qemu_vm::vsock_host() const {
    return ::cz::vsock::host(s_->ctx, ::cz::vsock::hybrid_transport{vsock_socket()});
}
CZ_DECL accel_mode qemu_vm::accel() const noexcept { return s_->accel; }
CZ_DECL const std::string& qemu_vm::console() const noexcept { return s_->console_text; }
CZ_DECL const vm_timings& qemu_vm::timings() const noexcept { return s_->times; }
CZ_DECL const error_info& qemu_vm::error_detail() const noexcept { return s_->detail; }

} // namespace cz::vm
