// cz-init's network RPCs in a real VM (QEMU, TCG here; Debian's kernel, virtio-net, QEMU's
// user-mode networking), all in one VM: the errors first (a missing interface, a bad prefix
// length), then the setup `cz run` makes for user-mode networking — lo and eth0 up,
// 10.0.2.15/24 on eth0, the default route via 10.0.2.2 — judged by busybox's `ip` in a container,
// and by traffic: loopback inside the VM, a container's wget from an HTTP server of this test on
// the host's 127.0.0.1 (slirp's 10.0.2.2 is the host's loopback), and a host port forwarded to a
// container's `nc -l`. The containers share the VM's network namespace (no "network" namespace in
// their config).
//
// Threads: the VM is served on the test thread, the host's side of the agent on a second one, the
// HTTP server on a third. Findings are collected as text and checked on the test thread.
#include "guest/vm/agent_harness.hpp"
#include "support/support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>

using namespace cz_test;
using namespace cz::guest::test;
namespace agent = cz::agent;
using asio::experimental::as_tuple;

namespace {

// --- the host's side of the traffic ----------------------------------------------------------

// A TCP socket on 127.0.0.1, port 0 (the kernel picks): for the HTTP server, or closed again
// to find a free port for the forward.
cz::unique_fd loopback_listener(std::uint16_t& port) {
    cz::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd.get(), 4) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error(std::string("listening on 127.0.0.1: ") + std::strerror(errno));
    port = ntohs(a.sin_port);
    return fd;
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) > 0;
}

// Answers one HTTP request with `body`; keeps the request's head. Gives up after a minute.
class http_server {
public:
    explicit http_server(std::string body) : body_(std::move(body)) {
        listener_ = loopback_listener(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~http_server() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const noexcept { return port_; }
    // What the client sent, up to its blank line (once served() is true).
    std::string request() const { return request_; }
    bool served() const noexcept { return served_; }

private:
    void serve() {
        for (int waited = 0; !stop_ && waited < 60000; waited += 100) {
            if (!readable(listener_.get(), 100)) continue;
            cz::unique_fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!c) continue;
            std::string head;
            char buf[1024];
            while (head.find("\r\n\r\n") == std::string::npos && readable(c.get(), 10000)) {
                auto n = ::read(c.get(), buf, sizeof buf);
                if (n <= 0) break;
                head.append(buf, std::size_t(n));
            }
            std::string answer = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" +
                                 body_;
            (void)!::write(c.get(), answer.data(), answer.size());
            request_ = head;
            served_ = true;
            return;
        }
    }

    std::string body_;
    cz::unique_fd listener_;
    std::uint16_t port_ = 0;
    std::string request_;
    std::atomic<bool> served_{false}, stop_{false};
    std::thread thread_;
};

// Connects to 127.0.0.1:port and reads to the end, again and again until something comes (slirp
// accepts at once and hangs up when nothing listens in the guest yet), for at most a minute.
std::string read_forwarded(std::uint16_t port) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (std::chrono::steady_clock::now() < deadline) {
        cz::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        std::string text;
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            char buf[1024];
            while (readable(fd.get(), 10000)) {
                auto n = ::read(fd.get(), buf, sizeof buf);
                if (n <= 0) break;
                text.append(buf, std::size_t(n));
            }
        }
        if (!text.empty()) return text;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return "";
}

// --- RPCs -------------------------------------------------------------------------------------

template <std::size_t N>
void set(char (&field)[N], const std::string& value) {
    std::error_code ec;
    agent::set_string(field, value, ec);
    if (ec) throw std::runtime_error("too long for its field: " + value);
}

cz_agent_IpLinkSet link_set(const std::string& interface, bool up) {
    cz_agent_IpLinkSet r = cz_agent_IpLinkSet_init_zero;
    set(r.interface, interface);
    r.up = up;
    return r;
}

