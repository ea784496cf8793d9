// cz/vsock/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/vsock/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/vsock/impl/backend.ipp>
#include <cz/vsock/impl/connection.ipp>
#include <cz/vsock/impl/device.ipp>
#include <cz/vsock/impl/error.ipp>
#include <cz/vsock/impl/guest_memory.ipp>
#include <cz/vsock/impl/host.ipp>
#include <cz/vsock/impl/hybrid.ipp>
#include <cz/vsock/impl/muxer.ipp>
#include <cz/vsock/impl/vhost_user.ipp>
#include <cz/vsock/impl/virtqueue.ipp>
