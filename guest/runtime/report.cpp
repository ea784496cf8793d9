#include "runtime/report.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace cz::guest::report {

namespace {

// One fixed-size record per message: the child never has to frame anything.
struct wire {
    kind type;
    std::int32_t code;
    std::uint32_t guest_category; // 1: cz::guest::errc, 0: errno
    std::uint32_t exec_failed;    // error::exec_failed
    pid_t pid;
    char text[2000];
};

bool send_wire(int sock, const wire& w, int fd) {
    iovec iov{const_cast<wire*>(&w), sizeof w};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd >= 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(sizeof w);
}

} // namespace

bool channel(unique_fd (&ends)[2], error& err) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
        err.set({errno, std::system_category()}, "socketpair for the setup report");
        return false;
    }
    ends[0].reset(fds[0]);
    ends[1].reset(fds[1]);
    return true;
}

bool send_failure(int sock, const error& e) {
    wire w{};
    w.type = kind::failure;
    w.code = e.code.value();
    w.guest_category = e.code.category() == guest_category() ? 1 : 0;
    w.exec_failed = e.exec_failed ? 1 : 0;
    auto n = std::min(e.message.size(), sizeof w.text - 1);
    std::memcpy(w.text, e.message.data(), n);
    return send_wire(sock, w, -1);
}

bool send_fd(int sock, kind k, int fd, pid_t pid) {
    wire w{};
    w.type = k;
    w.pid = pid;
    return send_wire(sock, w, fd);
}

bool receive(int sock, message& m, error& err) {
    wire w{};
    iovec iov{&w, sizeof w};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n == 0) return false;
    m = message{};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            m.fd.reset(fd);
        }
    }
    if (n != static_cast<ssize_t>(sizeof w) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        err.set(n < 0 ? std::error_code(errno, std::system_category())
                      : make_error_code(errc::setup_failed),
                "reading the container setup report");
        return false;
    }
    m.type = w.type;
    m.pid = w.pid;
    if (w.type == kind::failure) {
        w.text[sizeof w.text - 1] = '\0';
        m.failure.set(w.guest_category ? std::error_code(w.code, guest_category())
                                       : std::error_code(w.code, std::system_category()),
                      w.text);
        m.failure.exec_failed = w.exec_failed != 0;
    }
    return true;
}

} // namespace cz::guest::report
