// cz/vsock.hpp — host <-> guest streams over virtio-vsock: AF_VSOCK as an Asio protocol, a
// vhost-user vsock device served by cz itself (virtqueues over guest memory, connection state
// machine, credit flow), Firecracker-style hybrid Unix sockets and dial/listen on the host.
// Needs cz/core and standalone Asio.
//
// With cz/vm the device comes with every VM (config::vsock) and qemu_vm::vsock_host() is its host
// end. On its own, serving the device for a QEMU you start yourself:
//
//     asio::io_context io;
//     cz::vsock::backend device(io, {.vhost_user_socket = dir / "vhost-user.sock",
//                                    .uds_path = dir / "vsock.sock"});
//     device.start();           // before QEMU: it connects once, at startup; then run `io`
//                               // on a thread of its own (every handler runs there)
//     // QEMU: -object memory-backend-memfd,id=mem,share=on,size=... -machine memory-backend=mem
//     //       -chardev socket,id=vu,path=DIR/vhost-user.sock -device vhost-user-vsock-device,chardev=vu
//     // (cz/vm's qemu_memory_args and qemu_vhost_user_vsock_args write these words)
//
//     asio::io_context mine;    // blocking calls from another thread
//     cz::vsock::host host(mine, cz::vsock::hybrid_transport{dir / "vsock.sock"});
//     std::error_code ec;
//     auto s = host.dial(1024, ec);           // errc::connection_refused: nobody listens yet
//     asio::write(s, asio::buffer("hello"));  // an ordinary stream socket from here on
//     auto guest_calls = host.listen(5000);   // the guest's connect(CID 2, port 5000) lands here
//
// examples/vm_vsock_hello.cpp boots a VM through cz/vm and talks to its guest this way.
#pragma once

#include <cz/vsock/backend.hpp>
#include <cz/vsock/connection.hpp>
#include <cz/vsock/device.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/guest_memory.hpp>
#include <cz/vsock/host.hpp>
#include <cz/vsock/hybrid.hpp>
#include <cz/vsock/muxer.hpp>
#include <cz/vsock/packet.hpp>
#include <cz/vsock/protocol.hpp>
#include <cz/vsock/vhost_user.hpp>
#include <cz/vsock/virtqueue.hpp>
