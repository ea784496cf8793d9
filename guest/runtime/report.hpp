// guest/runtime/report.hpp — what a container's setup process tells the process that made it.
//
// The two ends of a SOCK_SEQPACKET socketpair, both close-on-exec: the child sends at most a few
// messages (a terminal's master fd, the pid and pidfd of an exec'd process, or one error), and
// the parent reads until end of file. End of file without an error means the child's execve
// succeeded: the kernel closed the child's end when it replaced the program. That is how an
// exec failure ("not found" vs "not executable", as docker tells 127 from 126) reaches the
// caller with its errno instead of as an exit status to guess from.
#pragma once

#include "runtime/error.hpp"

#include <cz/core/unique_fd.hpp>

#include <cstdint>
#include <sys/types.h>

namespace cz::guest::report {

enum class kind : std::uint32_t {
    failure = 1, // an error: its code and message
    terminal,    // carries the pty master (SCM_RIGHTS)
    process,     // carries an exec'd process's pid and its pidfd (SCM_RIGHTS)
};

// Creates the socketpair: [0] for the parent, [1] for the child.
bool channel(unique_fd (&ends)[2], error& err);

// Child side. Each returns false when the parent is gone; there is nothing more to do then.
bool send_failure(int sock, const error& e);
bool send_fd(int sock, kind k, int fd, pid_t pid = 0);

// Parent side: one message; false at end of file. `fd` receives a passed descriptor.
struct message {
    kind type = kind::failure;
    error failure;
    pid_t pid = 0;
    unique_fd fd;
};
bool receive(int sock, message& m, error& err);

} // namespace cz::guest::report
