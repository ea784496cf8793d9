// Out-of-line definitions for cz/netlink/route.hpp.
#pragma once

#include <cz/netlink/route.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <array>

namespace cz::netlink {

CZ_DECL bool parse_route(const message& m, route_info& out, std::error_code& ec) {
    ec.clear();
    out = {};
    if (m.header.type != rtm::newroute) {
        ec = errc::unexpected_message;
        return false;
    }
    route_header h;
    if (!decode(m.payload, h)) {
        ec = errc::bad_payload;
        return false;
    }
    out.family = h.family;
    out.dst_len = h.dst_len;
    out.table = h.table;
    out.protocol = h.protocol;
    out.scope = h.scope;
    out.type = h.type;
    out.flags = h.flags;
    std::array<std::optional<bytes_view>, rta::pref + 1> t;
    if (!parse_attributes(m.payload.subspan(sizeof h), t, ec)) return false;
    auto bad = [&] {
        ec = errc::bad_payload;
        return false;
    };
    auto address = [&](std::uint16_t type, std::optional<asio::ip::address>& into) {
        if (!t[type]) return true;
        asio::ip::address a;
        if (!get_ip_address(*t[type], a)) return false;
        into = a;
        return true;
    };
    if (!address(rta::dst, out.dst) || !address(rta::gateway, out.gateway) ||
        !address(rta::prefsrc, out.prefsrc))
        return bad();
    if (t[rta::oif] && !get_integer(*t[rta::oif], out.oif)) return bad();
    if (t[rta::table] && !get_integer(*t[rta::table], out.table)) return bad();
    if (t[rta::priority]) {
        std::uint32_t p = 0;
        if (!get_integer(*t[rta::priority], p)) return bad();
        out.priority = p;
    }
    return true;
}

namespace detail {

inline int route_family(const route_spec& spec) noexcept {
    if (spec.family) return spec.family;
    for (const auto* a : {&spec.dst, &spec.gateway, &spec.prefsrc})
        if (*a) return (*a)->is_v4() ? AF_INET : AF_INET6;
    return AF_INET;
}

inline bool build_route_request(message_builder& b, std::uint16_t type, std::uint16_t flags,
                                const route_spec& spec, std::error_code& ec) {
    int family = route_family(spec);
    auto matches = [&](const std::optional<asio::ip::address>& a) {
        return !a || (family == AF_INET ? a->is_v4() : a->is_v6());
    };
    std::uint8_t max_len = family == AF_INET ? 32 : 128;
    if ((family != AF_INET && family != AF_INET6) || !matches(spec.dst) || !matches(spec.gateway) ||
        !matches(spec.prefsrc) || (spec.dst && spec.dst_len > max_len) ||
        (spec.onlink && !spec.gateway)) {
        ec = errc::invalid_argument;
        return false;
    }
    bool add = type == rtm::newroute;
    b.begin(type, std::uint16_t(flags | nlm_f::ack));
    route_header h;
    h.family = std::uint8_t(family);
    h.dst_len = spec.dst ? spec.dst_len : 0;
    h.table = spec.table < 256 ? std::uint8_t(spec.table) : std::uint8_t(rt_table::unspec);
    if (add) {
        h.protocol = spec.protocol;
        h.type = spec.type;
        // iproute2: routes through a gateway reach the universe, the others are on the link.
        h.scope = spec.scope                                     ? *spec.scope
                  : (spec.type == rtn::unicast && !spec.gateway) ? rt_scope::link
                                                                 : rt_scope::universe;
    } else {
        // A delete names the route; scope "nowhere" and protocol 0 match any.
        h.scope = spec.scope ? *spec.scope : rt_scope::nowhere;
        h.type = spec.type;
    }
    if (spec.onlink) h.flags |= rtnh_f::onlink;
    b.put(h);
    if (spec.table >= 256) b.attr_u32(rta::table, spec.table);
    if (spec.dst) b.attr_address(rta::dst, *spec.dst);
    if (spec.gateway) b.attr_address(rta::gateway, *spec.gateway);
    if (spec.prefsrc) b.attr_address(rta::prefsrc, *spec.prefsrc);
    if (spec.oif) b.attr_u32(rta::oif, std::uint32_t(spec.oif));
    if (spec.priority) b.attr_u32(rta::priority, *spec.priority);
    return true;
}

inline std::string describe(const route_spec& spec) {
    std::string out = spec.dst ? fmt::format("{}/{}", spec.dst->to_string(), spec.dst_len)
                               : std::string("default");
    if (spec.gateway) out += " via " + spec.gateway->to_string();
    if (spec.oif) out += fmt::format(" dev {}", spec.oif);
    if (spec.onlink) out += " onlink";
    return out;
}

} // namespace detail

CZ_DECL void add_route(session& s, const route_spec& spec, std::error_code& ec) {
    message_builder b;
    if (!detail::build_route_request(b, rtm::newroute, nlm_f::create | nlm_f::excl, spec, ec))
        return;
    s.execute(b, ec);
}

CZ_DECL void add_route(session& s, const route_spec& spec) {
    std::error_code ec;
    add_route(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "add route " + detail::describe(spec));
}

CZ_DECL void delete_route(session& s, const route_spec& spec, std::error_code& ec) {
    message_builder b;
    if (!detail::build_route_request(b, rtm::delroute, 0, spec, ec)) return;
    s.execute(b, ec);
}

CZ_DECL void delete_route(session& s, const route_spec& spec) {
    std::error_code ec;
    delete_route(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "delete route " + detail::describe(spec));
}

CZ_DECL std::vector<route_info> list_routes(session& s, int family, std::error_code& ec) {
    std::vector<route_info> out;
    message_builder b;
    b.begin(rtm::getroute, nlm_f::dump);
    route_header h;
    h.family = std::uint8_t(family);
    b.put(h);
    detail::dump(
        s, b, [&] { out.clear(); },
        [&](const message& m, std::error_code& hec) {
            route_info r;
            if (!parse_route(m, r, hec)) return;
            if (family == 0 || r.family == family) out.push_back(std::move(r));
        },
        ec);
    if (ec) out.clear();
    return out;
}

CZ_DECL std::vector<route_info> list_routes(session& s, int family) {
    std::error_code ec;
    auto out = list_routes(s, family, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "list routes");
    return out;
}

CZ_DECL std::string destination_string(const route_info& r) {
    if (r.dst_len == 0 && (!r.dst || r.dst->is_unspecified())) return "default";
    std::string a = r.dst ? r.dst->to_string() : (r.family == AF_INET6 ? "::" : "0.0.0.0");
    std::uint8_t full = r.family == AF_INET6 ? 128 : 32;
    return r.dst_len == full ? a : fmt::format("{}/{}", a, r.dst_len);
}

} // namespace cz::netlink
