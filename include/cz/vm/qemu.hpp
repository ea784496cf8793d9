// cz/vm/qemu.hpp — cz's QEMU machine: `qemu-system-x86_64 -M microvm` as a child process.
//
// One qemu_vm is one VM, a cz::vm::machine (cz/vm/machine.hpp), made from the common
// cz::vm::config and QEMU's own qemu_options (the binary, ACPI tables, extra QEMU devices).
// start() creates its state directory (<root>/vms/<id>/), starts QEMU and completes once QMP is
// up; wait() completes when QEMU has exited, its console is drained and the state directory
// removed; stop() asks the guest to power off (ACPI power button), then QEMU to quit (QMP), then
// kills it (SIGKILL), each after its timeout. The exit_status says why the VM
// ended. QEMU is started with PR_SET_PDEATHSIG, so it dies with the thread that started it, and
// the destructor kills and reaps a VM still running: no QEMU, fd or state directory outlives its
// qemu_vm. If the program itself is killed, the next start() in the same root removes the
// directory it left (remove_stale_state).
//
// The machine (docs/system/i386/microvm.rst; Firecracker's and QEMU's recommendations):
//   -M microvm,x-option-roms=off,acpi=on|off,memory-backend=mem   direct kernel boot, no PCI
//   -object memory-backend-memfd,...,share=on                      guest RAM a vhost-user backend
//                                                                  (cz/vsock) can map
//   -accel kvm -cpu host | -accel tcg,thread=multi                 see cz/vm/accel.hpp; under TCG
//     -cpu max,erms=off,fsrm=off                                   without slow `rep movsb`
//   -global virtio-mmio.force-legacy=false                         virtio 1.x transports
//   -chardev stdio + -serial                                       ttyS0 through a pipe to cz
//   -chardev socket,fd=N,server=on + -mon mode=control             QMP on a socket cz made
//   -nodefaults -no-user-config -display none -no-reboot           nothing implicit; a guest
//                                                                  reboot ends the VM
// and the kernel command line `console=ttyS0 reboot=t panic=-1 quiet` plus the i8042/crypto
// self-test skips Firecracker uses; under TCG also tsc_early_khz= (see cz/vm/accel.hpp).
//
// Devices beyond the disks and the network are device hooks (qemu_options::devices): each is
// called at start and returns QEMU words. cz's vsock device (config::vsock, on by default) is one
// too, qemu_vsock_device(), run before the caller's: a cz::vsock::backend on the VM's
// io_context, started before QEMU (QEMU connects to its vhost-user socket once, at startup) and
// stopped once QEMU has exited. vsock_host() dials and listens on guest ports.
//
// Threading: all operations of one VM run on its io_context's thread; the synchronous functions
// run the io_context themselves and must not be mixed with another thread running it.
#pragma once

#include <cz/core/asio_operation.hpp>
#include <cz/vm/accel.hpp>
#include <cz/vm/config.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/machine.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/qmp.hpp>
#include <cz/vsock/host.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cz::vm {

// What a device hook gets: the VM's io_context and state directory (for a device cz serves
// itself, and its sockets), a way to hand QEMU an open fd, one to close the device when QEMU has
// gone, and one to say it cannot be attached.
class device_context {
public:
    device_context(asio::io_context& ctx, std::filesystem::path state_dir)
        : ctx_(ctx), state_dir_(std::move(state_dir)) {}
    // The VM's io_context: a device served here runs where the VM's operations do.
    asio::io_context& io_context() const noexcept { return ctx_; }
    const std::filesystem::path& state_dir() const noexcept { return state_dir_; }
    // Returns the number the fd has in the QEMU process (the same number: the fd is inherited,
    // not renumbered); the caller keeps ownership and may close its copy after start().
    int pass_fd(int fd) {
        fds_.push_back(fd);
        return fd;
    }
    // `f` runs once QEMU has exited, or when start() fails after the hook ran: a device cz serves
    // closes its sockets there. What `f` holds lives as long as the qemu_vm.
    void on_exit(std::function<void()> f) { exit_handlers_.push_back(std::move(f)); }
    // The device cannot be attached: start() fails with `ec`, and the VM's error_detail() is
    // `message`.
    void fail(std::error_code ec, std::string message) {
        error_ = ec;
        detail_.message = std::move(message);
    }

