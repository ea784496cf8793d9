#include "event_loop.hpp"

#include <cerrno>
#include <system_error>

namespace cz::guest {

event_loop::event_loop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

void event_loop::watch(int fd, std::uint32_t events, callback cb) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    bool known = callbacks_.count(fd) != 0;
    if (::epoll_ctl(epoll_.get(), known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    callbacks_[fd] = std::make_shared<callback>(std::move(cb));
}

void event_loop::unwatch(int fd) noexcept {
    if (callbacks_.erase(fd) != 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void event_loop::run_once(std::chrono::milliseconds timeout) {
    epoll_event ready[16];
    int n = ::epoll_wait(epoll_.get(), ready, 16, static_cast<int>(timeout.count()));
    if (n < 0 && errno != EINTR)
        throw std::system_error(errno, std::generic_category(), "epoll_wait");
    for (int i = 0; i < n; ++i) {
        // Looked up afresh: an earlier callback of this round may have unwatched this fd.
        auto it = callbacks_.find(ready[i].data.fd);
        if (it == callbacks_.end()) continue;
        auto cb = it->second;
        (*cb)(ready[i].events);
    }
}

} // namespace cz::guest