cz_agent_IpAddrAdd addr_add(const std::string& interface, const std::string& address) {
    cz_agent_IpAddrAdd r = cz_agent_IpAddrAdd_init_zero;
    set(r.interface, interface);
    set(r.address, address);
    return r;
}

cz_agent_IpRouteAddDefault route_default(const std::string& interface, const std::string& gw) {
    cz_agent_IpRouteAddDefault r = cz_agent_IpRouteAddDefault_init_zero;
    set(r.interface, interface);
    set(r.gateway, gw);
    return r;
}

struct findings {
    std::vector<std::string> problems;
    std::vector<std::string> notes;
    void expect(bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    }
};

// The texts an error message must hold. (A function: g++ 12 fails on string literals in a braced
// list inside a coroutine, "array used as initializer".)
template <class... Text>
std::vector<std::string> parts(const Text&... text) {
    return {std::string(text)...};
}

// An RPC that must fail with `code` and `err`, its message holding each of `parts`.
template <class Rpc>
asio::awaitable<void> expect_error(agent::client& c, const Rpc& rpc, cz_agent_ErrorCode code,
                                   int err, std::vector<std::string> parts, const std::string& what,
                                   findings& f) {
    auto [ec, r] = co_await c.async_call(rpc, as_tuple(asio::use_awaitable));
    if (!ec || r.which_result != cz_agent_Response_error_tag) {
        f.problems.push_back(what + ": succeeded");
        co_return;
    }
    const auto& e = r.result.error;
    std::string message(agent::get_string(e.message));
    f.notes.push_back(what + ": " + message);
    f.expect(e.code == code && e.sys_errno == err, what + ": code " + std::to_string(e.code) +
                                                       ", errno " + std::to_string(e.sys_errno) +
                                                       ": " + message);
    for (const auto& p : parts)
        f.expect(message.find(p) != std::string::npos,
                 what + ": message '" + message + "' lacks '" + p + "'");
}

