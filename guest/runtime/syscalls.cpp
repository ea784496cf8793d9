#include "runtime/syscalls.hpp"

#include <csignal>
#include <cstring>
#include <linux/sched.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cz::guest::sys {

pid_t clone3(std::uint64_t flags, int* pidfd, int cgroup_fd) {
    struct clone_args args;
    std::memset(&args, 0, sizeof args);
    args.flags = flags;
    // With CLONE_PARENT the child signals the caller's parent with the caller's own exit
    // signal, and clone3 insists that exit_signal be 0 then.
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (pidfd) args.pidfd = reinterpret_cast<std::uintptr_t>(pidfd);
    if (cgroup_fd >= 0) args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
    return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

int pivot_root(const char* new_root, const char* put_old) {
    return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int setns(int fd, int nstype) {
    return static_cast<int>(::syscall(SYS_setns, fd, nstype));
}

int set_uid(uid_t uid) {
    return static_cast<int>(::syscall(SYS_setresuid, uid, uid, uid));
}

int set_gid(gid_t gid) {
    return static_cast<int>(::syscall(SYS_setresgid, gid, gid, gid));
}

int set_groups(std::size_t n, const gid_t* groups) {
    return static_cast<int>(::syscall(SYS_setgroups, n, groups));
}

int cloexec_from(unsigned first) {
    constexpr unsigned close_range_cloexec = 1u << 2; // CLOSE_RANGE_CLOEXEC, linux/close_range.h
    return static_cast<int>(::syscall(SYS_close_range, first, ~0u, close_range_cloexec));
}

} // namespace cz::guest::sys
