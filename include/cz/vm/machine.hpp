// cz/vm/machine.hpp — what one VM is to the code that runs it, whatever VMM runs it: the
// cz::vm::machine concept and the words it is spoken in (exit_status, stop_options).
//
// cz's own machine is cz::vm::qemu_vm (cz/vm/qemu.hpp); a cloud-hypervisor, Firecracker or
// in-process KVM machine would sit beside it, and tests use a fake (tests/vm/fake_machine.hpp).
// Code that only starts, waits for and stops VMs is written against the concept, e.g.
// cz::vm::run_machine (cz/vm/run.hpp), and works with any of them. What a VM is made of is the
// common cz::vm::config (cz/vm/config.hpp); how a VMM runs it is that VMM's own options.
//
// A machine (m: M, cm: const M, ec: std::error_code&, o: stop_options, d: milliseconds):
//
// | expression           | type              | meaning                                         |
// |----------------------|-------------------|-------------------------------------------------|
// | `m.start(ec)`        | void              | boots; returns once the VMM is controllable     |
// | `m.wait(ec)`         | exit_status       | blocks until the VM ended; state dir removed    |
// | `m.wait_for(d, ec)`  | exit_status       | as wait, at most d; then stops it: timed_out    |
// | `m.stop(o, ec)`      | exit_status       | power button, quit, kill (each after a timeout) |
// | `m.async_wait(h)`    | per token         | as wait: void(error_code, exit_status)          |
// | `m.async_stop(o, h)` | per token         | as stop: void(error_code, exit_status)          |
// | `cm.running()`       | bool              | started and not yet ended                       |
// | `cm.state_dir()`     | const path&       | <root>/vms/<id>/ while it runs                  |
// | `cm.console()`       | const string&     | console output so far                           |
// | `cm.error_detail()`  | const error_info& | why start() failed, in the VMM's words          |
//
// Errors: wait, wait_for and stop on a machine never started fail with errc::not_running; start
// on one already started with errc::already_started; wait_for past its limit with
// errc::timed_out (the exit_status then says how the VM was stopped). A machine is movable, not
// copyable; destroying one kills a VM still running and removes its state directory.
#pragma once

#include <cz/vm/error.hpp>
#include <cz/vm/process.hpp>

#include <chrono>
#include <concepts>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace cz::vm {

// Why a VM ended.
enum class exit_reason {
    poweroff,  // the guest powered off (ACPI S5): the normal end
    reboot,    // the guest rebooted or triple-faulted (cz turns that into an exit)
    panic,     // the guest kernel panicked
    stopped,   // stop() ended it, or a client of the VMM's control socket did
    killed,    // the VMM was killed or signalled by someone other than stop()
    vmm_error, // the VMM failed (exited with an error, or without saying why the guest ended)
};

CZ_DECL std::string_view to_string(exit_reason r) noexcept;

struct exit_status {
    exit_reason reason = exit_reason::vmm_error;
    // The VMM's own word for the shutdown (QEMU's SHUTDOWN reason: "guest-shutdown",
    // "guest-reset", "host-signal"...), if it said one.
    std::string shutdown_reason;
    // How the VMM process ended (a VMM that is no process of its own leaves it zero).
    process_exit process;
    // stop() had to kill the VMM (SIGKILL) because it ignored power-off and quit.
    bool forced = false;
    // For vmm_error and killed: the VMM's last words (its stderr), or what went wrong.
    std::string message;

    // A guest that ended by itself: powered off, or rebooted (the way out of a VM without ACPI,
    // which cz turns into an exit). Not a panic, although panic=-1 also reboots.
    bool clean() const noexcept {
        return reason == exit_reason::poweroff || reason == exit_reason::reboot;
    }
    // One line: "poweroff", "panic", "killed (signal 9)", "vmm_error: qemu-system-x86_64: ...".
    CZ_DECL std::string describe() const;
};

struct stop_options {
    // How long the guest gets to power off after the ACPI power button (0: skip this step).
    std::chrono::milliseconds powerdown{3000};
    // How long the VMM gets to exit after it is told to quit, before SIGKILL.
    std::chrono::milliseconds quit{3000};
};

template <class M>
concept machine =
    std::move_constructible<M> && !std::copy_constructible<M> &&
    requires(M& m, const M& cm, std::error_code& ec, stop_options o, std::chrono::milliseconds d) {
        { m.start(ec) } -> std::same_as<void>;
        { m.wait(ec) } -> std::same_as<exit_status>;
        { m.wait_for(d, ec) } -> std::same_as<exit_status>;
        { m.stop(o, ec) } -> std::same_as<exit_status>;
        m.async_wait([](std::error_code, exit_status) {});
        m.async_stop(o, [](std::error_code, exit_status) {});
        { cm.running() } -> std::same_as<bool>;
        { cm.state_dir() } -> std::convertible_to<const std::filesystem::path&>;
        { cm.console() } -> std::convertible_to<const std::string&>;
        { cm.error_detail() } -> std::convertible_to<const cz::error_info&>;
    };

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/machine.ipp>
#endif
