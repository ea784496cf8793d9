// cz/vm/qemu.hpp — the QEMU backend: `qemu-system-x86_64 -M microvm` as a child process.
//
// One qemu_vm is one VM. start() creates its state directory (<root>/vms/<id>/), starts QEMU and
// completes once QMP is up; wait() completes when QEMU has exited, its console is drained and the
// state directory removed; stop() asks the guest to power off (ACPI power button), then QEMU to
// quit (QMP), then kills it (SIGKILL), each after its timeout. The exit_status says why the VM
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
// The vsock device (config::vsock, on by default): a cz::vsock::backend owned by the qemu_vm,
// running on its io_context, started before QEMU (QEMU connects to its vhost-user socket once, at
// startup) and stopped once QEMU has exited. vsock_host() dials and listens on guest ports.
//
// Threading: all operations of one VM run on its io_context's thread; the synchronous functions
// run the io_context themselves and must not be mixed with another thread running it.
#pragma once

#include <cz/vm/accel.hpp>
#include <cz/vm/config.hpp>
#include <cz/vm/detail/async.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/qmp.hpp>
#include <cz/vsock/host.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace cz::vm {

// Why a VM ended.
enum class exit_reason {
    poweroff, // the guest powered off (ACPI S5): the normal end
    reboot,   // the guest rebooted or triple-faulted (-no-reboot turns that into an exit)
    panic,    // the guest kernel panicked
    stopped,  // stop() ended it, or a QMP client sent quit
    killed,   // QEMU was killed or signalled by someone other than stop()
    vmm_error, // QEMU failed (exited with an error, or without a shutdown event)
};

CZ_DECL std::string_view to_string(exit_reason r) noexcept;

struct exit_status {
    exit_reason reason = exit_reason::vmm_error;
    // QEMU's SHUTDOWN reason ("guest-shutdown", "guest-reset", "host-signal"...), if one came.
    std::string shutdown_reason;
    // How the QEMU process ended.
    process_exit process;
    // stop() had to kill QEMU (SIGKILL) because it ignored power-off and quit.
    bool forced = false;
    // For vmm_error and killed: QEMU's last words (its stderr), or what went wrong.
    std::string message;

    // A guest that ended by itself: powered off, or rebooted (the way out of a VM without ACPI,
    // which -no-reboot turns into an exit). Not a panic, although panic=-1 also reboots.
    bool clean() const noexcept { return reason == exit_reason::poweroff || reason == exit_reason::reboot; }
    // One line: "poweroff", "panic", "killed (signal 9)", "vmm_error: qemu-system-x86_64: ...".
    CZ_DECL std::string describe() const;
};

struct stop_options {
    // How long the guest gets to power off after the ACPI power button (0: skip this step).
    std::chrono::milliseconds powerdown{3000};
    // How long QEMU gets to exit after QMP quit, before SIGKILL.
    std::chrono::milliseconds quit{3000};
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

// What the backend needs besides the config to build a command line.
struct qemu_launch {
    std::filesystem::path state_dir;
    int qmp_fd = -1;               // a listening Unix socket QEMU inherits
    accel_mode accel = accel_mode::tcg;
    unsigned long tsc_khz = 0;     // TCG only; 0 = let the guest calibrate
    std::vector<std::string> extra_args; // from device hooks
};

// The kernel command line cz boots with: defaults, then cfg.append.
CZ_DECL std::string qemu_kernel_cmdline(const config& cfg, accel_mode accel, unsigned long tsc_khz);
// The full argv, argv[0] = cfg.vmm_binary.
CZ_DECL std::vector<std::string> qemu_command_line(const config& cfg, const qemu_launch& launch);

namespace detail {
struct qemu_state;
}

// Removes the state directories under <root>/vms/ that nobody owns any more: those of a program
// killed (SIGKILL) while its VMs ran. QEMU died with it (PR_SET_PDEATHSIG); its directory did
// not. A running qemu_vm holds an flock on its directory, which the kernel drops when the owner
// dies. Left alone: directories of config::keep_state VMs, and those younger than `min_age`
// (made but not locked yet). qemu_vm::start() calls this. Returns how many it removed.
CZ_DECL std::size_t remove_stale_state(const std::filesystem::path& root,
                                       std::chrono::seconds min_age = std::chrono::seconds(60));

class qemu_vm {
public:
    CZ_DECL qemu_vm(asio::io_context& ctx, config cfg);
    CZ_DECL ~qemu_vm();
    qemu_vm(qemu_vm&&) noexcept = default;
    qemu_vm& operator=(qemu_vm&&) noexcept = delete;

    // Starts QEMU; completes once QMP is up. Completion: void(std::error_code).
    template <class CompletionToken>
    auto async_start(CompletionToken&& token) {
        return detail::spawn_operation(executor(), start_op(), std::forward<CompletionToken>(token));
    }
    // Completes when the VM has ended. Completion: void(std::error_code, exit_status).
    template <class CompletionToken>
    auto async_wait(CompletionToken&& token) {
        return detail::spawn_operation(executor(), wait_op(), std::forward<CompletionToken>(token));
    }
    // Stops the VM (power button, quit, SIGKILL). Completion: void(std::error_code, exit_status).
    template <class CompletionToken>
    auto async_stop(stop_options opts, CompletionToken&& token) {
        return detail::spawn_operation(executor(), stop_op(opts), std::forward<CompletionToken>(token));
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
    // What start() failed with, in QEMU's words (its stderr), when it did.
    CZ_DECL const std::string& vmm_message() const noexcept;

private:
    CZ_DECL asio::any_io_executor executor() const;
    CZ_DECL asio::awaitable<std::error_code> start_op();
    CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> wait_op();
    CZ_DECL asio::awaitable<std::pair<std::error_code, exit_status>> stop_op(stop_options opts);

    std::shared_ptr<detail::qemu_state> s_;
};

// The QEMU backend as a cz::vm::backend (cz/vm/backend.hpp).
struct qemu_backend {
    using machine_type = qemu_vm;
    static constexpr std::string_view name() noexcept { return "qemu"; }
    machine_type create(asio::io_context& ctx, config cfg) const { return qemu_vm(ctx, std::move(cfg)); }
};

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/qemu.ipp>
#endif