// Runs `script` in a busybox container sharing the VM's network; returns its output (stdout).
asio::awaitable<std::string> run_sh(agent::client& c, const std::string& id,
                                    const std::string& script, findings& f) {
    auto config = container_config(parts("sh", "-c", script));
    auto [out, status] = co_await capture_output(c, id, id, config, 1);
    f.expect(status == 0,
             id + ": `" + script + "` exited with " + std::to_string(status) + ": " + out);
    co_return out;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

asio::awaitable<void> exercise(agent::client& c, std::uint16_t forward_port, http_server& http,
                               const std::string& token, findings& f) {
    co_await c.async_handshake(asio::use_awaitable);
    c.async_run([&](std::error_code e) {
        if (e) f.problems.push_back("connection: " + e.message());
    });

    // Errors, before anything is set up.
    co_await expect_error(c, link_set("eth9", true), cz_agent_ErrorCode_ERROR_NOT_FOUND, ENODEV,
                          parts("ip link set eth9 up: no interface 'eth9' in the VM", "lo", "eth0"),
                          "unknown interface", f);
    co_await expect_error(c, addr_add("eth9", "10.0.2.15/24"), cz_agent_ErrorCode_ERROR_NOT_FOUND,
                          ENODEV, parts("no interface 'eth9'"), "address on an unknown interface",
                          f);
    co_await expect_error(
        c, addr_add("eth0", "10.0.2.15/33"), cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT, 0,
        parts("IpAddrAdd.address '10.0.2.15/33': prefix length 33 is longer than 32"),
        "bad prefix length", f);

    // QEMU user networking, as `cz run` sets it up.
    co_await call(c, link_set("lo", true), "ip link set lo up");
    co_await call(c, link_set("eth0", true), "ip link set eth0 up");
    co_await call(c, addr_add("eth0", "10.0.2.15/24"), "ip address add 10.0.2.15/24 dev eth0");
    co_await call(c, route_default("eth0", "10.0.2.2"), "ip route add default via 10.0.2.2");

    co_await expect_error(
        c, addr_add("eth0", "10.0.2.15/24"), cz_agent_ErrorCode_ERROR_ALREADY_EXISTS, EEXIST,
        parts("ip address add 10.0.2.15/24 dev eth0"), "the same address twice", f);

    auto shown = co_await run_sh(c, "ip", "ip address show; ip route show", f);
    f.notes.push_back("busybox ip in a container:\n" + shown);
    f.expect(has(shown, "inet 127.0.0.1/8 scope host lo"), "lo has no 127.0.0.1/8:\n" + shown);
    f.expect(has(shown, "inet 10.0.2.15/24 scope global eth0"), "eth0's address:\n" + shown);
    f.expect(has(shown, "default via 10.0.2.2 dev eth0"), "no default route:\n" + shown);

    // Loopback inside the VM: busybox's httpd on 127.0.0.1 (listening once it has daemonized),
    // and wget from it, in one container.
    auto lo = co_await run_sh(c, "loopback",
                              "httpd -p 127.0.0.1:7001 -h / && "
                              "wget -q -O - http://127.0.0.1:7001/hello.txt",
                              f);
    f.expect(lo == image_hello_text, "loopback: wget from 127.0.0.1 got '" + lo + "'");

    // Out through slirp to the host's loopback.
    auto page = co_await run_sh(
        c, "wget", "wget -q -O - http://10.0.2.2:" + std::to_string(http.port()) + "/", f);
    f.expect(page == token, "wget got '" + page + "', not '" + token + "'");
    f.expect(http.served() && has(http.request(), "GET / HTTP/1."),
             "the HTTP server saw: '" + http.request() + "'");

    // In through a host port forwarded to the guest's 8080.
    auto listen_config =
        container_config(parts("sh", "-c", "echo fwd-" + token + " | nc -l -p 8080"));
    co_await call(c, create_request("nc", "nc", listen_config), "create nc");
    co_await call(c, process_request<cz_agent_StartProcess>("nc", "nc"), "start nc");
    auto got = read_forwarded(forward_port);
    f.expect(got == "fwd-" + token + "\n",
             "127.0.0.1:" + std::to_string(forward_port) + " -> guest 8080 read '" + got + "'");
    auto w = co_await call(c, process_request<cz_agent_WaitProcess>("nc", "nc"), "wait nc");
    f.expect(w.result.wait_process.status == 0,
             "nc -l exited with " + std::to_string(w.result.wait_process.status));
    co_await call(c, process_request<cz_agent_DeleteProcess>("nc", "nc"), "delete nc");

    co_await call(c, cz_agent_Shutdown(cz_agent_Shutdown_init_zero), "shutdown");
}

} // namespace

TEST_CASE("cz-init network RPCs in a VM: lo and eth0 on QEMU user networking, errors, wget to "
          "the host, a forwarded port") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    std::string token = "net-" + std::to_string(std::random_device{}());
    http_server http(token);
    std::uint16_t forward_port = 0;
    loopback_listener(forward_port); // closed again: the port is free for QEMU

    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.image = busybox_image("guest-agent-net-image");
    cfg.log_level = "debug";
    cz::vm::port_forward fwd;
    fwd.host_port = forward_port;
    fwd.guest_port = 8080;
    cfg.network = cz::vm::user_network{{fwd}};
    agent_vm vm(ctx, cfg);
    vm.start();

    findings f;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            asio::io_context io;
            std::error_code cec;
            auto socket = vm.connect(io, cec);
            if (cec) throw std::runtime_error("no connection to cz-init: " + cec.message());
            agent::client c(std::move(socket));
            run_talk(io, c, exercise(c, forward_port, http, token, f));
        },
        std::chrono::minutes(3), ec);
    for (const auto& n : f.notes)
        MESSAGE(n);
    INFO(vm.vm().console());
    CHECK(!ec);
    CHECK(status.clean()); // cz-init powered the VM off after Shutdown
    for (const auto& p : f.problems)
        CHECK_MESSAGE(false, p);
}