    const std::vector<int>& passed_fds() const noexcept { return fds_; }
    std::vector<std::function<void()>>& exit_handlers() noexcept { return exit_handlers_; }
    std::error_code error() const noexcept { return error_; }
    const error_info& error_detail() const noexcept { return detail_; }

private:
    asio::io_context& ctx_;
    std::filesystem::path state_dir_;
    std::vector<int> fds_;
    std::vector<std::function<void()>> exit_handlers_;
    std::error_code error_;
    error_info detail_;
};

// A device added to a QEMU VM: called once, at start, after the state directory exists and
// before QEMU starts. Returns QEMU command-line words, such as
// {"-chardev", "socket,id=vu0,path=...", "-device", "vhost-user-vsock-device,chardev=vu0"}.
using device_hook = std::function<std::vector<std::string>(device_context&)>;

// What only QEMU understands; the rest of a VM is its cz::vm::config.
struct qemu_options {
    // The QEMU binary; looked up in PATH when it has no slash.
    std::string binary = "qemu-system-x86_64";
    // microvm's ACPI tables: Debian's kernel needs them to find virtio-mmio devices; a kernel with
    // CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES boots faster without (virtio_mmio.device= on the cmdline).
    bool acpi = true;
    // Devices added by other modules, after cz's own (see device_hook).
    std::vector<device_hook> devices;
    // Guest RAM in a file instead of a memfd: a VM template's memory (cz/vm/template.hpp).
    // `shared`: the guest's writes reach the file (the template being made); otherwise the file
    // is mapped privately, copy-on-write (a clone: many share the file's unmodified pages). A
    // vhost-user device needs shared RAM, so a private mapping wants config::vsock off.
    struct memory_file_backing {
        std::filesystem::path path;
        bool shared = false;
    };
    std::optional<memory_file_backing> memory_file;
    // `-incoming defer`: QEMU starts without running the guest and waits for QMP's
    // migrate-incoming (restoring a template's clone).
    bool incoming = false;
    // Called with each QMP event, after qemu_vm's own handling, on the VM's thread.
    std::function<void(const qmp_message&)> on_event;
};

// When things happened, for benchmarks (steady_clock).
struct vm_timings {
    using time_point = std::chrono::steady_clock::time_point;
    time_point start;         // start() called
    time_point spawned;       // QEMU forked and exec'd
    time_point qmp_ready;     // QMP handshake done
    time_point first_console; // first console byte (time_point{} if none)
    time_point exited;        // QEMU reaped
};

// What qemu_command_line needs besides the config and the options: the facts of one start.
struct qemu_launch {
    std::filesystem::path state_dir;
    int qmp_fd = -1;               // a listening Unix socket QEMU inherits
    accel_mode accel = accel_mode::tcg;
    unsigned long tsc_khz = 0;     // TCG only; 0 = let the guest calibrate
    std::vector<std::string> extra_args; // from device hooks
};

// The kernel command line cz boots with: defaults, then cfg.append.
CZ_DECL std::string qemu_kernel_cmdline(const config& cfg, const qemu_options& qemu,
                                        accel_mode accel, unsigned long tsc_khz);
// The full argv, argv[0] = qemu.binary.
CZ_DECL std::vector<std::string> qemu_command_line(const config& cfg, const qemu_options& qemu,
                                                   const qemu_launch& launch);

// `-object memory-backend-memfd,id=<id>,size=<mib>M,share=on`, for `-machine memory-backend=<id>`:
// guest RAM in a shared memfd, which a vhost-user backend (cz/vsock) can map. cz's VMs always
// have it.
CZ_DECL std::vector<std::string> qemu_memory_args(std::uint64_t mib, const std::string& id = "mem");
// A vhost-user-vsock-device (virtio-mmio, as on microvm) whose backend listens at `socket` (a
// cz::vsock::backend's vhost_user_socket); guest RAM must be shared (qemu_memory_args).
CZ_DECL std::vector<std::string>
qemu_vhost_user_vsock_args(const std::filesystem::path& socket,
                           const std::string& chardev_id = "czvsock");
// cz's vsock device (config::vsock) as a device hook: a cz::vsock::backend on the VM's io_context
// with its sockets in the state directory (vhost-user.sock, and vsock.sock for the host end),
// stopped when QEMU exits. qemu_vm adds it before qemu_options::devices.
CZ_DECL device_hook qemu_vsock_device(vsock_device device);

