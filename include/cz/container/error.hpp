// cz/container/error.hpp — the errors of cz/container: what is wrong with a run's request, and
// what went wrong between the image and the container's exit.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/error.hpp>

#include <system_error>

namespace cz::container {

enum class errc {
    // Neither the caller nor the image says what to run (no Entrypoint, no Cmd, no arguments).
    no_command = 1,
    // An option has a value cz cannot use (an environment entry without a name, a hostname with a
    // slash, a memory limit below what a container needs); the detail names it.
    bad_option,
    // No cz-init program was found (--init, $CZ_INIT, or next to the cz program).
    init_not_found,
    // The guest agent did not answer within its time (the VM hung or cz-init failed early; the
    // console tail says which).
    agent_timeout,
    // The VM ended before the container's process did.
    vm_ended,
    // The container's command does not exist in the image (docker's exit code 127).
    command_not_found,
    // The container's command exists but cannot be executed (docker's exit code 126).
    command_not_executable,
    // The guest refused to create or start the process (a bad spec, a failed mount); the detail
    // has the guest's words.
    start_failed,
    // The run was interrupted (SIGINT, SIGTERM) before the container's process started.
    interrupted,
    // No container has this id, id prefix or name (detached containers, cz/container/state.hpp).
    no_such_container,
    // An id prefix that more than one container's id starts with.
    ambiguous_container,
    // Another container already has this name.
    name_in_use,
    // The container is not running (exec, kill, stop of one that has exited).
    not_running,
    // The container is running (rm without force).
    still_running,
    // A container's state or log file does not parse; the detail names the file and where.
    bad_state,
    // The supervisor's control socket sent bytes that break the control protocol
    // (cz/container/control.hpp); the detail says how.
    bad_frame,
    // A copy (cz cp) cannot be done as asked: a path that is not there, a directory onto a
    // file, a destination directory that does not exist; the detail names the path.
    copy_failed,
};

// The category of cz::container::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& container_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), container_category()};
}

} // namespace cz::container

template <>
struct std::is_error_code_enum<cz::container::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/container/impl/error.ipp>
#endif
