// cz/vm/process.hpp — starting and reaping a child process (the VMM).
//
// The child:
//   - gets PR_SET_PDEATHSIG(SIGKILL), so it dies when the thread that spawned it exits — also
//     when the caller is killed with SIGKILL and runs no destructors. (The signal follows the
//     *thread*: spawn from a thread that outlives the child, as the io_context thread does.)
//   - inherits only fds 0-2 and the fds named in spawn_options::keep_fds: every other fd is
//     marked close-on-exec in the child (close_range), also fds the caller inherited from its own
//     parent without O_CLOEXEC;
//   - starts with default signal dispositions and an empty signal mask;
//   - with spawn_options::read_only_dirs, runs in a mount namespace of its own.
// The parent gets a pidfd (pidfd_open, Linux 5.3+), readable when the child exits, which Asio can
// wait on; reaping uses waitid on the pid. A child_process that is destroyed while its child
// runs kills it with SIGKILL and reaps it: no zombie outlives its owner.
#pragma once

#include <cz/core/unique_fd.hpp>
#include <cz/vm/error.hpp>

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace cz::vm {

struct spawn_options {
    // argv[0] is looked up in PATH when it has no slash.
    std::vector<std::string> argv;
    // Where the child's stdin/stdout/stderr go; -1 means /dev/null.
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    // Further fds the child inherits under the same numbers (must be > 2).
    std::vector<int> keep_fds;
    // When not empty, the child runs in a mount namespace of its own (needs CAP_SYS_ADMIN) in
    // which each of these directories is a read-only bind mount of itself: what it serves from
    // them it cannot change, whatever it is asked (virtiofsd for a read-only shared directory).
    std::vector<std::string> read_only_dirs;
};

// How a child ended.
struct process_exit {
    bool signaled = false;
    int code = 0; // exit status, or the signal number when `signaled`
};

class child_process {
public:
    child_process() noexcept = default;
    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&& other) noexcept;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    // Kills (SIGKILL) and reaps a child still running.
    CZ_DECL ~child_process();

    // Starts a child. errc::vmm_not_found when the program cannot be executed (the exec error
    // travels back through a close-on-exec pipe, so a failed exec is reported here, not later).
    CZ_DECL static child_process spawn(const spawn_options& opts, std::error_code& ec);

    pid_t pid() const noexcept { return pid_; }
    // Readable once the child has exited (not yet reaped).
    int pidfd() const noexcept { return pidfd_.get(); }
    bool running() const noexcept { return pid_ > 0 && !exit_; }
    const std::optional<process_exit>& exit_status() const noexcept { return exit_; }

    // Sends a signal unless the child has been reaped (never signals a recycled pid).
    CZ_DECL void kill(int signal, std::error_code& ec) noexcept;
    // Reaps the child if it has exited; returns whether it has.
    CZ_DECL bool try_reap(std::error_code& ec) noexcept;
    // Blocks until the child exits, and reaps it.
    CZ_DECL process_exit wait(std::error_code& ec) noexcept;

private:
    CZ_DECL void reset() noexcept;
    pid_t pid_ = -1;
    unique_fd pidfd_;
    std::optional<process_exit> exit_;
};

// Finds a program in PATH ("" when absent); a name with a slash is returned as is.
CZ_DECL std::string find_program(const std::string& name);

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/process.ipp>
#endif
