#include "net.hpp"

#include <cz/netlink/link.hpp>
#include <cz/netlink/session.hpp>

#include <asio/io_context.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

namespace cz::guest {

namespace nl = cz::netlink;

namespace {

using agent::get_string;

net_error invalid(std::string message) {
    return {cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0, std::move(message)};
}

std::string quoted(std::string_view field, std::string_view text) {
    return fmt::format("{} '{}'", field, text);
}

std::uint8_t max_prefix(const asio::ip::address& a) {
    return a.is_v4() ? 32 : 128;
}

// The network `p` lies in: its address with every host bit cleared.
asio::ip::address network_of(const ip_prefix& p) {
    if (p.address.is_v4()) {
        std::uint32_t mask = p.length == 0 ? 0 : ~std::uint32_t(0) << (32 - p.length);
        return asio::ip::address_v4(p.address.to_v4().to_uint() & mask);
    }
    auto bytes = p.address.to_v6().to_bytes();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        int keep = std::clamp(int(p.length) - int(i) * 8, 0, 8);
        bytes[i] &= static_cast<unsigned char>(0xff00u >> keep);
    }
    return asio::ip::address_v6(bytes);
}

} // namespace

// --- decoding ---------------------------------------------------------------------------------

net_error check_interface(std::string_view name, std::string_view field) {
    if (name.empty()) return invalid(fmt::format("{} is empty: name an interface", field));
    if (!nl::valid_link_name(name))
        return invalid(quoted(field, name) +
                       " is no interface name (1-15 characters, no '/', ':' or white space)");
    return {};
}

namespace {

// What is wrong with `text` as an address (nullptr: nothing; `out` then holds it).
const char* address_problem(std::string_view text, asio::ip::address& out) {
    if (text.find('%') != std::string_view::npos)
        return "has an IPv6 zone, which is not taken here (the request names the interface)";
    std::error_code ec;
    out = asio::ip::make_address(std::string(text), ec);
    if (ec || text.empty() || text.find('\0') != std::string_view::npos)
        return "is no IPv4 or IPv6 address";
    return nullptr;
}

} // namespace

net_error parse_address(std::string_view text, std::string_view field, asio::ip::address& out) {
    if (auto problem = address_problem(text, out))
        return invalid(quoted(field, text) + " " + problem);
    return {};
}

net_error parse_prefix(std::string_view text, std::string_view field, ip_prefix& out) {
    auto slash = text.rfind('/');
    if (slash == std::string_view::npos)
        return invalid(quoted(field, text) +
                       ": no prefix length (CIDR form, as in 10.0.2.15/24 or fd00::2/64)");
    auto address = text.substr(0, slash);
    if (auto problem = address_problem(address, out.address))
        return invalid(fmt::format("{}: '{}' {}", quoted(field, text), address, problem));
    auto digits = text.substr(slash + 1);
    auto max = max_prefix(out.address);
    unsigned length = 0;
    bool ok = !digits.empty() && digits.size() <= 3;
    for (char c : digits) {
        ok = ok && c >= '0' && c <= '9';
        length = length * 10 + unsigned(c - '0');
    }
    if (!ok)
        return invalid(fmt::format("{}: prefix length '{}' is no number from 0 to {}",
                                   quoted(field, text), digits, max));
    if (length > max)
        return invalid(fmt::format("{}: prefix length {} is longer than {} ({})",
                                   quoted(field, text), length, max,
                                   out.address.is_v4() ? "IPv4" : "IPv6"));
    out.length = std::uint8_t(length);
    return {};
}

net_error decode(const cz_agent_IpLinkSet& r, link_change& out) {
    out = {};
    out.interface = get_string(r.interface);
    if (auto e = check_interface(out.interface, "IpLinkSet.interface")) return e;
    out.up = r.up;
    out.mtu = r.mtu;
    return {};
}

