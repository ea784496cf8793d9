// Out-of-line definitions for cz/netlink/neighbour.hpp.
#pragma once

#include <cz/netlink/neighbour.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <array>

namespace cz::netlink {

CZ_DECL bool parse_neighbour(const message& m, neighbour_info& out, std::error_code& ec) {
    ec.clear();
    out = {};
    if (m.header.type != rtm::newneigh) {
        ec = errc::unexpected_message;
        return false;
    }
    neighbour_header h;
    if (!decode(m.payload, h)) {
        ec = errc::bad_payload;
        return false;
    }
    out.family = h.family;
    out.index = h.index;
    out.state = h.state;
    out.flags = h.flags;
    out.type = h.type;
    std::array<std::optional<bytes_view>, nda::probes + 1> t;
    if (!parse_attributes(m.payload.subspan(sizeof h), t, ec)) return false;
    if (t[nda::dst] && !get_ip_address(*t[nda::dst], out.dst)) {
        ec = errc::bad_payload;
        return false;
    }
    if (t[nda::lladdr]) {
        const auto& v = *t[nda::lladdr];
        if (v.size() > out.lladdr.bytes.size()) {
            ec = errc::bad_payload;
            return false;
        }
        // SAFETY: v.size() fits the array, checked above.
        std::memcpy(out.lladdr.bytes.data(), v.data(), v.size());
        out.lladdr.size = v.size();
    }
    return true;
}

CZ_DECL std::vector<std::string_view> neighbour_state_names(std::uint16_t state) {
    // iproute2's order (print_neigh_state).
    constexpr std::array<std::pair<std::uint16_t, std::string_view>, 8> names{{
        {nud::incomplete, "INCOMPLETE"},
        {nud::reachable, "REACHABLE"},
        {nud::stale, "STALE"},
        {nud::delay, "DELAY"},
        {nud::probe, "PROBE"},
        {nud::failed, "FAILED"},
        {nud::noarp, "NOARP"},
        {nud::permanent, "PERMANENT"},
    }};
    std::vector<std::string_view> out;
    for (const auto& [bit, name] : names)
        if (state & bit) out.push_back(name);
    if (state == nud::none) out.push_back("NONE");
    return out;
}

namespace detail {

inline void build_neighbour_request(message_builder& b, std::uint16_t type, std::uint16_t flags,
                                    const neighbour_spec& spec) {
    b.begin(type, std::uint16_t(flags | nlm_f::ack));
    neighbour_header h;
    h.family = std::uint8_t(spec.dst.is_v4() ? AF_INET : AF_INET6);
    h.index = spec.index;
    h.state = spec.state;
    b.put(h);
    b.attr_address(nda::dst, spec.dst);
    if (!spec.lladdr.empty()) b.attr(nda::lladdr, spec.lladdr.view());
}

inline std::string describe(const neighbour_spec& spec) {
    return fmt::format("{} on link {}", spec.dst.to_string(), spec.index);
}

} // namespace detail

CZ_DECL void add_neighbour(session& s, const neighbour_spec& spec, std::error_code& ec) {
    message_builder b;
    detail::build_neighbour_request(
        b, rtm::newneigh,
        std::uint16_t(nlm_f::create | (spec.replace ? nlm_f::replace : nlm_f::excl)), spec);
    s.execute(b, ec);
}

CZ_DECL void add_neighbour(session& s, const neighbour_spec& spec) {
    std::error_code ec;
    add_neighbour(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "add neighbour " + detail::describe(spec));
}

CZ_DECL void delete_neighbour(session& s, const neighbour_spec& spec, std::error_code& ec) {
    message_builder b;
    detail::build_neighbour_request(b, rtm::delneigh, 0, spec);
    s.execute(b, ec);
}

CZ_DECL void delete_neighbour(session& s, const neighbour_spec& spec) {
    std::error_code ec;
    delete_neighbour(s, spec, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "delete neighbour " + detail::describe(spec));
}

CZ_DECL std::vector<neighbour_info> list_neighbours(session& s, int family, std::error_code& ec) {
    std::vector<neighbour_info> out;
    message_builder b;
    b.begin(rtm::getneigh, nlm_f::dump);
    neighbour_header h;
    h.family = std::uint8_t(family);
    b.put(h);
    detail::dump(
        s, b, [&] { out.clear(); },
        [&](const message& m, std::error_code& hec) {
            neighbour_info n;
            if (!parse_neighbour(m, n, hec)) return;
            if (family == 0 || n.family == family) out.push_back(std::move(n));
        },
        ec);
    if (ec) out.clear();
    return out;
}

CZ_DECL std::vector<neighbour_info> list_neighbours(session& s, int family) {
    std::error_code ec;
    auto out = list_neighbours(s, family, ec);
    if (ec) detail::throw_with_kernel_message(ec, s, "list neighbours");
    return out;
}

} // namespace cz::netlink
