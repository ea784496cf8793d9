// guest/runtime/syscalls.hpp — the system calls glibc 2.36 has no wrapper for, and raw
// credential calls.
//
// Why raw setuid/setgid/setgroups: the runtime's child is made by a raw clone3 (glibc has no
// clone3 wrapper), so glibc still believes the parent's other threads exist in it; glibc's
// setuid() would try to signal those threads to change their credentials too (its setxid
// broadcast). The raw system calls change only the calling thread, which is the whole child.
#pragma once

#include <cstdint>
#include <sys/types.h>

namespace cz::guest::sys {

// clone3 without a new stack: returns twice like fork(). `pidfd` receives a pidfd when
// CLONE_PIDFD is in flags; `cgroup_fd` is used with CLONE_INTO_CGROUP.
pid_t clone3(std::uint64_t flags, int* pidfd, int cgroup_fd);

int pivot_root(const char* new_root, const char* put_old);
int pidfd_open(pid_t pid);
int setns(int fd, int nstype);

int set_uid(uid_t uid);
int set_gid(gid_t gid);
int set_groups(std::size_t n, const gid_t* groups);

// close_range(first, ~0U, CLOSE_RANGE_CLOEXEC): every fd from `first` on closes at exec.
int cloexec_from(unsigned first);

} // namespace cz::guest::sys