net_error decode(const cz_agent_IpAddrAdd& r, address_change& out) {
    out = {};
    out.interface = get_string(r.interface);
    if (auto e = check_interface(out.interface, "IpAddrAdd.interface")) return e;
    ip_prefix p;
    if (auto e = parse_prefix(get_string(r.address), "IpAddrAdd.address", p)) return e;
    out.spec.local = p.address;
    out.spec.prefix_len = p.length;
    if (p.address.is_v6()) out.spec.flags = nl::ifa_f::nodad;
    return {};
}

net_error decode(const cz_agent_IpRouteAddLink& r, route_change& out) {
    out = {};
    out.interface = get_string(r.interface);
    if (auto e = check_interface(out.interface, "IpRouteAddLink.interface")) return e;
    ip_prefix dst;
    auto text = get_string(r.destination);
    if (auto e = parse_prefix(text, "IpRouteAddLink.destination", dst)) return e;
    auto network = network_of(dst);
    if (network != dst.address)
        return invalid(fmt::format("{}: host bits are set (the network is {}/{})",
                                   quoted("IpRouteAddLink.destination", text), network.to_string(),
                                   dst.length));
    out.spec.dst = dst.address;
    out.spec.dst_len = dst.length;
    out.spec.scope = nl::rt_scope::link;
    auto source = get_string(r.source);
    if (!source.empty()) {
        asio::ip::address src;
        if (auto e = parse_address(source, "IpRouteAddLink.source", src)) return e;
        if (src.is_v4() != dst.address.is_v4())
            return invalid(quoted("IpRouteAddLink.source", source) +
                           " is not of the destination's family (" + std::string(text) + ")");
        out.spec.prefsrc = src;
    }
    return {};
}

net_error decode(const cz_agent_IpRouteAddDefault& r, route_change& out) {
    out = {};
    out.interface = get_string(r.interface);
    auto gateway = get_string(r.gateway);
    if (gateway.empty()) {
        if (out.interface.empty())
            return invalid("IpRouteAddDefault: a default route without a gateway needs an "
                           "interface");
        out.spec.family = r.ipv6 ? AF_INET6 : AF_INET;
    } else {
        asio::ip::address gw;
        if (auto e = parse_address(gateway, "IpRouteAddDefault.gateway", gw)) return e;
        if (gw.is_unspecified())
            return invalid(quoted("IpRouteAddDefault.gateway", gateway) +
                           " is the unspecified address (use \"\" for a device route)");
        out.spec.gateway = gw;
    }
    if (!out.interface.empty())
        if (auto e = check_interface(out.interface, "IpRouteAddDefault.interface")) return e;
    return {};
}

// --- descriptions -------------------------------------------------------------------------------

std::string describe(const link_change& c) {
    std::string s = "ip link set " + c.interface + (c.up ? " up" : " down");
    if (c.mtu) s += fmt::format(" mtu {}", c.mtu);
    return s;
}

std::string describe(const address_change& c) {
    return fmt::format("ip address add {}/{} dev {}", c.spec.local.to_string(), c.spec.prefix_len,
                       c.interface);
}

std::string describe(const route_change& c) {
    std::string s = "ip route add ";
    s += c.spec.dst ? fmt::format("{}/{}", c.spec.dst->to_string(), c.spec.dst_len)
                    : std::string(c.spec.family == AF_INET6 ? "-6 default" : "default");
    if (c.spec.gateway) s += " via " + c.spec.gateway->to_string();
    if (!c.interface.empty()) s += " dev " + c.interface;
    if (c.spec.prefsrc) s += " src " + c.spec.prefsrc->to_string();
    return s;
}

// --- applying ---------------------------------------------------------------------------------

