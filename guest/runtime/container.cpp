#include "runtime/container.hpp"

#include "runtime/cgroup.hpp"
#include "runtime/mounts.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/process.hpp"
#include "runtime/report.hpp"
#include "runtime/shim.hpp"
#include "runtime/syscalls.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cz::guest {

namespace {

std::error_code last_errno() {
    return {errno, std::system_category()};
}

// A new program must not inherit cz-init's signal handling: exec keeps ignored signals ignored
// (a container whose SIGPIPE is ignored would misbehave) and keeps the blocked mask.
void reset_signals() {
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Puts the caller's fds on 0, 1 and 2. Copies go above 2 first, so that an fd that is itself
// 0, 1 or 2 is not overwritten before it is used.
bool install_stdio(const stdio_fds& stdio, error& err) {
    int src[3] = {stdio.in, stdio.out, stdio.err};
    int high[3];
    for (int i = 0; i < 3; ++i) {
        high[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        if (high[i] < 0) {
            err.set(last_errno(), "stdio: fd " + std::to_string(src[i]));
            return false;
        }
    }
    for (int i = 0; i < 3; ++i) {
        if (::dup2(high[i], i) < 0) {
            err.set(last_errno(), "stdio: dup2");
            return false;
        }
        ::close(high[i]);
    }
    return true;
}

[[noreturn]] void child_exit(int sock, const error& err) {
    report::send_failure(sock, err);
    // The status matters only to someone who waits without reading the report.
    ::_exit(err.exec_failed ? exec_failure_status(err) : 1);
}

[[noreturn]] void container_child(const runtime_spec& spec, const stdio_fds& stdio, int sock) {
    error err;
    reset_signals();
    // The first process leads a new session, so that a terminal can become its controlling tty
    // and signals for cz-init's own session never reach it.
    ::setsid();
    if (!spec.has_namespace(namespace_kind::pid) && !spec.process.terminal &&
        !install_stdio(stdio, err))
        child_exit(sock, err);
    if (!prepare_rootfs(spec, err)) child_exit(sock, err);
    if (!pivot_into(spec.root.path, err)) child_exit(sock, err);
    if (!protect_paths(spec, err)) child_exit(sock, err);
    if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
        err.set(last_errno(), "sethostname " + spec.hostname);
        child_exit(sock, err);
    }
    if (!spec.has_namespace(namespace_kind::pid)) {
        finish_and_exec(spec.process, spec.seccomp, sock, err);
        child_exit(sock, err);
    }
    // In a pid namespace of its own, this process stays as the shim (pid 1) and the program
    // is its child. Signals stay blocked in the shim from here on; the program resets them.
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, nullptr);
    // Named before the fork, so that `ps` in the container never shows pid 1 under cz-init's
    // own name, not even in the moment before the shim runs (the program's exec renames it).
    ::prctl(PR_SET_NAME, "cz-init-shim", 0, 0, 0);
    pid_t program = ::fork();
    if (program < 0) {
        err.set(last_errno(), "fork the container's program");
        child_exit(sock, err);
    }
    if (program == 0) {
        reset_signals();
        if (!spec.process.terminal && !install_stdio(stdio, err)) child_exit(sock, err);
        finish_and_exec(spec.process, spec.seccomp, sock, err);
        child_exit(sock, err);
    }
    run_shim(program);
}

[[noreturn]] void exec_child(const process_spec& process,
                             const std::optional<seccomp_spec>& seccomp, const stdio_fds& stdio,
                             int sock) {
    error err;
    reset_signals();
    ::setsid();
    if (!process.terminal && !install_stdio(stdio, err)) child_exit(sock, err);
    finish_and_exec(process, seccomp, sock, err);
    child_exit(sock, err);
}

// Reads the setup reports until the child's end closes (exec succeeded or it exited).
void collect(int sock, process_handle& h, error& err) {
    report::message m;
    error read_err;
    while (report::receive(sock, m, read_err)) {
        switch (m.type) {
        case report::kind::failure:
            if (!err) err = m.failure;
            break;
        case report::kind::terminal:
            h.terminal = std::move(m.fd);
            break;
        case report::kind::process:
            h.pid = m.pid;
            h.pidfd = std::move(m.fd);
            break;
        }
    }
    if (read_err && !err) err = read_err;
}

// Ends a child whose setup failed: it has normally exited already (a failing child reports and
// exits), but one that broke the report protocol may still run, and waiting must not hang.
void reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

} // namespace

