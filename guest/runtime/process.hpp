// guest/runtime/process.hpp — the last steps of every container process, then execve.
//
// Shared by a container's first process and by processes exec'd into it, once they are inside
// the container's root filesystem. In runc's order:
//   umask 022, rlimits (raising a hard limit needs CAP_SYS_RESOURCE, so before the user changes);
//   the user from the container's /etc/passwd and /etc/group (user.hpp); the terminal (its slave
//   is chowned to that user); cwd created if missing; the bounding set; the seccomp filter when
//   noNewPrivileges is false (loading one then needs CAP_SYS_ADMIN); setgroups, setgid, setuid;
//   the other capability sets; chdir; no_new_privs and the seccomp filter when it is true; the
//   environment (HOME from passwd unless set); execve, looking the program up in the spec's PATH.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

namespace cz::guest {

// Never returns on success. On failure fills `err`; an exec failure keeps execve's errno
// (ENOENT: not found; EACCES, ENOEXEC, ...: found but not executable).
void finish_and_exec(const process_spec& process, const std::optional<seccomp_spec>& seccomp,
                     int report_sock, error& err);

// The exit status a shell gives a command that could not be executed: 127 when it was not
// found, 126 when it was found but could not run; -1 when `err` is not an exec failure (the
// container's setup failed before execve).
int exec_failure_status(const error& err);

} // namespace cz::guest
