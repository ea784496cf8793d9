// guest/runtime/container.hpp — start a container from a runtime spec, and exec into it.
//
// This is the runtime half of cz-init: the agent hands it a parsed config.json and the file
// descriptors the process should use, and gets back pids, pidfds and pty masters to wait on,
// signal, pump and resize. Everything here needs root (cz-init is root in its own VM).
//
// spawn() makes the container's first process with clone3 in new namespaces (pid, mount, uts,
// ipc, cgroup; network and time when the spec lists them), born into its own cgroup when the
// caller gives a cgroup root; the child builds the filesystem view (mounts.hpp), sets the
// hostname, and finishes like every container process (process.hpp). exec() enters a running
// container's namespaces through its pidfd (setns, Linux 5.8) and cgroup, then does the same
// finishing steps. Both report setup and exec failures with the child's errno and a message
// through a close-on-exec socket, and return only once the new program runs or has failed.
//
// The child of clone3 continues from a copy of the caller's memory with only the calling
// thread: call these from cz-init's single agent thread (or from a program whose other threads
// do not hold the allocator's locks at that moment), as with any fork-and-do-work design.
//
// @par Example
//     auto spec = cz::guest::parse_spec(config_json);
//     cz::guest::container c = cz::guest::spawn(spec, {in, out, err}, {"/sys/fs/cgroup/cz", id});
//     int status = cz::guest::wait(c.init);     // 128+n when killed by signal n
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

#include <cz/core/unique_fd.hpp>

#include <string>
#include <sys/types.h>

namespace cz::guest {

// Which of the caller's fds become the process's stdin, stdout and stderr (not used when the
// process has a terminal). The caller keeps its fds; the process gets copies.
struct stdio_fds {
    int in = 0;
    int out = 1;
    int err = 2;
};

struct spawn_options {
    // A cgroup v2 directory under which the container gets its own (`<cgroup_root>/<id>`);
    // empty for none (then the spec must not ask for linux.resources limits).
    std::string cgroup_root;
    // The container's name: its cgroup directory's name.
    std::string id;
};

// A running process of a container.
struct process_handle {
    pid_t pid = -1;     // in cz-init's pid namespace
    unique_fd pidfd;    // for poll(2), waitid(P_PIDFD), pidfd_send_signal
    unique_fd terminal; // the pty master when the process has a terminal
};

struct container {
    process_handle init;
    int namespace_flags = 0; // CLONE_NEW* of the namespaces it has
    std::string cgroup_path; // empty without a cgroup
    unique_fd cgroup_dir;
};

container spawn(const runtime_spec& spec, const stdio_fds& stdio, const spawn_options& options,
                error& err);
container spawn(const runtime_spec& spec, const stdio_fds& stdio, const spawn_options& options);

// Runs `process` in the running container `c`, with the container's seccomp filter (runc does
// the same when the exec'd process has none of its own).
process_handle exec(const container& c, const process_spec& process,
                    const std::optional<seccomp_spec>& seccomp, const stdio_fds& stdio, error& err);
process_handle exec(const container& c, const process_spec& process,
                    const std::optional<seccomp_spec>& seccomp, const stdio_fds& stdio);

// Waits for the process to exit and returns its exit status: the exit code, or 128+n when
// signal n killed it (as shells and docker report it). -1 with `err` set when waiting fails.
int wait(process_handle& p, error& err);
int wait(process_handle& p);

// The status a waitpid() status stands for, by the same rule.
int exit_status(int wait_status);

// Removes the container's cgroup once every process in it is gone.
bool destroy(container& c, error& err);

} // namespace cz::guest
