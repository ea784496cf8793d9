// A vhost-user frontend in miniature for tests: sends messages with SCM_RIGHTS fds over a Unix
// socket and reads replies, like QEMU's hw/virtio/vhost-user.c.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/vsock/vhost_user.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace cz::vsock::test {

inline void send_message(int sock, vhost_user::request r, bytes_view payload,
                         const std::vector<int>& fds = {}, std::uint32_t flags = 1) {
    vhost_user::message_header h(r, flags, static_cast<std::uint32_t>(payload.size()));
    byte_buffer buf(h.bytes().begin(), h.bytes().end());
    buf.insert(buf.end(), payload.begin(), payload.end());
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(buf.size()))
        throw std::runtime_error("sendmsg");
}

inline byte_buffer u64_payload(std::uint64_t v) {
    byte_buffer b(8);
    store_le<std::uint64_t>(b.data(), v);
    return b;
}
inline byte_buffer state_payload(std::uint32_t index, std::uint32_t num) {
    byte_buffer b(8);
    store_le<std::uint32_t>(b.data(), index);
    store_le<std::uint32_t>(b.data() + 4, num);
    return b;
}
inline byte_buffer addr_payload(std::uint32_t index, std::uint64_t desc, std::uint64_t used,
                                std::uint64_t avail) {
    byte_buffer b(40);
    store_le<std::uint32_t>(b.data(), index);
    store_le<std::uint64_t>(b.data() + 8, desc);
    store_le<std::uint64_t>(b.data() + 16, used);
    store_le<std::uint64_t>(b.data() + 24, avail);
    return b;
}
inline byte_buffer mem_table_payload(std::uint64_t gpa, std::uint64_t size, std::uint64_t uva,
                                     std::uint64_t offset) {
    byte_buffer b(8 + 32);
    store_le<std::uint32_t>(b.data(), 1);
    store_le<std::uint64_t>(b.data() + 8, gpa);
    store_le<std::uint64_t>(b.data() + 16, size);
    store_le<std::uint64_t>(b.data() + 24, uva);
    store_le<std::uint64_t>(b.data() + 32, offset);
    return b;
}

// Reads one reply: header + payload (blocking). Empty on EOF.
inline byte_buffer read_reply(int sock) {
    byte_buffer h(12);
    std::size_t got = 0;
    while (got < 12) {
        ssize_t n = ::recv(sock, h.data() + got, 12 - got, 0);
        if (n <= 0) return {};
        got += static_cast<std::size_t>(n);
    }
    std::uint32_t size = load_le<std::uint32_t>(h.data() + 8);
    h.resize(12 + size);
    while (got < h.size()) {
        ssize_t n = ::recv(sock, h.data() + got, h.size() - got, 0);
        if (n <= 0) return {};
        got += static_cast<std::size_t>(n);
    }
    return h;
}

} // namespace cz::vsock::test
