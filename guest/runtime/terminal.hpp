// guest/runtime/terminal.hpp — a container process's pseudo-terminal.
//
// The pty is made inside the container, from the /dev/ptmx of its own devpts instance (as runc
// does), so that the slave is a /dev/pts/N the container can see and `tty` names. The process
// becomes its session leader with the slave as controlling terminal on stdin, stdout and stderr;
// the master goes back to the caller over the setup socket (SCM_RIGHTS), and the caller resizes
// the terminal through it.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

#include <sys/types.h>

namespace cz::guest {

// In the container process, after pivot_root and before the user changes: opens the pty, makes
// the slave its controlling terminal and stdio (owned by `uid`), sets the size, and sends the
// master over `report_sock`.
bool setup_terminal(int report_sock, uid_t uid, const std::optional<console_size>& size,
                    error& err);

// Sets the window size of the terminal whose master is `master_fd` (TIOCSWINSZ); the process
// gets SIGWINCH.
bool resize_terminal(int master_fd, console_size size, error& err);

} // namespace cz::guest
