#include "runtime/shim.hpp"

#include "runtime/syscalls.hpp"

#include <cerrno>
#include <csignal>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cz::guest {

void run_shim(pid_t program) {
    ::syscall(SYS_close_range, 0u, ~0u, 0u);
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t info{};
        int sig = ::sigwaitinfo(&all, &info);
        if (sig < 0) continue; // EINTR
        if (sig != SIGCHLD) {
            // Everything else is for the program (SIGTERM from a stop, SIGWINCH, ...).
            ::kill(program, sig);
            continue;
        }
        // Reap everything that has exited: the program and any orphan reparented here.
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != program) continue;
            if (WIFSIGNALED(status)) ::_exit(128 + WTERMSIG(status));
            ::_exit(WEXITSTATUS(status));
        }
        if (pid < 0 && errno == ECHILD) ::_exit(255); // cannot happen: the program is our child
    }
}

} // namespace cz::guest
