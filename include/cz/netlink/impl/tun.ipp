// Out-of-line definitions for cz/netlink/tun.hpp.
#pragma once

#include <cz/netlink/tun.hpp>

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstring>

namespace cz::netlink {

CZ_DECL unique_fd open_tun(std::string& name, const tun_options& options, std::error_code& ec) {
    ec.clear();
    if (name.size() >= ifnamsiz || name.find_first_of("/: \t\n") != std::string::npos) {
        ec = errc::invalid_name;
        return {};
    }
    unique_fd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd) {
        ec = last_system_error();
        return {};
    }
    ifreq req;
    std::memset(&req, 0, sizeof req);
    std::memcpy(req.ifr_name, name.data(), name.size()); // SAFETY: size < IFNAMSIZ, checked
    std::uint16_t flags = options.mode == tun_mode::tap ? tun::iff_tap : tun::iff_tun;
    if (!options.packet_info) flags |= tun::iff_no_pi;
    if (options.vnet_header) flags |= tun::iff_vnet_hdr;
    if (options.multi_queue) flags |= tun::iff_multi_queue;
    req.ifr_flags = static_cast<short>(flags);
    if (::ioctl(fd.get(), tun::setiff, &req) < 0) {
        ec = last_system_error();
        return {};
    }
    if (options.owner &&
        ::ioctl(fd.get(), tun::setowner, static_cast<unsigned long>(*options.owner)) < 0) {
        ec = last_system_error();
        return {};
    }
    if (options.persist && ::ioctl(fd.get(), tun::setpersist, 1UL) < 0) {
        ec = last_system_error();
        return {};
    }
    name.assign(req.ifr_name, ::strnlen(req.ifr_name, sizeof req.ifr_name));
    return fd;
}

CZ_DECL unique_fd open_tun(std::string& name, const tun_options& options) {
    std::error_code ec;
    std::string requested = name;
    auto fd = open_tun(name, options, ec);
    if (ec) throw_error(ec, "open tun device '{}'", requested);
    return fd;
}

} // namespace cz::netlink
