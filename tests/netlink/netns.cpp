#include "netns.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace nl = cz::netlink;

namespace netns {

// The child's exit status when its body threw `skipped` (the pipe then carries the reason).
constexpr int skipped_status = 77;

outcome run_isolated(const std::function<void()>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {"pipe2 failed", ""};
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return {"fork failed", ""};
    if (pid == 0) {
        ::close(fds[0]);
        std::string error;
        int status = 1;
        try {
            if (::unshare(CLONE_NEWNET) != 0) throw failure("unshare(CLONE_NEWNET) failed");
            body();
            status = 0;
        } catch (const skipped& e) {
            error = e.what();
            if (error.empty()) error = "skipped without a reason";
            status = skipped_status;
        } catch (const std::exception& e) {
            error = e.what();
            if (error.empty()) error = "exception without a message";
        } catch (...) {
            error = "unknown exception";
        }
        std::size_t done = 0;
        while (done < error.size()) {
            auto n = ::write(fds[1], error.data() + done, error.size() - done);
            if (n <= 0) break;
            done += std::size_t(n);
        }
        std::fflush(nullptr);
        ::_exit(status);
    }
    ::close(fds[1]);
    std::string report;
    char buf[4096];
    for (;;) {
        auto n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        report.append(buf, std::size_t(n));
    }
    ::close(fds[0]);
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return {"waitpid failed", ""};
    if (WIFSIGNALED(status))
        return {fmt::format("child killed by signal {}", WTERMSIG(status)), ""};
    if (WEXITSTATUS(status) == skipped_status) return {"", report};
    if (WEXITSTATUS(status) != 0)
        return {report.empty()
                    ? fmt::format("child exited {} without a message", WEXITSTATUS(status))
                    : report,
                ""};
    if (!report.empty()) return {"child passed but wrote: " + report, ""};
    return {};
}

void ensure(bool ok, const std::string& what) {
    if (!ok) throw failure(what);
}

void ensure_equal(const std::set<std::string>& a, const std::set<std::string>& b,
                  const std::string& what) {
    if (a == b) return;
    std::string msg = what + ": cz and ip differ\n  cz only:";
    for (const auto& x : a)
        if (!b.count(x)) msg += "\n    " + x;
    msg += "\n  ip only:";
    for (const auto& x : b)
        if (!a.count(x)) msg += "\n    " + x;
    throw failure(msg);
}

void ensure_equal(const std::string& a, const std::string& b, const std::string& what) {
    if (a != b) throw failure(fmt::format("{}: '{}' != '{}'", what, a, b));
}

std::string sh(const std::string& command) {
    std::FILE* p = ::popen(command.c_str(), "r");
    if (!p) throw failure("popen failed: " + command);
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    if (status != 0) throw failure(fmt::format("'{}' failed (status {})", command, status));
    return out;
}

int sh_status(const std::string& command) {
    int status = std::system((command + " >/dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

nlohmann::json ip_json(const std::string& args) {
    std::string out = sh("ip -j " + args);
    if (out.find_first_not_of(" \n") == std::string::npos) return nlohmann::json::array();
    return nlohmann::json::parse(out);
}

std::map<int, std::string> link_names(nl::session& s) {
    std::map<int, std::string> names;
    for (const auto& l : nl::list_links(s)) names[l.index] = l.name;
    return names;
}

namespace {

std::string scope_name(std::uint8_t scope) {
    switch (scope) {
    case nl::rt_scope::universe: return "global";
    case nl::rt_scope::site: return "site";
    case nl::rt_scope::link: return "link";
    case nl::rt_scope::host: return "host";
    case nl::rt_scope::nowhere: return "nowhere";
    }
    return std::to_string(scope);
}

// The IFF_* names iproute2 prints that this comparison looks at.
const std::vector<std::pair<std::uint32_t, std::string>>& flag_names() {
    static const std::vector<std::pair<std::uint32_t, std::string>> names{
        {nl::iff::loopback, "LOOPBACK"}, {nl::iff::broadcast, "BROADCAST"},
        {nl::iff::pointopoint, "POINTOPOINT"}, {nl::iff::multicast, "MULTICAST"},
        {nl::iff::noarp, "NOARP"}, {nl::iff::up, "UP"}, {nl::iff::lower_up, "LOWER_UP"}};
    return names;
}

std::string str(const nlohmann::json& j, const char* key) {
    return j.contains(key) ? j[key].get<std::string>() : std::string();
}

} // namespace

std::set<std::string> cz_links(nl::session& s) {
    std::set<std::string> out;
    auto links = nl::list_links(s);
    std::map<int, std::string> names;
    for (const auto& l : links) names[l.index] = l.name;
    for (const auto& l : links) {
        std::string flags;
        for (const auto& [bit, name] : flag_names())
            if (l.flags & bit) flags += name + ",";
        out.insert(fmt::format("{} {} mtu {} flags {} state {} addr {} master {} kind {} qlen {}",
                               l.index, l.name, l.mtu, flags, nl::operstate_name(l.operstate),
                               nl::to_string(l.address), l.master ? names[l.master] : "-",
                               l.kind.empty() ? "-" : l.kind, l.txqlen));
    }
    return out;
}

std::set<std::string> ip_links() {
    std::set<std::string> out;
    for (const auto& l : ip_json("-d link show")) {
        std::set<std::string> present;
        for (const auto& f : l["flags"]) present.insert(f.get<std::string>());
        std::string flags;
        for (const auto& [bit, name] : flag_names())
            if (present.count(name)) flags += name + ",";
        std::string kind = l.contains("linkinfo") ? str(l["linkinfo"], "info_kind") : "";
        out.insert(fmt::format("{} {} mtu {} flags {} state {} addr {} master {} kind {} qlen {}",
                               l["ifindex"].get<int>(), str(l, "ifname"), l["mtu"].get<unsigned>(),
                               flags, str(l, "operstate"), str(l, "address"),
                               l.contains("master") ? str(l, "master") : "-",
                               kind.empty() ? "-" : kind, l.value("txqlen", 0u)));
    }
    return out;
}

std::set<std::string> cz_addresses(nl::session& s) {
    std::set<std::string> out;
    for (const auto& a : nl::list_addresses(s)) {
        std::string line = fmt::format("{} {} {}/{} scope {}", a.index,
                                       a.family == AF_INET ? "inet" : "inet6", a.local.to_string(),
                                       a.prefix_len, scope_name(a.scope));
        if (a.peer) line += " peer " + a.peer->to_string();
        if (a.broadcast) line += " brd " + a.broadcast->to_string();
        if (!a.label.empty()) line += " label " + a.label;
        if (a.flags & nl::ifa_f::nodad) line += " nodad";
        if (a.flags & nl::ifa_f::noprefixroute) line += " noprefixroute";
        out.insert(line);
    }
    return out;
}

std::set<std::string> ip_addresses() {
    std::set<std::string> out;
    for (const auto& l : ip_json("addr show")) {
        for (const auto& a : l["addr_info"]) {
            std::string line =
                fmt::format("{} {} {}/{} scope {}", l["ifindex"].get<int>(), str(a, "family"),
                            str(a, "local"), a["prefixlen"].get<int>(), str(a, "scope"));
            if (a.contains("address")) line += " peer " + str(a, "address");
            if (a.contains("broadcast")) line += " brd " + str(a, "broadcast");
            if (a.contains("label")) line += " label " + str(a, "label");
            if (a.value("nodad", false)) line += " nodad";
            if (a.value("noprefixroute", false)) line += " noprefixroute";
            out.insert(line);
        }
    }
    return out;
}

std::set<std::string> cz_routes(nl::session& s, int family) {
    auto names = link_names(s);
    std::set<std::string> out;
    for (const auto& r : nl::list_routes(s, family)) {
        // What `ip route show` lists: the main table, no cloned (cache) entries.
        if (r.table != nl::rt_table::main || (r.flags & 0x200 /* RTM_F_CLONED */)) continue;
        std::string line = nl::destination_string(r);
        if (r.gateway) line += " via " + r.gateway->to_string();
        if (r.oif) line += " dev " + names[r.oif];
        if (r.scope != nl::rt_scope::universe) line += " scope " + scope_name(r.scope);
        if (r.prefsrc) line += " src " + r.prefsrc->to_string();
        if (r.priority) line += fmt::format(" metric {}", *r.priority);
        if (r.flags & nl::rtnh_f::onlink) line += " onlink";
        out.insert(line);
    }
    return out;
}

std::set<std::string> ip_routes(int family) {
    std::set<std::string> out;
    for (const auto& r : ip_json(family == AF_INET6 ? "-6 route show" : "-4 route show")) {
        std::string line = str(r, "dst");
        if (r.contains("gateway")) line += " via " + str(r, "gateway");
        if (r.contains("dev")) line += " dev " + str(r, "dev");
        if (r.contains("scope")) line += " scope " + str(r, "scope");
        if (r.contains("prefsrc")) line += " src " + str(r, "prefsrc");
        if (r.contains("metric")) line += fmt::format(" metric {}", r["metric"].get<unsigned>());
        for (const auto& f : r["flags"])
            if (f == "onlink") line += " onlink";
        out.insert(line);
    }
    return out;
}

std::set<std::string> cz_neighbours(nl::session& s) {
    auto names = link_names(s);
    std::set<std::string> out;
    for (const auto& n : nl::list_neighbours(s)) {
        if (n.state & nl::nud::noarp) continue; // as `ip neigh show`
        std::string states;
        for (auto name : nl::neighbour_state_names(n.state)) states += std::string(name) + ",";
        out.insert(fmt::format("{} dev {} lladdr {} {}", n.dst.to_string(), names[n.index],
                               nl::to_string(n.lladdr), states));
    }
    return out;
}

std::set<std::string> ip_neighbours() {
    std::set<std::string> out;
    for (const auto& n : ip_json("neigh show")) {
        std::string states;
        for (const auto& st : n["state"]) states += st.get<std::string>() + ",";
        out.insert(fmt::format("{} dev {} lladdr {} {}", str(n, "dst"), str(n, "dev"),
                               str(n, "lladdr"), states));
    }
    return out;
}

void ensure_same_as_ip(nl::session& s, const std::string& when) {
    // Some state changes after the request that caused it has been answered (operstate through
    // linkwatch, IPv6 link-local addresses and routes when a carrier appears), so cz's view and
    // ip's, taken moments apart, may straddle such a change: compare again for up to 2 s, and
    // fail on a difference that does not settle.
    for (int attempt = 0;; ++attempt) {
        try {
            ensure_equal(cz_links(s), ip_links(), when + ": links");
            ensure_equal(cz_addresses(s), ip_addresses(), when + ": addresses");
            ensure_equal(cz_routes(s, AF_INET), ip_routes(AF_INET), when + ": IPv4 routes");
            ensure_equal(cz_routes(s, AF_INET6), ip_routes(AF_INET6), when + ": IPv6 routes");
            ensure_equal(cz_neighbours(s), ip_neighbours(), when + ": neighbours");
            return;
        } catch (const failure&) {
            if (attempt == 40) throw;
            ::usleep(50 * 1000);
        }
    }
}

} // namespace netns
