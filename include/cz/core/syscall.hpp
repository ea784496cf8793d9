// cz/core/syscall.hpp — the one seam every cz system call goes through.
//
// Tests need to reach error paths that a healthy kernel rarely takes: EINTR in the middle of a
// read, EAGAIN on a socket, ENOBUFS from netlink, a failure on exactly the Nth call. cz code calls
// `cz::sys::read(...)` instead of `::read(...)`; a test installs a fault injector that sees each
// call's name and may make it fail with an errno (Beast's fail_count, applied to syscalls).
// Without an injector the cost is one well-predicted branch per call.
#pragma once

#include <cerrno>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
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
    explicit scoped_fault_injector(fault_injector f) : previous_(std::move(current_fault_injector())) {
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
