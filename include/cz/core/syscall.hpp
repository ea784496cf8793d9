// cz/core/syscall.hpp — a seam for system calls, so tests can make them fail.
//
// Tests need to reach error paths that a healthy kernel rarely takes: EINTR in the middle of a
// read, EIO from a disk, a failure on exactly the Nth call. Code calls `cz::sys::pread(...)`
// instead of `::pread(...)`; a test installs a fault injector that sees each call's name and may
// make it fail with an errno (Beast's fail_count, applied to syscalls). Without an injector the
// cost is one well-predicted branch per call.
//
// What goes through it: core's fd_source and fd_sink (read, write), and the ext4 formatter's and
// reader's image-file I/O (open, fstat, lseek, pread, pwrite, ftruncate); tar and the ext4
// layer_applier make no system calls of their own (they read and write through byte sources and
// sinks). What does not yet: unique_fd's close, netlink (its sockets and tun device), vsock and
// vm (QEMU processes, sockets, guest memory); their failures are reached only through real
// kernels and peers.
#pragma once

#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace cz::sys {

// Called before each system call with its name ("read", "write", ...): return 0 to let the call
// happen, or an errno value to fail it with that errno instead.
using fault_injector = std::function<int(const char* call)>;

// The installed injector (thread-local, so parallel tests do not see each other's faults).
inline fault_injector& current_fault_injector() noexcept {
    thread_local fault_injector injector;
    return injector;
}

// Installs an injector for the lifetime of the guard.
class scoped_fault_injector {
public:
    explicit scoped_fault_injector(fault_injector f)
        : previous_(std::move(current_fault_injector())) {
        current_fault_injector() = std::move(f);
    }
    ~scoped_fault_injector() { current_fault_injector() = std::move(previous_); }
    scoped_fault_injector(const scoped_fault_injector&) = delete;
    scoped_fault_injector& operator=(const scoped_fault_injector&) = delete;

private:
    fault_injector previous_;
};

// Returns the errno to fail `call` with, or 0.
inline int injected_fault(const char* call) {
    auto& injector = current_fault_injector();
    return injector ? injector(call) : 0;
}

inline ssize_t read(int fd, void* buf, std::size_t n) {
    if (int e = injected_fault("read")) return errno = e, -1;
    return ::read(fd, buf, n);
}

inline ssize_t write(int fd, const void* buf, std::size_t n) {
    if (int e = injected_fault("write")) return errno = e, -1;
    return ::write(fd, buf, n);
}

inline ssize_t pread(int fd, void* buf, std::size_t n, off_t offset) {
    if (int e = injected_fault("pread")) return errno = e, -1;
    return ::pread(fd, buf, n, offset);
}

// pread, started again when a signal interrupts it before it reads anything (EINTR): what
// callers that read files want. The bytes read (0 at the end of the file), or -1 with errno set.
inline ssize_t pread_some(int fd, void* buf, std::size_t n, off_t offset) {
    for (;;) {
        ssize_t r = pread(fd, buf, n, offset);
        if (r >= 0 || errno != EINTR) return r;
    }
}

inline ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t offset) {
    if (int e = injected_fault("pwrite")) return errno = e, -1;
    return ::pwrite(fd, buf, n, offset);
}

inline int ftruncate(int fd, off_t length) {
    if (int e = injected_fault("ftruncate")) return errno = e, -1;
    return ::ftruncate(fd, length);
}

inline int fstat(int fd, struct ::stat* st) {
    if (int e = injected_fault("fstat")) return errno = e, -1;
    return ::fstat(fd, st);
}

inline off_t lseek(int fd, off_t offset, int whence) {
    if (int e = injected_fault("lseek")) return errno = e, -1;
    return ::lseek(fd, offset, whence);
}

// open(2) with the flags and mode it is given (O_CLOEXEC is the caller's to pass).
inline int open(const char* path, int flags, mode_t mode = 0) {
    if (int e = injected_fault("open")) return errno = e, -1;
    return ::open(path, flags, mode);
}

// A ready-made injector: fails the Nth call (counting from 0) whose name is `call` (or any call
// when `call` is null) with `error`, and lets every other call through.
inline fault_injector fail_nth(int n, int error, const char* call = nullptr) {
    auto count = std::make_shared<int>(0);
    return [=](const char* name) {
        if (call && std::string_view(call) != name) return 0;
        return (*count)++ == n ? error : 0;
    };
}

} // namespace cz::sys
