// cz net link|addr|route|neigh — the host's (or the current namespace's) network as cz/netlink
// sees it, in the shape of `ip -br link`, `ip -br address`, `ip route` and `ip neigh`.
#include "cli.hpp"

#include <cz/netlink.hpp>

#include <asio/io_context.hpp>
#include <fmt/format.h>

#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cz::cli {

namespace {

std::string flag_list(std::uint32_t flags) {
    using namespace cz::netlink;
    const std::pair<std::uint32_t, const char*> names[] = {{iff::loopback, "LOOPBACK"},
                                                           {iff::broadcast, "BROADCAST"},
                                                           {iff::pointopoint, "POINTOPOINT"},
                                                           {iff::multicast, "MULTICAST"},
                                                           {iff::noarp, "NOARP"},
                                                           {iff::up, "UP"},
                                                           {iff::lower_up, "LOWER_UP"}};
    std::string out;
    for (const auto& [bit, name] : names)
        if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
    return "<" + out + ">";
}

std::string scope_name(std::uint8_t scope) {
    switch (scope) {
    case netlink::rt_scope::universe:
        return "global";
    case netlink::rt_scope::site:
        return "site";
    case netlink::rt_scope::link:
        return "link";
    case netlink::rt_scope::host:
        return "host";
    }
    return std::to_string(scope);
}

std::string protocol_name(std::uint8_t p) {
    switch (p) {
    case netlink::rtprot::kernel:
        return "kernel";
    case netlink::rtprot::boot:
        return "boot";
    case netlink::rtprot::static_:
        return "static";
    }
    return std::to_string(p);
}

int family_of(bool v4, bool v6) {
    return v4 && !v6 ? AF_INET : v6 && !v4 ? AF_INET6 : 0;
}

} // namespace

struct net_link_options {
    bool stats = false;
};

int run_net_link(const net_link_options& o) {
    asio::io_context io;
    netlink::session s(io.get_executor());
    for (const auto& l : netlink::list_links(s)) {
        std::string name = l.name;
        if (l.link) name += "@" + std::to_string(l.link);
        fmt::print("{:<16} {:<8} {:<17} {}{}\n", name, netlink::operstate_name(l.operstate),
                   netlink::to_string(l.address), flag_list(l.flags),
                   l.kind.empty() ? "" : " " + l.kind);
        if (o.stats && l.stats)
            fmt::print("    rx {} packets {} bytes, tx {} packets {} bytes\n", l.stats->rx_packets,
                       l.stats->rx_bytes, l.stats->tx_packets, l.stats->tx_bytes);
    }
    return exit_ok;
}

struct net_addr_options {
    bool v4 = false;
    bool v6 = false;
};

int run_net_addr(const net_addr_options& o) {
    asio::io_context io;
    netlink::session s(io.get_executor());
    auto links = netlink::list_links(s);
    std::map<int, std::vector<std::string>> by_link;
    for (const auto& a : netlink::list_addresses(s, family_of(o.v4, o.v6)))
        by_link[a.index].push_back(netlink::to_string(a));
    for (const auto& l : links) {
        std::string line =
            fmt::format("{:<16} {:<8}", l.name, netlink::operstate_name(l.operstate));
        for (const auto& a : by_link[l.index])
            line += " " + a;
        fmt::print("{}\n", line);
    }
    return exit_ok;
}

struct net_route_options {
    bool v4 = false;
    bool v6 = false;
    bool all_tables = false;
};

int run_net_route(const net_route_options& o) {
    asio::io_context io;
    netlink::session s(io.get_executor());
    std::map<int, std::string> names;
    for (const auto& l : netlink::list_links(s))
        names[l.index] = l.name;
    for (const auto& r : netlink::list_routes(s, family_of(o.v4, o.v6))) {
        if (!o.all_tables && r.table != netlink::rt_table::main) continue;
        std::string line = netlink::destination_string(r);
        if (r.gateway) line += " via " + r.gateway->to_string();
        if (r.oif) line += " dev " + names[r.oif];
        if (r.protocol != netlink::rtprot::boot) line += " proto " + protocol_name(r.protocol);
        if (r.scope != netlink::rt_scope::universe) line += " scope " + scope_name(r.scope);
        if (r.prefsrc) line += " src " + r.prefsrc->to_string();
        if (r.priority) line += fmt::format(" metric {}", *r.priority);
        if (r.flags & netlink::rtnh_f::onlink) line += " onlink";
        if (o.all_tables) line += fmt::format(" table {}", r.table);
        fmt::print("{}\n", line);
    }
    return exit_ok;
}

struct net_neigh_options {};

int run_net_neigh(const net_neigh_options&) {
    asio::io_context io;
    netlink::session s(io.get_executor());
    std::map<int, std::string> names;
    for (const auto& l : netlink::list_links(s))
        names[l.index] = l.name;
    for (const auto& n : netlink::list_neighbours(s)) {
        if (n.state & netlink::nud::noarp) continue; // as ip neigh
        std::string line = n.dst.to_string() + " dev " + names[n.index];
        if (!n.lladdr.empty()) line += " lladdr " + netlink::to_string(n.lladdr);
        for (auto st : netlink::neighbour_state_names(n.state))
            line += " " + std::string(st);
        fmt::print("{}\n", line);
    }
    return exit_ok;
}

void register_netlink_commands(context ctx) {
    auto* net = ctx.app.add_subcommand("net", "Show network links, addresses, routes and "
                                              "neighbours through rtnetlink (like ip -br)");
    net->require_subcommand(1);

    // cz net link
    add_command<net_link_options>(
        ctx, *net, "link", "List links: name, state, address, flags",
        [](CLI::App& cmd, net_link_options& o) {
            cmd.add_flag("-s,--stats", o.stats, "Add packet and byte counters");
        },
        run_net_link);

    // cz net addr
    add_command<net_addr_options>(
        ctx, *net, "addr", "List links with their addresses",
        [](CLI::App& cmd, net_addr_options& o) {
            cmd.add_flag("-4", o.v4, "IPv4 only");
            cmd.add_flag("-6", o.v6, "IPv6 only");
        },
        run_net_addr);

    // cz net route
    add_command<net_route_options>(
        ctx, *net, "route", "List the main routing table, IPv4 and IPv6 (-4, -6 to choose)",
        [](CLI::App& cmd, net_route_options& o) {
            cmd.add_flag("-4", o.v4, "IPv4 only");
            cmd.add_flag("-6", o.v6, "IPv6 only");
            cmd.add_flag("--all-tables", o.all_tables, "Every table, not just main");
        },
        run_net_route);

    // cz net neigh
    add_command<net_neigh_options>(
        ctx, *net, "neigh", "List the neighbour (ARP/NDP) table",
        [](CLI::App&, net_neigh_options&) {}, run_net_neigh);
}

} // namespace cz::cli
