// cz/vm/backend.hpp — what a VMM backend provides, so that cloud-hypervisor, Firecracker or an
// in-process KVM VMM can sit behind the same callers as QEMU.
//
// A backend makes machines from a cz::vm::config:
//
// | expression               | type                        | meaning                              |
// |--------------------------|-----------------------------|--------------------------------------|
// | `B::machine_type`        | a `machine`                 | one VM                               |
// | `B::name()`              | convertible to string_view  | "qemu", "firecracker", ...           |
// | `b.create(ctx, cfg)`     | `B::machine_type`           | a VM, not started; no side effects   |
//
// A machine is one VM's lifecycle (m: machine, ec: std::error_code&, o: stop_options):
//
// | expression               | type              | meaning                                       |
// |--------------------------|-------------------|-----------------------------------------------|
// | `m.start(ec)`            | void              | boots; returns once the VMM is controllable   |
// | `m.wait(ec)`             | exit_status       | blocks until the VM ended; state dir removed  |
// | `m.wait_for(d, ec)`      | exit_status       | as wait, at most d; then stops, timed_out     |
// | `m.stop(o, ec)`          | exit_status       | power button, quit, kill (each after timeout) |
// | `m.async_wait(h)`        | per token         | void(error_code, exit_status)                 |
// | `m.async_stop(o, h)`     | per token         | void(error_code, exit_status)                 |
// | `m.running()`            | bool              | started and not yet ended                     |
// | `m.state_dir()`          | const path&       | <root>/vms/<id>/ while it runs                |
// | `m.console()`            | const string&     | console output so far                         |
//
// Destroying a machine kills and reaps a VM still running and removes its state directory.
#pragma once

#include <cz/vm/config.hpp>
#include <cz/vm/qemu.hpp>

#include <asio/io_context.hpp>

#include <concepts>
#include <string_view>

namespace cz::vm {

template <class M>
concept machine = std::move_constructible<M> &&
    requires(M& m, std::error_code& ec, stop_options o, std::chrono::milliseconds d) {
        { m.start(ec) } -> std::same_as<void>;
        { m.wait(ec) } -> std::same_as<exit_status>;
        { m.wait_for(d, ec) } -> std::same_as<exit_status>;
        { m.stop(o, ec) } -> std::same_as<exit_status>;
        m.async_wait([](std::error_code, exit_status) {});
        m.async_stop(o, [](std::error_code, exit_status) {});
        { m.running() } -> std::same_as<bool>;
        { m.state_dir() } -> std::convertible_to<const std::filesystem::path&>;
        { m.console() } -> std::convertible_to<const std::string&>;
    };

template <class B>
concept backend = machine<typename B::machine_type> &&
    requires(const B& b, asio::io_context& ctx, config cfg) {
        { B::name() } -> std::convertible_to<std::string_view>;
        { b.create(ctx, std::move(cfg)) } -> std::same_as<typename B::machine_type>;
    };

static_assert(machine<qemu_vm>);
static_assert(backend<qemu_backend>);

} // namespace cz::vm
