// cz/container/supervisor.hpp — detached containers (`cz run -d`): a supervisor process of cz's
// own per container (no daemon, like podman's conmon) holds the VM and the agent connection
// (cz::container::run with the hooks of run_options), keeps the container's output in its log
// (cz/container/log.hpp), its state in state.json (cz/container/state.hpp), and answers the
// control socket (cz/container/control.hpp): exec, kill, stop. It exits once the container's exit
// is recorded. QEMU dies with it when it is killed (PR_SET_PDEATHSIG), and the state then says
// so the next time anyone looks.
//
// The client side is here too, as plain blocking functions: what the cz CLI calls, and what any
// program can call instead.
//
// Example:
//   cz::container::detached_options o;
//   o.run.root = root;
//   o.run.image = "busybox";
//   o.run.spec.args = {"sh", "-c", "while true; do date; sleep 1; done"};
//   o.name = "clock";
//   std::error_code ec;
//   std::string why;
//   int code = 0;
//   auto id = cz::container::start_detached(o, ec, &why, &code); // returns once it runs
//   ...
//   cz::container::stop_container(root, "clock", std::chrono::seconds(10), ec, &why);
#pragma once

#include <cz/container/control.hpp>
#include <cz/container/log.hpp>
#include <cz/container/run.hpp>
#include <cz/container/state.hpp>

#include <chrono>
#include <string>
#include <system_error>

namespace cz::container {

struct detached_options {
    // The run: root, image, spec, VM. Its stdio fields, on_output, on_started and
    // forward_signals are the supervisor's own (ignored here); run.name is set to the id's
    // first 12 digits (the container's hostname unless spec.hostname says otherwise).
    run_options run;
    // The container's name (unique under the root): "" the id's first 12 digits.
    std::string name;
    // Remove the container's directory once it has exited (docker's --rm).
    bool auto_remove = false;
    // Keep the container's stdin open (docker's -d -i): a pipe no one writes to, so that a shell
    // waits for input instead of ending at once.
    bool open_stdin = false;
    log_options log;
};

// Starts the container under a supervisor of its own and returns its id once the container's
// process has started. On failure: ec and `*detail` say why, `*exit_code` what `docker run -d`
// would exit with (125 cz failed, 126 cannot execute, 127 not found); a container that got as
// far as its directory stays, exited, as docker's does.
//
// The supervisor is forked from the calling process (twice, into a session of its own, stdio on
// /dev/null, every other descriptor closed): call this from a process that has no other threads.
CZ_DECL std::string start_detached(const detached_options& o, std::error_code& ec,
                                   std::string* detail = nullptr, int* exit_code = nullptr);

// A signal by name ("TERM", "SIGKILL", as docker's StopSignal and kill -s take them) or number
// (1-64); 0 for neither.
CZ_DECL int parse_signal(std::string_view name) noexcept;

// The docker exit code for a run's error: 126, 127, else 125.
CZ_DECL int exit_code_for(std::error_code ec) noexcept;

// --- the client side (blocking) -----------------------------------------------------------------

// Sends `sig` to the container's process. errc::not_running for one that has exited.
CZ_DECL void kill_container(const std::filesystem::path& root, std::string_view ref, int sig,
                            std::error_code& ec, std::string* detail = nullptr);

// Stops the container (its StopSignal, SIGKILL after `timeout`, the VM's power 10 s after that)
// and waits until its exit is recorded. A container that has exited already: nothing to do.
CZ_DECL container_state stop_container(const std::filesystem::path& root, std::string_view ref,
                                       std::chrono::seconds timeout, std::error_code& ec,
                                       std::string* detail = nullptr);

// Waits until the container has exited and returns its state.
CZ_DECL container_state wait_container(const std::filesystem::path& root, std::string_view ref,
                                       std::error_code& ec, std::string* detail = nullptr);

// Runs a command in the running container: stdin from `stdin_fd` (-1: none), its output to
// `stdout_fd` and `stderr_fd`. With r.terminal and a terminal on stdin_fd, that terminal is raw
// while it runs and its size follows SIGWINCH. Returns the exit code as docker exec's (the
// command's; 126, 127 when it cannot run); ec for what went wrong on cz's side.
CZ_DECL int exec_in_container(const std::filesystem::path& root, std::string_view ref,
                              const exec_request& r, int stdin_fd, int stdout_fd, int stderr_fd,
                              std::error_code& ec, std::string* detail = nullptr);

// The container's figures now (cgroup v2 in the guest, the VM's network counters).
CZ_DECL container_stats stats_container(const std::filesystem::path& root, std::string_view ref,
                                        std::error_code& ec, std::string* detail = nullptr);

// Removes the container; with `force`, one that runs is killed (SIGKILL) first.
CZ_DECL void rm_container(const std::filesystem::path& root, std::string_view ref, bool force,
                          std::error_code& ec, std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/supervisor.ipp>
#endif
