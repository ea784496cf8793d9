// cz/vsock.hpp — host <-> guest streams over virtio-vsock: AF_VSOCK as an Asio protocol, a
// vhost-user vsock device served by cz itself (virtqueues over guest memory, connection state
// machine, credit flow), Firecracker-style hybrid Unix sockets and dial/listen on the host.
// Needs cz/core and standalone Asio.
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
