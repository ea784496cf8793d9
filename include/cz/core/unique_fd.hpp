// cz/core/unique_fd.hpp — an owning file descriptor.
//
// Closes on destruction, moves but never copies. `release()` hands the fd back to the caller.
// Every fd cz opens is O_CLOEXEC, so a child process (QEMU) never inherits one by accident.
#pragma once

#include <unistd.h>

#include <utility>

namespace cz {

class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership without closing.
    int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the current fd (if any) and owns `fd` instead. close() errors are ignored on
    // purpose: on Linux the fd is released even when close() reports EINTR or EIO, and a retry
    // could close an fd another thread has just been given.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace cz
