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
#include <sched.h>
#include <sys/mman.h>
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

// exec()'s intermediate process. It shares cz-init's memory and file table (CLONE_VM |
// CLONE_FILES) while cz-init waits (CLONE_VFORK), as posix_spawn's child does: it only makes
// system calls, on a stack of its own, and leaves its results here. The process it clones gets a
// copy of that memory and continues on a copy of that stack.
struct exec_hop {
    const container* c;
    const process_spec* process;
    const std::optional<seccomp_spec>* seccomp;
    const stdio_fds* stdio;
    int report_sock;
    pid_t child = -1;
    int pidfd = -1;
    const char* failed = nullptr; // the step that failed, with sys_errno
    int sys_errno = 0;
};

int exec_hop_main(void* arg) {
    auto& hop = *static_cast<exec_hop*>(arg);
    if (sys::setns(hop.c->init.pidfd.get(), hop.c->namespace_flags) != 0) {
        hop.sys_errno = errno;
        hop.failed = "setns into the container";
        return 1;
    }
    std::uint64_t flags = CLONE_PARENT | CLONE_PIDFD;
    if (hop.c->cgroup_dir) flags |= CLONE_INTO_CGROUP;
    int pidfd = -1;
    pid_t child = sys::clone3(flags, &pidfd, hop.c->cgroup_dir.get());
    if (child == 0) exec_child(*hop.process, *hop.seccomp, *hop.stdio, hop.report_sock);
    if (child < 0) {
        hop.sys_errno = errno;
        hop.failed = "clone3 the exec'd process";
        return 1;
    }
    hop.child = child;
    hop.pidfd = pidfd; // in cz-init's file table, which this process shares
    return 0;
}

// The top of the intermediate's stack: mapped once, used by one exec at a time (cz-init's agent
// thread), with a guard page below it. The cloned process runs its whole setup on its copy of
// this stack, up to its exec: 1 MiB, as much as that takes with room to spare.
void* hop_stack() {
    constexpr std::size_t size = 1u << 20, guard = 4096;
    static void* top = nullptr; // mapped on first use; a failure is tried again next time
    if (!top) {
        void* base = ::mmap(nullptr, size + guard, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) return nullptr;
        ::mprotect(base, guard, PROT_NONE);
        top = static_cast<std::byte*>(base) + size + guard;
    }
    return top;
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
    // process enters the namespaces and clones the real one (CLONE_PARENT: cz-init is its parent
    // and waits for it like any other). The intermediate shares our memory and fds while we wait
    // for it (exec_hop_main), so it costs no copy of cz-init's memory.
    auto* stack = hop_stack();
    if (!stack) {
        err.set(last_errno(), "mmap the stack of exec's intermediate process");
        return {};
    }
    exec_hop hop{&c, &process, &seccomp, &stdio, ends[1].get()};
    // No signal handler may run in the intermediate, on our memory: every signal stays blocked
    // there (the process it clones unblocks them itself, exec_child), as posix_spawn does.
    sigset_t all, saved;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &saved);
    pid_t mid = ::clone(exec_hop_main, stack, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &hop);
    int clone_errno = errno;
    ::sigprocmask(SIG_SETMASK, &saved, nullptr);
    errno = clone_errno;
    if (mid < 0) {
        err.set(last_errno(), "clone for exec");
        return {};
    }
    // It has ended (CLONE_VFORK), after the clone of the process or a failure.
    reap(mid);
    ends[1].reset();
    if (hop.failed) {
        err.set({hop.sys_errno, std::system_category()}, std::string(hop.failed) +
                                                             " (the container of pid " +
                                                             std::to_string(c.init.pid) + ")");
        return {};
    }
    process_handle h;
    h.pid = hop.child;
    h.pidfd.reset(hop.pidfd);
    // Until the process has exec'd its program (the socket is close-on-exec) or failed.
    collect(ends[0].get(), h, err);
    if (err) {
        reap(h.pid);
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
