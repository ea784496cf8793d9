// Fuzzes the decoding of cz-init's network RPCs (guest/agent/net.hpp): interface names, CIDR
// texts, gateways and sources as the host sends them. The input is a flags byte (bit 0: up and
// ipv6), then interface, first text and second text, split at the first two 0xff bytes; each is
// cut to its field's size, as nanopb would have refused anything longer. Decoding does no I/O.
#include "agent/net.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace {

template <std::size_t N>
void put(char (&field)[N], std::string_view text) {
    std::size_t n = std::min(text.size(), N - 1);
    std::memcpy(field, text.data(), n);
    field[n] = '\0';
}

void check(const cz::guest::net_error& e) {
    if (e && (e.code != cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT || e.message.empty() ||
              e.sys_errno != 0))
        __builtin_trap();
}

std::uint8_t max_length(const asio::ip::address& a) {
    return a.is_v4() ? 32 : 128;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size == 0) return 0;
    bool flag = data[0] & 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto cut1 = in.find('\xff');
    std::string_view interface = in.substr(0, cut1);
    std::string_view rest = cut1 == std::string_view::npos ? "" : in.substr(cut1 + 1);
    auto cut2 = rest.find('\xff');
    std::string_view first = rest.substr(0, cut2);
    std::string_view second = cut2 == std::string_view::npos ? "" : rest.substr(cut2 + 1);

    cz_agent_IpLinkSet link = cz_agent_IpLinkSet_init_zero;
    put(link.interface, interface);
    link.up = flag;
    cz::guest::link_change lc;
    auto e = cz::guest::decode(link, lc);
    check(e);
    if (!e && cz::guest::describe(lc).empty()) __builtin_trap();

    cz_agent_IpAddrAdd addr = cz_agent_IpAddrAdd_init_zero;
    put(addr.interface, interface);
    put(addr.address, first);
    cz::guest::address_change ac;
    e = cz::guest::decode(addr, ac);
    check(e);
    if (!e && ac.spec.prefix_len > max_length(ac.spec.local)) __builtin_trap();

    cz_agent_IpRouteAddLink route = cz_agent_IpRouteAddLink_init_zero;
    put(route.interface, interface);
    put(route.destination, first);
    put(route.source, second);
    cz::guest::route_change rc;
    e = cz::guest::decode(route, rc);
    check(e);
    if (!e) {
        if (!rc.spec.dst || rc.spec.dst_len > max_length(*rc.spec.dst)) __builtin_trap();
        // A decoded destination is a network: parsing what describe() says gives it back.
        cz::guest::ip_prefix again;
        auto text = cz::guest::describe(rc).substr(std::strlen("ip route add "));
        text = text.substr(0, text.find(' '));
        if (cz::guest::parse_prefix(text, "again", again) || again.address != *rc.spec.dst ||
            again.length != rc.spec.dst_len)
            __builtin_trap();
    }

    cz_agent_IpRouteAddDefault deflt = cz_agent_IpRouteAddDefault_init_zero;
    put(deflt.interface, interface);
    put(deflt.gateway, first);
    deflt.ipv6 = flag;
    e = cz::guest::decode(deflt, rc);
    check(e);
    if (!e && (rc.spec.dst || (!rc.spec.gateway && rc.interface.empty()))) __builtin_trap();
    return 0;
}
