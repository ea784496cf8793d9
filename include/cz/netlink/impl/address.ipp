// Out-of-line definitions for cz/netlink/address.hpp.
#pragma once

#include <cz/netlink/address.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <array>

namespace cz::netlink {

CZ_DECL asio::ip::address_v4 broadcast_for(const asio::ip::address_v4& a,
                                           std::uint8_t prefix_len) noexcept {
    if (prefix_len >= 32) return a;
    std::uint32_t host_bits = prefix_len == 0 ? 0xffffffffu : (0xffffffffu >> prefix_len);
    return asio::ip::address_v4(a.to_uint() | host_bits);
}

namespace detail {
inline int family_of(const asio::ip::address& a) noexcept {
    return a.is_v4() ? AF_INET : AF_INET6;
}
} // namespace detail

CZ_DECL bool parse_address(const message& m, address_info& out, std::error_code& ec) {
    ec.clear();
    out = {};
    if (m.header.type != rtm::newaddr) {
        ec = errc::unexpected_message;
        return false;
    }
    address_header h;
    if (!decode(m.payload, h)) {
        ec = errc::bad_payload;
        return false;
    }
    out.family = h.family;
    out.index = int(h.index);
    out.prefix_len = h.prefix_len;
    out.scope = h.scope;
    out.flags = h.flags;
    std::array<std::optional<bytes_view>, ifa::flags + 1> t;
    if (!parse_attributes(m.payload.subspan(sizeof h), t, ec)) return false;
    auto bad = [&] {
        ec = errc::bad_payload;
        return false;
    };
    asio::ip::address address, local;
    bool has_address = false, has_local = false;
    if (t[ifa::address]) {
        if (!get_ip_address(*t[ifa::address], address)) return bad();
        has_address = true;
    }
    if (t[ifa::local]) {
        if (!get_ip_address(*t[ifa::local], local)) return bad();
        has_local = true;
    }
    if (has_local) {
        out.local = local;
        if (has_address && address != local) out.peer = address;
    } else if (has_address) {
        out.local = address;
    }
    if (t[ifa::broadcast]) {
        asio::ip::address b;
        if (!get_ip_address(*t[ifa::broadcast], b) || !b.is_v4()) return bad();
        out.broadcast = b.to_v4();
    }
    if (t[ifa::label]) out.label = std::string(get_string(*t[ifa::label]));
    if (t[ifa::flags] && !get_integer(*t[ifa::flags], out.flags)) return bad();
    if (t[ifa::cacheinfo]) {
        // struct ifa_cacheinfo { __u32 ifa_prefered, ifa_valid, cstamp, tstamp; }
        if (t[ifa::cacheinfo]->size() != 16) return bad();
        // SAFETY: the value is exactly 16 bytes, checked above.
        std::memcpy(&out.preferred_lifetime, t[ifa::cacheinfo]->data(), 4);
        std::memcpy(&out.valid_lifetime, t[ifa::cacheinfo]->data() + 4, 4);
    }
    return true;
}

namespace detail {

inline void build_address_request(message_builder& b, std::uint16_t type, std::uint16_t flags,
                                  const address_spec& spec) {
    b.begin(type, std::uint16_t(flags | nlm_f::ack));
    address_header h;
    h.family = std::uint8_t(family_of(spec.local));
    h.prefix_len = spec.prefix_len;
    h.index = std::uint32_t(spec.index);
    h.flags = std::uint8_t(spec.flags & 0xff);
    if (spec.scope) {
        h.scope = *spec.scope;
    } else if (spec.local.is_loopback()) {
        h.scope = rt_scope::host;
    }
    b.put(h);
    b.attr_address(ifa::local, spec.local);
    b.attr_address(ifa::address, spec.peer ? *spec.peer : spec.local);
    if (spec.broadcast) b.attr_address(ifa::broadcast, asio::ip::address(*spec.broadcast));
    if (!spec.label.empty()) b.attr_string(ifa::label, spec.label);
    if (spec.flags) b.attr_u32(ifa::flags, spec.flags);
}

inline std::string describe(const address_spec& spec) {
    return fmt::format("{}/{} on link {}", spec.local.to_string(), spec.prefix_len, spec.index);
}

inline bool check_spec(const address_spec& spec, std::error_code& ec) {
    if ((spec.peer && spec.peer->is_v4() != spec.local.is_v4()) ||
        (spec.broadcast && !spec.local.is_v4())) {
        ec = errc::invalid_argument;
        return false;
    }
    return true;
}

} // namespace detail

CZ_DECL void add_address(session& s, const address_spec& spec, std::error_code& ec) {
    if (!detail::check_spec(spec, ec)) return;
    message_builder b;
    detail::build_address_request(b, rtm::newaddr, nlm_f::create | nlm_f::excl, spec);
    s.execute(b, ec);
}

CZ_DECL void add_address(session& s, const address_spec& spec) {
    std::error_code ec;
    add_address(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "add address " + detail::describe(spec));
}

CZ_DECL void delete_address(session& s, const address_spec& spec, std::error_code& ec) {
    if (!detail::check_spec(spec, ec)) return;
    message_builder b;
    detail::build_address_request(b, rtm::deladdr, 0, spec);
    s.execute(b, ec);
}

CZ_DECL void delete_address(session& s, const address_spec& spec) {
    std::error_code ec;
    delete_address(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "delete address " + detail::describe(spec));
}

CZ_DECL std::vector<address_info> list_addresses(session& s, int family, int index,
                                                 std::error_code& ec) {
    std::vector<address_info> out;
    message_builder b;
    b.begin(rtm::getaddr, nlm_f::dump);
    address_header h;
    h.family = std::uint8_t(family);
    // With NETLINK_GET_STRICT_CHK the kernel filters by ifa_index itself.
    h.index = std::uint32_t(index);
    b.put(h);
    detail::dump(
        s, b, [&] { out.clear(); },
        [&](const message& m, std::error_code& hec) {
            address_info a;
            if (!parse_address(m, a, hec)) return;
            // Older kernels ignore the filter: apply it here too.
            if ((family == 0 || a.family == family) && (index == 0 || a.index == index))
                out.push_back(std::move(a));
        },
        ec);
    if (ec) out.clear();
    return out;
}

CZ_DECL std::vector<address_info> list_addresses(session& s, int family, int index) {
    std::error_code ec;
    auto out = list_addresses(s, family, index, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "list addresses");
    return out;
}

CZ_DECL std::string to_string(const address_info& a) {
    return fmt::format("{}/{}", a.local.to_string(), a.prefix_len);
}

} // namespace cz::netlink
