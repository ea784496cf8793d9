// guest/agent/event_loop.hpp — cz-init's one thread waits here: epoll over the host connection,
// the signalfd that says a child exited, and (with processes) their stdio. Each watched fd has a
// callback that runs when it is ready; callbacks may watch and unwatch fds, their own included.
#pragma once

#include <cz/core/unique_fd.hpp>

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace cz::guest {

class event_loop {
public:
    using callback = std::function<void(std::uint32_t events)>;

    event_loop();

    // Watches `fd` for `events` (EPOLLIN, EPOLLOUT...); again for the same fd: changes its events
    // and callback. Throws std::system_error when epoll refuses.
    void watch(int fd, std::uint32_t events, callback cb);
    void unwatch(int fd) noexcept;

    // Waits up to `timeout` (negative: forever) and runs the callbacks of the ready fds.
    void run_once(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));

private:
    unique_fd epoll_;
    // shared_ptr: a callback that unwatches its own fd stays alive until it returns.
    std::map<int, std::shared_ptr<callback>> callbacks_;
};

} // namespace cz::guest
