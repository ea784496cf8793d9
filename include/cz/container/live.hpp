// cz/container/live.hpp — a container while cz::container::run() runs it: what run_options'
// on_started callback is given, so that a caller (the supervisor of a detached container,
// cz/container/supervisor.hpp) can start more processes in it, signal it or end its VM.
//
// Everything here belongs to the run and lives until run() returns; use it on the run's thread
// only (post to `io` from elsewhere).
#pragma once

#include <cz/agent/client.hpp>
#include <cz/vm/qemu.hpp>

#include <asio/io_context.hpp>

#include <memory>
#include <string>

namespace cz::container {

struct live_container {
    // The run's event loop: the agent connection and the VM are driven by it.
    asio::io_context& io;
    // The connection to cz-init; the run uses stream ids 1-3.
    agent::client& agent;
    vm::qemu_vm& vm;
    // The container's id in the guest (also its first process's id).
    std::string id;
    // Its OCI runtime spec (config.json), whose "process" an exec starts from.
    std::string spec_json;
    // The image's StopSignal ("" when it sets none: SIGTERM).
    std::string stop_signal;
    // What the on_started callback keeps alive with the run (a control socket's server): the run
    // destroys it before its io_context.
    std::shared_ptr<void> attachment;
};

} // namespace cz::container