container spawn(const runtime_spec& spec, const stdio_fds& stdio, const spawn_options& options,
                error& err) {
    err.clear();
    container c;
    c.namespace_flags = clone_flags(spec.namespaces);
    cgroup cg;
    if (options.cgroup_root.empty()) {
        if (!spec.resources.empty()) {
            err.set(errc::cgroup_unavailable, "linux.resources: limits need a cgroup root");
            return {};
        }
    } else if (!create_cgroup(options.cgroup_root, options.id, spec.resources, cg, err)) {
        return {};
    }
    unique_fd ends[2];
    if (!report::channel(ends, err)) {
        if (!cg.path.empty()) remove_cgroup(cg.path, err);
        return {};
    }
    std::uint64_t flags = static_cast<std::uint64_t>(c.namespace_flags) | CLONE_PIDFD;
    if (cg.dir) flags |= CLONE_INTO_CGROUP;
    int pidfd = -1;
    pid_t pid = sys::clone3(flags, &pidfd, cg.dir.get());
    if (pid < 0) {
        err.set(last_errno(), "clone3 the container's first process");
        error ignored;
        if (!cg.path.empty()) remove_cgroup(cg.path, ignored);
        return {};
    }
    if (pid == 0) {
        ends[0].reset();
        container_child(spec, stdio, ends[1].get());
    }
    ends[1].reset();
    c.init.pid = pid;
    c.init.pidfd.reset(pidfd);
    c.cgroup_path = cg.path;
    c.cgroup_dir = std::move(cg.dir);
    collect(ends[0].get(), c.init, err);
    if (err) {
        reap(pid);
        error ignored;
        if (!c.cgroup_path.empty()) remove_cgroup(c.cgroup_path, ignored);
        return {};
    }
    return c;
}

container spawn(const runtime_spec& spec, const stdio_fds& stdio, const spawn_options& options) {
    error err;
    auto c = spawn(spec, stdio, options, err);
    throw_if(err);
    return c;
}

process_handle exec(const container& c, const process_spec& process,
                    const std::optional<seccomp_spec>& seccomp, const stdio_fds& stdio,
                    error& err) {
    err.clear();
    unique_fd ends[2];
    if (!report::channel(ends, err)) return {};
    // setns into a pid namespace only moves the caller's future children, so an intermediate
    // process enters the namespaces and clones the real one; CLONE_PARENT makes cz-init its
    // parent, so that cz-init can wait for it like any other.
    pid_t mid = sys::clone3(0, nullptr, -1);
    if (mid < 0) {
        err.set(last_errno(), "clone3 for exec");
        return {};
    }
    if (mid == 0) {
        ends[0].reset();
        int sock = ends[1].get();
        error e;
        if (sys::setns(c.init.pidfd.get(), c.namespace_flags) != 0) {
            e.set(last_errno(), "setns into the container of pid " + std::to_string(c.init.pid));
            report::send_failure(sock, e);
            ::_exit(1);
        }
        std::uint64_t flags = CLONE_PARENT | CLONE_PIDFD;
        if (c.cgroup_dir) flags |= CLONE_INTO_CGROUP;
        int pidfd = -1;
        pid_t child = sys::clone3(flags, &pidfd, c.cgroup_dir.get());
        if (child < 0) {
            e.set(last_errno(), "clone3 the exec'd process");
            report::send_failure(sock, e);
            ::_exit(1);
        }
        if (child == 0) exec_child(process, seccomp, stdio, sock);
        report::send_fd(sock, report::kind::process, pidfd, child);
        ::_exit(0);
    }
    ends[1].reset();
    process_handle h;
    collect(ends[0].get(), h, err);
    reap(mid);
    if (!err && h.pid <= 0)
        err.set(errc::setup_failed, "exec: the intermediate process reported no pid");
    if (err) {
        if (h.pid > 0) reap(h.pid);
        return {};
    }
    return h;
}

process_handle exec(const container& c, const process_spec& process,
                    const std::optional<seccomp_spec>& seccomp, const stdio_fds& stdio) {
    error err;
    auto h = exec(c, process, seccomp, stdio, err);
    throw_if(err);
    return h;
}

int exit_status(int wait_status) {
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    return -1;
}

int wait(process_handle& p, error& err) {
    err.clear();
    int status = 0;
    pid_t r;
    do
        r = ::waitpid(p.pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        err.set(last_errno(), "waitpid " + std::to_string(p.pid));
        return -1;
    }
    return exit_status(status);
}

int wait(process_handle& p) {
    error err;
    int s = wait(p, err);
    throw_if(err);
    return s;
}

bool destroy(container& c, error& err) {
    err.clear();
    c.cgroup_dir.reset();
    if (c.cgroup_path.empty()) return true;
    return remove_cgroup(c.cgroup_path, err);
}

} // namespace cz::guest