namespace {

// `what` failed with `ec`: a kernel errno (with the kernel's extended-ACK message, when the
// session has one) or a cz/netlink error.
net_error failure(std::error_code ec, const nl::session* s, const std::string& what) {
    std::string text = what;
    if (s && !s->error_detail().message.empty()) text += ": " + s->error_detail().message;
    text += ": " + ec.message();
    if (ec.category() != std::system_category())
        return {ec == nl::errc::invalid_argument || ec == nl::errc::invalid_name
                    ? cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT
                    : cz_agent_ErrorCode_ERROR_INTERNAL,
                0, text};
    auto code = ec.value() == EEXIST   ? cz_agent_ErrorCode_ERROR_ALREADY_EXISTS
                : ec.value() == ENODEV ? cz_agent_ErrorCode_ERROR_NOT_FOUND
                                       : cz_agent_ErrorCode_ERROR_SYSTEM;
    return {code, ec.value(), text};
}

// A netlink session on an io_context of its own, for one RPC.
struct netlink_call {
    asio::io_context io{1};
    std::optional<nl::session> session;

    net_error open(const std::string& what) {
        std::error_code ec;
        session.emplace(io.get_executor(), ec);
        if (ec) return failure(ec, nullptr, what + ": open a NETLINK_ROUTE socket");
        return {};
    }

    // The index of the interface `name`; NOT_FOUND naming it (and those there are) when missing.
    net_error find(const std::string& name, const std::string& what, int& index) {
        std::error_code ec;
        auto link = nl::get_link(*session, name, ec);
        if (ec == std::error_code(ENODEV, std::system_category())) {
            std::string names;
            std::error_code list_ec;
            for (const auto& l : nl::list_links(*session, list_ec))
                names += (names.empty() ? "" : ", ") + l.name;
            return {cz_agent_ErrorCode_ERROR_NOT_FOUND, ENODEV,
                    fmt::format("{}: no interface '{}' in the VM (it has: {})", what, name,
                                list_ec ? "?" : names)};
        }
        if (ec) return failure(ec, &*session, what + ": look up interface " + name);
        index = link.index;
        return {};
    }
};

net_error apply(const link_change& c) {
    auto what = describe(c);
    netlink_call call;
    int index = 0;
    if (auto e = call.open(what)) return e;
    if (auto e = call.find(c.interface, what, index)) return e;
    std::error_code ec;
    if (c.mtu) {
        nl::set_link_mtu(*call.session, index, c.mtu, ec);
        if (ec) return failure(ec, &*call.session, what);
    }
    nl::set_link_up(*call.session, index, c.up, ec);
    if (ec) return failure(ec, &*call.session, what);
    return {};
}

net_error apply(address_change c) {
    auto what = describe(c);
    netlink_call call;
    if (auto e = call.open(what)) return e;
    if (auto e = call.find(c.interface, what, c.spec.index)) return e;
    std::error_code ec;
    nl::add_address(*call.session, c.spec, ec);
    if (ec) return failure(ec, &*call.session, what);
    return {};
}

net_error apply(route_change c) {
    auto what = describe(c);
    netlink_call call;
    if (auto e = call.open(what)) return e;
    if (!c.interface.empty())
        if (auto e = call.find(c.interface, what, c.spec.oif)) return e;
    std::error_code ec;
    nl::add_route(*call.session, c.spec, ec);
    if (ec) return failure(ec, &*call.session, what);
    return {};
}

template <class Change, class Request>
net_error decode_and_apply(const Request& r) {
    Change c;
    if (auto e = decode(r, c)) return e;
    return apply(std::move(c));
}

} // namespace

net_error ip_link_set(const cz_agent_IpLinkSet& r) {
    return decode_and_apply<link_change>(r);
}

net_error ip_addr_add(const cz_agent_IpAddrAdd& r) {
    return decode_and_apply<address_change>(r);
}

net_error ip_route_add_link(const cz_agent_IpRouteAddLink& r) {
    return decode_and_apply<route_change>(r);
}

net_error ip_route_add_default(const cz_agent_IpRouteAddDefault& r) {
    return decode_and_apply<route_change>(r);
}

} // namespace cz::guest