namespace detail {
struct qemu_state;
}

// Removes the state directories under <root>/vms/ that nobody owns any more: those of a program
// killed (SIGKILL) while its VMs ran. QEMU died with it (PR_SET_PDEATHSIG); its directory did
// not. A running qemu_vm holds an flock on its directory, which the kernel drops when the owner
// dies; a directory gets its name only once locked (it is made as .new-<id>, then renamed). Left
// alone: directories of config::keep_state VMs, and .new-<id> ones younger than `min_age` (being
// made). qemu_vm::start() calls this. Returns how many it removed.
CZ_DECL std::size_t remove_stale_state(const std::filesystem::path& root,
                                       std::chrono::seconds min_age = std::chrono::seconds(60));

class qemu_vm {
public:
    CZ_DECL qemu_vm(asio::io_context& ctx, config cfg, qemu_options qemu = {});
    CZ_DECL ~qemu_vm();
    qemu_vm(qemu_vm&&) noexcept = default;
    qemu_vm& operator=(qemu_vm&&) noexcept = delete;

    // Starts QEMU; completes once QMP is up. Completion: void(std::error_code).
    template <class CompletionToken>
    auto async_start(CompletionToken&& token) {
        return cz::detail::spawn_operation(executor(), start_op(),
                                           std::forward<CompletionToken>(token));
    }
    // Completes when the VM has ended. Completion: void(std::error_code, exit_status).
    template <class CompletionToken>
    auto async_wait(CompletionToken&& token) {
        return cz::detail::spawn_operation(executor(), wait_op(),
                                           std::forward<CompletionToken>(token));
    }
    // Stops the VM (power button, quit, SIGKILL). Completion: void(std::error_code, exit_status).
    template <class CompletionToken>
    auto async_stop(stop_options opts, CompletionToken&& token) {
        return cz::detail::spawn_operation(executor(), stop_op(opts),
                                           std::forward<CompletionToken>(token));
    }

    CZ_DECL void start(std::error_code& ec);
    CZ_DECL void start();
    CZ_DECL exit_status wait(std::error_code& ec);
    CZ_DECL exit_status wait();
    // Waits at most `timeout`; then stops the VM and fails with errc::timed_out (the status
    // says how it was stopped).
    CZ_DECL exit_status wait_for(std::chrono::milliseconds timeout, std::error_code& ec);
    CZ_DECL exit_status stop(stop_options opts, std::error_code& ec);
    CZ_DECL exit_status stop(stop_options opts = {});

    // The QMP client (valid between start and exit).
    CZ_DECL qmp_client& qmp();
    CZ_DECL bool running() const noexcept;
    CZ_DECL pid_t pid() const noexcept;
    CZ_DECL const std::filesystem::path& state_dir() const noexcept;
    CZ_DECL accel_mode accel() const noexcept;
    // Console output so far (the newest config::console_capture_limit bytes).
    CZ_DECL const std::string& console() const noexcept;
    CZ_DECL const vm_timings& timings() const noexcept;
    // The host end of the VM's vsock device: dial(port) connects to a guest listener, listen(port)
    // accepts guest connections to CID 2 port `port`. Valid between start and exit, and only with
    // config::vsock set (otherwise dial and listen fail with no_such_file_or_directory).
    // dial() blocks until the guest answers, and the device is served on the VM's io_context:
    // call it from a thread other than the one running that io_context.
    CZ_DECL ::cz::vsock::host vsock_host() const;
    // The hybrid socket behind vsock_host() (<state dir>/vsock.sock); empty without a device.
    CZ_DECL std::filesystem::path vsock_socket() const;
    // What start() failed with, in QEMU's words (its stderr), a device hook's or validate()'s,
    // when it did.
    CZ_DECL const error_info& error_detail() const noexcept;

private:
    CZ_DECL asio::any_io_executor executor() const;
    CZ_DECL asio::awaitable<std::error_code> start_op();
    CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> wait_op();
    CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> stop_op(stop_options opts);

    std::shared_ptr<detail::qemu_state> s_;
};

static_assert(machine<qemu_vm>);

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/qemu.ipp>
#endif
