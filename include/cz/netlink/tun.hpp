// cz/netlink/tun.hpp — TAP and TUN devices through /dev/net/tun.
//
// open_tun() opens /dev/net/tun and attaches the fd to a device with TUNSETIFF, creating it if
// needed: the fd then reads and writes whole frames (TAP: Ethernet, TUN: IP packets), which is
// what a VMM's virtio-net backend wants. A non-persistent device disappears with its last fd; a
// persistent one (`ip tuntap add`) stays until delete_link(). Bring it up and give it an address
// or a bridge with the rest of cz/netlink. Needs CAP_NET_ADMIN (or a device owned by the user).
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <system_error>

namespace cz::netlink {

enum class tun_mode {
    tun, // layer 3: IP packets
    tap, // layer 2: Ethernet frames
};

struct tun_options {
    tun_mode mode = tun_mode::tap;
    bool packet_info = false;   // prefix each frame with struct tun_pi (IFF_NO_PI when false)
    bool vnet_header = false;   // prefix each frame with struct virtio_net_hdr (IFF_VNET_HDR)
    bool multi_queue = false;   // IFF_MULTI_QUEUE: one fd per queue, same name
    bool persist = false;       // TUNSETPERSIST: keep the device after the fd closes
    std::optional<uid_t> owner; // TUNSETOWNER: let this user attach without CAP_NET_ADMIN
};

// Attaches to (or creates) the device `name`; an empty name lets the kernel pick one ("tap0",
// "tun0"). On success `name` holds the device's name and the returned fd is O_CLOEXEC.
// EPERM without CAP_NET_ADMIN, EBUSY if the device is attached elsewhere, EINVAL when `name`
// exists with another mode; errc::invalid_name for a name the kernel would truncate.
CZ_DECL unique_fd open_tun(std::string& name, const tun_options& options, std::error_code& ec);
CZ_DECL unique_fd open_tun(std::string& name, const tun_options& options = {});

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/tun.ipp>
#endif
