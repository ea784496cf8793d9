// cz/vsock/protocol.hpp — AF_VSOCK as an Asio protocol.
//
// `cz::vsock::stream_protocol` models Asio's Protocol requirements and `cz::vsock::endpoint` its
// Endpoint requirements, so `stream_protocol::socket` and `stream_protocol::acceptor` are plain
// `asio::basic_stream_socket`/`basic_socket_acceptor`s and every Asio algorithm works on them.
// The guest side uses it (the agent listens on a port of its own CID), and so do hosts that have
// the kernel's vhost-vsock: there the host dials (guest CID, port).
//
// The kernel's `struct sockaddr_vm` (linux/vm_sockets.h) is re-declared here, because public cz
// headers never include <linux/*.h>; tests/vsock/kernel_abi.cpp checks the layout and constants.
#pragma once

#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/detail/socket_types.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <stdexcept>

namespace cz::vsock {

// Address family number of AF_VSOCK (linux/socket.h; glibc's <sys/socket.h> has it too).
inline constexpr int af_vsock = 40;
// Any CID (bind), the hypervisor, the local host and the host as seen from a guest.
inline constexpr std::uint32_t cid_any = 0xffffffffu;
inline constexpr std::uint32_t cid_hypervisor = 0;
inline constexpr std::uint32_t cid_local = 1;
inline constexpr std::uint32_t cid_host = 2;
inline constexpr std::uint32_t port_any = 0xffffffffu;

namespace detail {
// linux/vm_sockets.h `struct sockaddr_vm`: family, reserved, port, cid, flags, zero padding up
// to sizeof(struct sockaddr) = 16 bytes.
struct sockaddr_vm {
    unsigned short svm_family;
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_flags;
    unsigned char svm_zero[3];
};
static_assert(sizeof(sockaddr_vm) == 16);
static_assert(offsetof(sockaddr_vm, svm_port) == 4);
static_assert(offsetof(sockaddr_vm, svm_cid) == 8);
static_assert(offsetof(sockaddr_vm, svm_flags) == 12);
} // namespace detail

class stream_protocol;

// A vsock address: (cid, port). Satisfies Asio's Endpoint requirements.
class endpoint {
public:
    using protocol_type = stream_protocol;
    using data_type = asio::detail::socket_addr_type;

    endpoint() noexcept : endpoint(cid_any, port_any) {}
    endpoint(std::uint32_t cid, std::uint32_t port) noexcept {
        std::memset(&addr_, 0, sizeof addr_);
        addr_.svm_family = static_cast<unsigned short>(af_vsock);
        addr_.svm_cid = cid;
        addr_.svm_port = port;
    }

    protocol_type protocol() const noexcept;
    std::uint32_t cid() const noexcept { return addr_.svm_cid; }
    std::uint32_t port() const noexcept { return addr_.svm_port; }

    // SAFETY: sockaddr_vm is a sockaddr of the AF_VSOCK family; the kernel reads `size()` bytes.
    data_type* data() noexcept { return reinterpret_cast<data_type*>(&addr_); }
    const data_type* data() const noexcept { return reinterpret_cast<const data_type*>(&addr_); }
    std::size_t size() const noexcept { return sizeof addr_; }
    std::size_t capacity() const noexcept { return sizeof addr_; }
    // The kernel always returns a whole sockaddr_vm; anything longer is refused.
    void resize(std::size_t n) {
        if (n > sizeof addr_) throw std::length_error("cz::vsock::endpoint::resize: too long");
    }

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept {
        return a.cid() == b.cid() && a.port() == b.port();
    }
    friend bool operator<(const endpoint& a, const endpoint& b) noexcept {
        return a.cid() != b.cid() ? a.cid() < b.cid() : a.port() < b.port();
    }
    friend std::ostream& operator<<(std::ostream& os, const endpoint& e) {
        return os << "vsock:" << e.cid() << ':' << e.port();
    }

private:
    detail::sockaddr_vm addr_;
};

// SOCK_STREAM over AF_VSOCK. Satisfies Asio's Protocol and AcceptableProtocol requirements.
class stream_protocol {
public:
    using endpoint = cz::vsock::endpoint;
    using socket = asio::basic_stream_socket<stream_protocol>;
    using acceptor = asio::basic_socket_acceptor<stream_protocol>;

    int family() const noexcept { return af_vsock; }
    int type() const noexcept { return SOCK_STREAM; }
    int protocol() const noexcept { return 0; }

    friend bool operator==(const stream_protocol&, const stream_protocol&) noexcept { return true; }
};

inline stream_protocol endpoint::protocol() const noexcept { return {}; }

} // namespace cz::vsock
