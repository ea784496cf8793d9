// cz/vm/run.hpp — running a machine to its end, written once against cz::vm::machine
// (cz/vm/machine.hpp): `cz vm boot` runs a qemu_vm with it, the tests a fake machine.
//
// Example: boot, give the guest a minute, say how it ended.
//
//   asio::io_context ctx;
//   cz::vm::qemu_vm vm(ctx, cfg);
//   std::error_code ec;
//   auto r = cz::vm::run_machine(vm, {.timeout = std::chrono::minutes(1)}, ec);
//   if (ec && !r.started) fmt::print("cannot start: {}: {}\n", ec.message(), r.status.message);
//   else if (!r.status.clean()) fmt::print("{}\n{}", r.status.describe(), r.console_tail);
//
// The machine's synchronous functions do the waiting (qemu_vm's run its io_context, so handlers
// the caller put there, such as a signal_set that stops the VM on Ctrl-C, run meanwhile).
#pragma once

#include <cz/vm/machine.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace cz::vm {

struct run_options {
    // How long the VM may run before it is stopped (the machine's wait_for); zero: no limit.
    std::chrono::milliseconds timeout{0};
    // How many of the console's last lines the result keeps.
    std::size_t console_lines = 20;
};

struct run_result {
    // start() succeeded; when it did not, ec says why and status is vmm_error with the VMM's
    // message.
    bool started = false;
    // How the VM ended.
    exit_status status;
    // The timeout passed and the VM was stopped (status says how).
    bool timed_out = false;
    // The console's last run_options::console_lines lines.
    std::string console_tail;
};

// The last `lines` lines of `console`; a last line without a newline counts as one.
CZ_DECL std::string console_tail(std::string_view console, std::size_t lines);

// Starts `m`, waits until the VM ends (at most opts.timeout, then stops it) and reports how it
// ended. ec: what start or wait failed with; a timeout is no error but run_result::timed_out.
template <machine Machine>
run_result run_machine(Machine& m, const run_options& opts, std::error_code& ec) {
    run_result r;
    ec.clear();
    m.start(ec);
    r.started = !ec;
    if (!r.started) {
        r.status.reason = exit_reason::vmm_error;
        r.status.message = to_string(m.error_detail());
    } else if (opts.timeout.count() > 0) {
        r.status = m.wait_for(opts.timeout, ec);
        if (ec == errc::timed_out) {
            r.timed_out = true;
            ec.clear();
        }
    } else {
        r.status = m.wait(ec);
    }
    r.console_tail = console_tail(m.console(), opts.console_lines);
    return r;
}

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/run.ipp>
#endif
