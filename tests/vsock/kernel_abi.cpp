// Checks cz/vsock's re-declared kernel constants and layouts against the kernel's own headers
// (public cz headers never include <linux/*.h>). linux/virtio_ring.h is C only (implicit
// void* conversions), so the ring flags are checked by the virtqueue tests' raw layouts instead.
#include <cz/vsock/packet.hpp>
#include <cz/vsock/protocol.hpp>
#include <cz/vsock/virtqueue.hpp>

#include <sys/socket.h>

#include <linux/virtio_vsock.h>
#include <linux/vm_sockets.h>

#include <doctest/doctest.h>

#include <cstddef>

namespace vs = cz::vsock;

static_assert(vs::af_vsock == AF_VSOCK);
static_assert(vs::cid_any == VMADDR_CID_ANY);
static_assert(vs::cid_host == VMADDR_CID_HOST);
static_assert(vs::cid_hypervisor == VMADDR_CID_HYPERVISOR);
static_assert(vs::port_any == VMADDR_PORT_ANY);
static_assert(sizeof(vs::detail::sockaddr_vm) == sizeof(::sockaddr_vm));
static_assert(offsetof(vs::detail::sockaddr_vm, svm_port) == offsetof(::sockaddr_vm, svm_port));
static_assert(offsetof(vs::detail::sockaddr_vm, svm_cid) == offsetof(::sockaddr_vm, svm_cid));
static_assert(offsetof(vs::detail::sockaddr_vm, svm_flags) == offsetof(::sockaddr_vm, svm_flags));
static_assert(vs::packet_header::wire_size == sizeof(::virtio_vsock_hdr));
static_assert(static_cast<int>(vs::op::credit_request) == VIRTIO_VSOCK_OP_CREDIT_REQUEST);
static_assert(static_cast<int>(vs::op::rw) == VIRTIO_VSOCK_OP_RW);
static_assert(static_cast<int>(vs::op::rst) == VIRTIO_VSOCK_OP_RST);
static_assert(vs::type_stream == VIRTIO_VSOCK_TYPE_STREAM);
static_assert(vs::shutdown_rcv == VIRTIO_VSOCK_SHUTDOWN_RCV);
static_assert(vs::shutdown_send == VIRTIO_VSOCK_SHUTDOWN_SEND);

TEST_SUITE("vsock") {

TEST_CASE("packet header field offsets match struct virtio_vsock_hdr") {
    ::virtio_vsock_hdr k{};
    k.src_cid = 3;
    k.dst_cid = 2;
    k.src_port = 1111;
    k.dst_port = 2222;
    k.len = 44;
    k.type = 1;
    k.op = 5;
    k.flags = 3;
    k.buf_alloc = 65536;
    k.fwd_cnt = 77;
    auto h = vs::packet_header::from_bytes({reinterpret_cast<const std::byte*>(&k), sizeof k});
    CHECK(h.src_cid() == 3);
    CHECK(h.dst_cid() == 2);
    CHECK(h.src_port() == 1111);
    CHECK(h.dst_port() == 2222);
    CHECK(h.len() == 44);
    CHECK(h.type() == 1);
    CHECK(h.op() == vs::op::rw);
    CHECK(h.flags() == 3);
    CHECK(h.buf_alloc() == 65536);
    CHECK(h.fwd_cnt() == 77);
}

TEST_CASE("vsock endpoint is a sockaddr_vm") {
    vs::endpoint ep(3, 1024);
    auto* sa = reinterpret_cast<const ::sockaddr_vm*>(ep.data());
    CHECK(sa->svm_family == AF_VSOCK);
    CHECK(sa->svm_cid == 3);
    CHECK(sa->svm_port == 1024);
    CHECK(ep.size() == sizeof(::sockaddr_vm));
    CHECK(ep.protocol().family() == AF_VSOCK);
}

}
