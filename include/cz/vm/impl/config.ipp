// Out-of-line definitions for cz/vm/config.hpp.
#pragma once

#include <cz/vm/config.hpp>

#include <cz/core/size.hpp>

#include <charconv>
#include <cstdlib>

namespace cz::vm {

CZ_DECL void validate(const config& cfg, error_info& detail, std::error_code& ec) {
    ec.clear();
    detail.clear();
    auto fail = [&](std::string what) {
        detail.message = std::move(what);
        ec = errc::invalid_config;
    };
    std::error_code fs_ec;
    if (cfg.kernel.empty()) return fail("no kernel given");
    if (!std::filesystem::is_regular_file(cfg.kernel, fs_ec))
        return fail("kernel " + cfg.kernel.string() + " is not a file");
    if (!cfg.initrd.empty() && !std::filesystem::is_regular_file(cfg.initrd, fs_ec))
        return fail("initrd " + cfg.initrd.string() + " is not a file");
    if (cfg.cpus < 1 || cfg.cpus > 255) return fail("cpus must be 1..255");
    if (cfg.memory_mib < 16 || cfg.memory_mib > (1u << 20)) return fail("memory must be 16M..1T");
    for (const auto& d : cfg.disks)
        if (!std::filesystem::is_regular_file(d.path, fs_ec) &&
            !std::filesystem::is_block_file(d.path, fs_ec))
            return fail("disk " + d.path.string() + " is not a file or block device");
    if (cfg.network)
        for (const auto& f : cfg.network->forwards)
            if (f.guest_port == 0) return fail("port forward without a guest port");
    // 0, 1 and 2 are the hypervisor, loopback and host; -1 is VMADDR_CID_ANY.
    if (cfg.vsock && (cfg.vsock->guest_cid < 3 || cfg.vsock->guest_cid == 0xffffffffu))
        return fail("vsock guest CID must be 3..0xfffffffe");
    // Commas and quotes would change the meaning of the VMM's option syntax.
    auto plain = [](const std::string& s) {
        return s.find_first_of(",\"'\n") == std::string::npos;
    };
    if (!plain(cfg.kernel.string()) || !plain(cfg.initrd.string()))
        return fail("kernel and initrd paths may not contain commas, quotes or newlines");
    // The vsock device's vhost-user socket is named by path on QEMU's command line.
    if (cfg.vsock && !plain(cfg.root.string()))
        return fail("the cz root may not contain commas, quotes or newlines (vsock socket path)");
    for (const auto& d : cfg.disks)
        if (!plain(d.path.string()))
            return fail("disk paths may not contain commas, quotes or newlines");
}

CZ_DECL std::uint64_t parse_memory_mib(std::string_view text, std::error_code& ec) {
    constexpr std::uint64_t mib = std::uint64_t(1) << 20;
    std::uint64_t bytes = cz::parse_size(text, ec, mib);
    if (ec || bytes % mib != 0) {
        ec = errc::bad_syntax;
        return 0;
    }
    return bytes / mib;
}

CZ_DECL port_forward parse_port_forward(std::string_view text, std::error_code& ec) {
    port_forward f;
    if (text.starts_with("udp:")) {
        f.proto = port_forward::protocol::udp;
        text.remove_prefix(4);
    } else if (text.starts_with("tcp:")) {
        text.remove_prefix(4);
    }
    auto last = text.rfind(':');
    if (last == std::string_view::npos) {
        ec = errc::bad_syntax;
        return {};
    }
    auto parse_port = [&](std::string_view s, std::uint16_t& out) {
        unsigned v = 0;
        auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (err != std::errc() || end != s.data() + s.size() || v > 65535) return false;
        out = static_cast<std::uint16_t>(v);
        return true;
    };
    auto host = text.substr(0, last);
    if (!parse_port(text.substr(last + 1), f.guest_port) || f.guest_port == 0) {
        ec = errc::bad_syntax;
        return {};
    }
    if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
        f.host_address = std::string(host.substr(0, colon));
        host = host.substr(colon + 1);
    }
    if (!parse_port(host, f.host_port) ||
        f.host_address.find_first_of(",:") != std::string::npos) {
        ec = errc::bad_syntax;
        return {};
    }
    return f;
}

CZ_DECL std::filesystem::path default_root() {
    if (const char* r = std::getenv("CZ_ROOT"); r && *r) return r;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::filesystem::path(x) / "cz";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".local/share/cz";
    return std::filesystem::path("/var/lib/cz");
}

} // namespace cz::vm
