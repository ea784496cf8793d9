// What the cz/netlink integration tests share: a fresh network namespace per test (a forked
// child that unshares CLONE_NEWNET, so the host's network is never touched), iproute2 as the
// reference, and cz's view and ip's view reduced to comparable sorted lines.
#pragma once

#include <cz/netlink.hpp>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "support/support.hpp"

#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace netns {

// How a body run by run_isolated ended: `failure` says why it failed, `skip` why it could not
// test what it was for (both empty: it passed).
struct outcome {
    std::string failure;
    std::string skip;
};

// Runs `body` in a forked child inside a new network namespace. `body` reports failures by
// throwing `failure` (or any exception), and a skip by throwing `skipped`.
outcome run_isolated(const std::function<void()>& body);

// The usual shape of a test: skip without root, else run isolated and CHECK the outcome; a skip
// inside the child is recorded as the test case's skip.
#define CZ_NETNS_TEST(...)                                                                         \
    do {                                                                                           \
        if (!::cz_test::is_root()) CZ_SKIP("needs root (network namespaces and CAP_NET_ADMIN)");   \
        ::netns::outcome outcome_ = ::netns::run_isolated(__VA_ARGS__);                            \
        CHECK_MESSAGE(outcome_.failure.empty(), outcome_.failure);                                 \
        if (!outcome_.skip.empty()) CZ_SKIP(outcome_.skip);                                        \
    } while (0)

struct failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Thrown by a body that cannot test what it is for on this kernel (a missing driver); the
// message says why, in one line.
struct skipped : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws `failure` with `what` when `ok` is false.
void ensure(bool ok, const std::string& what);
// Throws `failure` showing both sides when a != b.
void ensure_equal(const std::set<std::string>& cz_view, const std::set<std::string>& ip_view,
                  const std::string& what);
void ensure_equal(const std::string& a, const std::string& b, const std::string& what);

// Runs a shell command; returns its standard output. Throws `failure` on a non-zero exit.
std::string sh(const std::string& command);
// Runs a shell command with its output discarded; returns the exit status.
int sh_status(const std::string& command);
// `ip -j ARGS`, parsed.
nlohmann::json ip_json(const std::string& args);

// A session on a fresh io_context, for the child's namespace.
struct cz_session {
    asio::io_context io;
    cz::netlink::session s{io.get_executor()};
};

// Index -> name of every link, from cz.
std::map<int, std::string> link_names(cz::netlink::session& s);

// One line per link / address / route / neighbour, in a vocabulary both sides share.
std::set<std::string> cz_links(cz::netlink::session& s);
std::set<std::string> ip_links();
std::set<std::string> cz_addresses(cz::netlink::session& s);
std::set<std::string> ip_addresses();
std::set<std::string> cz_routes(cz::netlink::session& s, int family);
std::set<std::string> ip_routes(int family);
std::set<std::string> cz_neighbours(cz::netlink::session& s);
std::set<std::string> ip_neighbours();

// Compares every view of cz with iproute2's.
void ensure_same_as_ip(cz::netlink::session& s, const std::string& when);

} // namespace netns
