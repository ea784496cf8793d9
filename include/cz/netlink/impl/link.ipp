// Out-of-line definitions for cz/netlink/link.hpp.
#pragma once

#include <cz/netlink/link.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <cctype>

namespace cz::netlink {

CZ_DECL std::string to_string(const hw_address& a) {
    std::string out;
    for (std::size_t i = 0; i < a.size; ++i) {
        if (i) out += ':';
        out += fmt::format("{:02x}", a.bytes[i]);
    }
    return out;
}

CZ_DECL hw_address parse_hw_address(std::string_view text, std::error_code& ec) noexcept {
    ec.clear();
    hw_address a;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::size_t i = 0;
    while (i < text.size()) {
        int digits = 0;
        unsigned value = 0;
        while (i < text.size() && text[i] != ':' && digits < 3) {
            int d = hex(text[i]);
            if (d < 0) break;
            value = value * 16 + unsigned(d);
            ++digits;
            ++i;
        }
        if (digits == 0 || digits > 2 || a.size == a.bytes.size()) {
            ec = errc::invalid_hw_address;
            return {};
        }
        a.bytes[a.size++] = std::uint8_t(value);
        if (i == text.size()) break;
        if (text[i] != ':' || i + 1 == text.size()) {
            ec = errc::invalid_hw_address;
            return {};
        }
        ++i;
    }
    if (a.size == 0) ec = errc::invalid_hw_address;
    return a;
}

CZ_DECL std::string_view operstate_name(std::uint8_t operstate) noexcept {
    switch (operstate) {
    case if_oper::unknown:
        return "UNKNOWN";
    case if_oper::notpresent:
        return "NOTPRESENT";
    case if_oper::down:
        return "DOWN";
    case if_oper::lowerlayerdown:
        return "LOWERLAYERDOWN";
    case if_oper::testing:
        return "TESTING";
    case if_oper::dormant:
        return "DORMANT";
    case if_oper::up:
        return "UP";
    }
    return "UNKNOWN";
}

CZ_DECL bool valid_link_name(std::string_view name) noexcept {
    if (name.empty() || name.size() >= ifnamsiz) return false;
    for (char c : name)
        if (c == '/' || c == ':' || c == '\0' || std::isspace(static_cast<unsigned char>(c)))
            return false;
    return true;
}

namespace detail {

inline bool get_hw_address(bytes_view v, hw_address& out) noexcept {
    if (v.size() > out.bytes.size()) return false;
    // SAFETY: v.size() <= bytes.size(), checked above.
    std::memcpy(out.bytes.data(), v.data(), v.size());
    out.size = v.size();
    return true;
}

inline bool parse_stats64(bytes_view v, link_statistics& st) noexcept {
    // rtnl_link_stats64 grew over kernel versions; the 12 counters cz reports were all in the
    // first version (23 u64 fields). Fields are read by index from a size-checked copy.
    constexpr std::size_t first_version = 23 * sizeof(std::uint64_t);
    if (v.size() < first_version) return false;
    std::array<std::uint64_t, 23> f;
    // SAFETY: v.size() >= sizeof f, checked above.
    std::memcpy(f.data(), v.data(), sizeof f);
    st.rx_packets = f[0];
    st.tx_packets = f[1];
    st.rx_bytes = f[2];
    st.tx_bytes = f[3];
    st.rx_errors = f[4];
    st.tx_errors = f[5];
    st.rx_dropped = f[6];
    st.tx_dropped = f[7];
    st.multicast = f[8];
    st.collisions = f[9];
    st.rx_over_errors = f[11];
    st.tx_carrier_errors = f[17];
    return true;
}

inline void begin_link_request(message_builder& b, std::uint16_t type, std::uint16_t flags,
                               int index) {
    b.clear();
    b.begin(type, std::uint16_t(flags | nlm_f::ack));
    link_header h;
    h.family = AF_UNSPEC;
    h.index = index;
    b.put(h);
}

inline void throw_link_error(std::error_code ec, const session& s, const std::string& what) {
    detail::throw_with_kernel_message(ec, s, what);
}

} // namespace detail

CZ_DECL bool parse_link(const message& m, link_info& out, std::error_code& ec) {
    ec.clear();
    out = {};
    link_header h;
    if (m.header.type != rtm::newlink) {
        ec = errc::unexpected_message;
        return false;
    }
    if (!decode(m.payload, h)) {
        ec = errc::bad_payload;
        return false;
    }
    out.index = h.index;
    out.type = h.type;
    out.flags = h.flags;
    std::array<std::optional<bytes_view>, ifla::max_mtu + 1> t;
    if (!parse_attributes(m.payload.subspan(sizeof h), t, ec)) return false;
    auto bad = [&] {
        ec = errc::bad_payload;
        return false;
    };
    if (t[ifla::ifname]) out.name = std::string(get_string(*t[ifla::ifname]));
    if (t[ifla::mtu] && !get_integer(*t[ifla::mtu], out.mtu)) return bad();
    if (t[ifla::txqlen] && !get_integer(*t[ifla::txqlen], out.txqlen)) return bad();
    if (t[ifla::operstate] && !get_integer(*t[ifla::operstate], out.operstate)) return bad();
    if (t[ifla::master] && !get_integer(*t[ifla::master], out.master)) return bad();
    if (t[ifla::link] && !get_integer(*t[ifla::link], out.link)) return bad();
    if (t[ifla::qdisc]) out.qdisc = std::string(get_string(*t[ifla::qdisc]));
    if (t[ifla::address] && !detail::get_hw_address(*t[ifla::address], out.address)) return bad();
    if (t[ifla::broadcast] && !detail::get_hw_address(*t[ifla::broadcast], out.broadcast))
        return bad();
    if (t[ifla::stats64]) {
        link_statistics st;
        if (!detail::parse_stats64(*t[ifla::stats64], st)) return bad();
        out.stats = st;
    }
    if (t[ifla::linkinfo]) {
        std::array<std::optional<bytes_view>, ifla_info::slave_kind + 1> info;
        if (!parse_attributes(*t[ifla::linkinfo], info, ec)) return false;
        if (info[ifla_info::kind]) out.kind = std::string(get_string(*info[ifla_info::kind]));
        if (info[ifla_info::slave_kind])
            out.slave_kind = std::string(get_string(*info[ifla_info::slave_kind]));
    }
    return true;
}

CZ_DECL std::vector<link_info> list_links(session& s, std::error_code& ec) {
    std::vector<link_info> links;
    message_builder b;
    b.begin(rtm::getlink, nlm_f::dump);
    link_header h;
    h.family = AF_UNSPEC;
    b.put(h);
    b.attr_u32(ifla::ext_mask, rtext_filter::vf);
    detail::dump(
        s, b, [&] { links.clear(); },
        [&](const message& m, std::error_code& hec) {
            link_info l;
            if (parse_link(m, l, hec)) links.push_back(std::move(l));
        },
        ec);
    if (ec) links.clear();
    return links;
}

CZ_DECL std::vector<link_info> list_links(session& s) {
    std::error_code ec;
    auto links = list_links(s, ec);
    if (ec) detail::throw_link_error(ec, s, "list links");
    return links;
}

namespace detail {
inline link_info get_link_impl(session& s, message_builder& b, std::error_code& ec) {
    link_info out;
    bool found = false;
    s.execute(
        b,
        [&](const message& m, std::error_code& hec) {
            if (parse_link(m, out, hec)) found = true;
        },
        ec);
    if (!ec && !found) ec = errc::no_such_link;
    return out;
}
} // namespace detail

CZ_DECL link_info get_link(session& s, std::string_view name, std::error_code& ec) {
    if (!valid_link_name(name)) {
        ec = errc::invalid_name;
        return {};
    }
    message_builder b;
    detail::begin_link_request(b, rtm::getlink, 0, 0);
    b.attr_string(ifla::ifname, name);
    b.attr_u32(ifla::ext_mask, rtext_filter::vf);
    return detail::get_link_impl(s, b, ec);
}

CZ_DECL link_info get_link(session& s, std::string_view name) {
    std::error_code ec;
    auto l = get_link(s, name, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("link {}", name));
    return l;
}

CZ_DECL link_info get_link(session& s, int index, std::error_code& ec) {
    if (index <= 0) {
        ec = errc::invalid_argument;
        return {};
    }
    message_builder b;
    detail::begin_link_request(b, rtm::getlink, 0, index);
    b.attr_u32(ifla::ext_mask, rtext_filter::vf);
    return detail::get_link_impl(s, b, ec);
}

CZ_DECL link_info get_link(session& s, int index) {
    std::error_code ec;
    auto l = get_link(s, index, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("link {}", index));
    return l;
}

CZ_DECL void set_link_up(session& s, int index, bool up, std::error_code& ec) {
    message_builder b;
    b.begin(rtm::newlink, nlm_f::ack);
    link_header h;
    h.family = AF_UNSPEC;
    h.index = index;
    h.change = iff::up;
    h.flags = up ? iff::up : 0;
    b.put(h);
    s.execute(b, ec);
}

CZ_DECL void set_link_up(session& s, int index, bool up) {
    std::error_code ec;
    set_link_up(s, index, up, ec);
    if (ec)
        detail::throw_link_error(ec, s, fmt::format("set link {} {}", index, up ? "up" : "down"));
}

CZ_DECL void set_link_mtu(session& s, int index, std::uint32_t mtu, std::error_code& ec) {
    message_builder b;
    detail::begin_link_request(b, rtm::newlink, 0, index);
    b.attr_u32(ifla::mtu, mtu);
    s.execute(b, ec);
}

CZ_DECL void set_link_mtu(session& s, int index, std::uint32_t mtu) {
    std::error_code ec;
    set_link_mtu(s, index, mtu, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("set link {} mtu {}", index, mtu));
}

CZ_DECL void rename_link(session& s, int index, std::string_view name, std::error_code& ec) {
    if (!valid_link_name(name)) {
        ec = errc::invalid_name;
        return;
    }
    message_builder b;
    detail::begin_link_request(b, rtm::newlink, 0, index);
    b.attr_string(ifla::ifname, name);
    s.execute(b, ec);
}

CZ_DECL void rename_link(session& s, int index, std::string_view name) {
    std::error_code ec;
    rename_link(s, index, name, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("rename link {} to {}", index, name));
}

CZ_DECL void set_link_master(session& s, int index, int master_index, std::error_code& ec) {
    message_builder b;
    detail::begin_link_request(b, rtm::newlink, 0, index);
    b.attr_u32(ifla::master, std::uint32_t(master_index));
    s.execute(b, ec);
}

CZ_DECL void set_link_master(session& s, int index, int master_index) {
    std::error_code ec;
    set_link_master(s, index, master_index, ec);
    if (ec)
        detail::throw_link_error(ec, s, fmt::format("set link {} master {}", index, master_index));
}

CZ_DECL void set_link_address(session& s, int index, const hw_address& mac, std::error_code& ec) {
    if (mac.empty()) {
        ec = errc::invalid_hw_address;
        return;
    }
    message_builder b;
    detail::begin_link_request(b, rtm::newlink, 0, index);
    b.attr(ifla::address, mac.view());
    s.execute(b, ec);
}

CZ_DECL void set_link_address(session& s, int index, const hw_address& mac) {
    std::error_code ec;
    set_link_address(s, index, mac, ec);
    if (ec)
        detail::throw_link_error(ec, s,
                                 fmt::format("set link {} address {}", index, to_string(mac)));
}

CZ_DECL void delete_link(session& s, int index, std::error_code& ec) {
    message_builder b;
    detail::begin_link_request(b, rtm::dellink, 0, index);
    s.execute(b, ec);
}

CZ_DECL void delete_link(session& s, int index) {
    std::error_code ec;
    delete_link(s, index, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("delete link {}", index));
}

namespace detail {
// RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL, the name and IFLA_LINKINFO { IFLA_INFO_KIND }; the
// caller may add IFLA_INFO_DATA before end_nested(info) and send.
inline std::size_t begin_create(message_builder& b, std::string_view name, std::string_view kind) {
    detail::begin_link_request(b, rtm::newlink, nlm_f::create | nlm_f::excl, 0);
    b.attr_string(ifla::ifname, name);
    std::size_t info = b.begin_nested(ifla::linkinfo);
    b.attr_string(ifla_info::kind, kind);
    return info;
}
} // namespace detail

CZ_DECL void create_link(session& s, std::string_view name, std::string_view kind,
                         std::error_code& ec) {
    if (!valid_link_name(name)) {
        ec = errc::invalid_name;
        return;
    }
    if (kind.empty()) {
        ec = errc::invalid_argument;
        return;
    }
    message_builder b;
    b.end_nested(detail::begin_create(b, name, kind));
    s.execute(b, ec);
}

CZ_DECL void create_link(session& s, std::string_view name, std::string_view kind) {
    std::error_code ec;
    create_link(s, name, kind, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("create {} link {}", kind, name));
}

CZ_DECL void create_veth(session& s, std::string_view name, std::string_view peer,
                         std::error_code& ec) {
    if (!valid_link_name(name) || !valid_link_name(peer)) {
        ec = errc::invalid_name;
        return;
    }
    message_builder b;
    std::size_t info = detail::begin_create(b, name, "veth");
    std::size_t data = b.begin_nested(ifla_info::data);
    // VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's own IFLA_* attributes.
    std::size_t peer_info = b.begin_nested(veth_info_peer);
    link_header ph;
    ph.family = AF_UNSPEC;
    b.put(ph);
    b.attr_string(ifla::ifname, peer);
    b.end_nested(peer_info);
    b.end_nested(data);
    b.end_nested(info);
    s.execute(b, ec);
}

CZ_DECL void create_veth(session& s, std::string_view name, std::string_view peer) {
    std::error_code ec;
    create_veth(s, name, peer, ec);
    if (ec) detail::throw_link_error(ec, s, fmt::format("create veth {} peer {}", name, peer));
}

CZ_DECL void create_bridge(session& s, std::string_view name, std::error_code& ec) {
    create_link(s, name, "bridge", ec);
}
CZ_DECL void create_bridge(session& s, std::string_view name) {
    create_link(s, name, "bridge");
}

CZ_DECL void create_dummy(session& s, std::string_view name, std::error_code& ec) {
    create_link(s, name, "dummy", ec);
}
CZ_DECL void create_dummy(session& s, std::string_view name) {
    create_link(s, name, "dummy");
}

} // namespace cz::netlink
