// A fault-injecting HTTP proxy on 127.0.0.1 for the registry client's tests: it sits between
// the client and a server (docker-registry), reads each request, asks the test what to do with
// it, and then passes it on, passes it on and spoils the answer (a reset, a clean close or a
// stall part-way into the body, a flipped byte), or answers it itself (a 500, a 429, a redirect,
// an oversized manifest). Every request is recorded with its headers and the time it came.
//
// One request per upstream connection: each passed request goes out with `Connection: close`
// and its answer comes back with it, so the client never reuses a connection whose answer the
// proxy spoiled (answers the proxy writes itself may keep the connection, as the test says).
// Blocking sockets, a thread per connection; the destructor shuts down whatever is still open.
#pragma once

#include "support/support.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cz_test {

struct proxied_request {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::chrono::steady_clock::time_point at;

    // The first header named `name`, compared case-insensitively.
    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [n, v] : headers)
            if (n.size() == name.size() &&
                std::equal(n.begin(), n.end(), name.begin(),
                           [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
                return v;
        return std::nullopt;
    }
    bool is_blob_get() const {
        return method == "GET" && target.find("/blobs/sha256:") != std::string::npos;
    }
    bool is_manifest_get() const {
        return method == "GET" && target.find("/manifests/") != std::string::npos;
    }
};

// What the proxy does with one request.
struct fault {
    enum class kind {
        pass,        // forward it and its answer untouched
        reset_after, // forward `at` bytes of the answer's body, then reset the connection (RST)
        close_after, // forward `at` bytes of the body, then close cleanly (FIN): a body shorter
                     // than its Content-Length
        stall_after, // forward `at` bytes of the body, then send nothing more until the client
                     // gives up
        flip_byte,   // forward the answer with the body's byte at `at` inverted
        answer,      // write `response` instead of asking the server
    };
    kind what = kind::pass;
    std::size_t at = 0;
    std::string response;
    // A wait before the request goes on (or is answered): a slow server.
    std::chrono::milliseconds delay{0};

    static fault pass() { return {}; }
    static fault slow(std::chrono::milliseconds d) { return {kind::pass, 0, {}, d}; }
    static fault reset(std::size_t at) { return {kind::reset_after, at, {}}; }
    static fault close(std::size_t at) { return {kind::close_after, at, {}}; }
    static fault stall(std::size_t at) { return {kind::stall_after, at, {}}; }
    static fault flip(std::size_t at) { return {kind::flip_byte, at, {}}; }
    static fault respond(std::string r) { return {kind::answer, 0, std::move(r)}; }
};

// A whole HTTP/1.1 response with a Content-Length body, for fault::respond.
inline std::string http_answer(int status, std::string_view reason,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view body = {}) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    for (const auto& [n, v] : headers)
        r += n + ": " + v + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    r += body;
    return r;
}

class fault_proxy {
    using tcp = asio::ip::tcp;

public:
    // Called for every request with the requests seen before it (this one included, last).
    using decide_fn = std::function<fault(const std::vector<proxied_request>& seen)>;

    fault_proxy(tcp::endpoint upstream, decide_fn decide)
        : upstream_(upstream), decide_(std::move(decide)),
          acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~fault_proxy() {
        stopping_ = true;
        std::error_code ignored;
        tcp::socket wake(io_); // accept() returns with this connection and sees stopping_
        wake.connect(acceptor_.local_endpoint(), ignored);
        accept_thread_.join();
        {
            std::lock_guard lock(mutex_);
            for (int fd : open_)
                ::shutdown(fd, SHUT_RDWR);
        }
        for (auto& t : connections_)
            t.join();
    }
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string host() const { return "127.0.0.1:" + std::to_string(port()); }
    std::vector<proxied_request> requests() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }

private:
    void accept_loop() {
        for (;;) {
            auto client = std::make_shared<tcp::socket>(io_);
            std::error_code ec;
            acceptor_.accept(*client, ec);
            if (stopping_) return;
            if (ec) continue;
            track(*client);
            connections_.emplace_back([this, client] {
                serve(*client);
                close(*client, false);
            });
        }
    }

    void track(tcp::socket& s) {
        std::lock_guard lock(mutex_);
        open_.insert(s.native_handle());
    }
    // Closes `s` (with a reset when `reset`), and forgets it first so that the destructor never
    // shuts down a descriptor number reused since.
    void close(tcp::socket& s, bool reset) {
        std::lock_guard lock(mutex_);
        if (!s.is_open()) return;
        open_.erase(s.native_handle());
        std::error_code ignored;
        if (reset) s.set_option(asio::socket_base::linger(true, 0), ignored);
        s.close(ignored);
    }

    // Reads up to and including the empty line that ends a head; "" at the end of the stream.
    static std::string read_head(tcp::socket& s, std::string& buffered) {
        for (;;) {
            auto end = buffered.find("\r\n\r\n");
            if (end != std::string::npos) {
                auto head = buffered.substr(0, end + 4);
                buffered.erase(0, end + 4);
                return head;
            }
            char buf[16384];
            std::error_code ec;
            auto n = s.read_some(asio::buffer(buf), ec);
            if (ec) return {};
            buffered.append(buf, n);
        }
    }

    static proxied_request parse_request(const std::string& head) {
        proxied_request r;
        r.at = std::chrono::steady_clock::now();
        auto line_end = head.find("\r\n");
        auto line = head.substr(0, line_end);
        auto sp1 = line.find(' '), sp2 = line.rfind(' ');
        r.method = line.substr(0, sp1);
        r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        for (auto pos = line_end + 2; pos < head.size();) {
            auto next = head.find("\r\n", pos);
            auto h = head.substr(pos, next - pos);
            pos = next + 2;
            auto colon = h.find(':');
            if (h.empty() || colon == std::string::npos) continue;
            auto value = h.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.erase(0, 1);
            r.headers.emplace_back(h.substr(0, colon), value);
        }
        return r;
    }

    // `head` with every Connection header replaced by `Connection: close`.
    static std::string closing(const std::string& head) {
        std::string out;
        for (std::size_t pos = 0; pos < head.size();) {
            auto next = head.find("\r\n", pos);
            auto line = head.substr(pos, next - pos);
            pos = next + 2;
            if (line.empty()) break;
            std::string lower = line.substr(0, 11);
            for (auto& c : lower)
                c = static_cast<char>(std::tolower(c));
            if (lower != "connection:") out += line + "\r\n";
        }
        return out + "Connection: close\r\n\r\n";
    }

    void serve(tcp::socket& client) {
        std::string buffered;
        for (;;) {
            auto head = read_head(client, buffered);
            if (head.empty()) return;
            auto request = parse_request(head);
            if (auto length = request.header("content-length")) { // a request body: pass it on
                std::size_t n = std::stoul(*length);
                std::error_code ec;
                if (buffered.size() < n) {
                    std::string rest(n - buffered.size(), '\0');
                    asio::read(client, asio::buffer(rest), ec);
                    if (ec) return;
                    buffered += rest;
                }
                head += buffered.substr(0, n);
                buffered.erase(0, n);
            }
            fault f;
            {
                std::lock_guard lock(mutex_);
                seen_.push_back(request);
                f = decide_(seen_);
            }
            std::error_code ec;
            std::this_thread::sleep_for(f.delay);
            if (f.what == fault::kind::answer) {
                asio::write(client, asio::buffer(f.response), ec);
                if (ec || f.response.find("Connection: close") != std::string::npos) return;
                continue;
            }
            forward(client, closing(head), f);
            return;
        }
    }

    // Sends `request` upstream and its answer back to `client`, spoiled as `f` says.
    void forward(tcp::socket& client, const std::string& request, const fault& f) {
        tcp::socket server(io_);
        std::error_code ec;
        server.connect(upstream_, ec);
        if (ec) return;
        track(server);
        asio::write(server, asio::buffer(request), ec);
        std::string buffered;
        auto head = ec ? std::string() : read_head(server, buffered);
        if (head.empty()) {
            close(server, false);
            return;
        }
        asio::write(client, asio::buffer(closing(head)), ec);
        std::size_t passed = 0; // body bytes given to the client
        bool spoiled = false;
        for (;;) {
            if (buffered.empty()) {
                char buf[16384];
                auto n = server.read_some(asio::buffer(buf), ec);
                if (ec) break;
                buffered.assign(buf, n);
            }
            std::string chunk = std::move(buffered);
            buffered.clear();
            bool stop_here = false;
            if (f.what == fault::kind::flip_byte && f.at >= passed && f.at < passed + chunk.size())
                chunk[f.at - passed] = static_cast<char>(~chunk[f.at - passed]);
            if ((f.what == fault::kind::reset_after || f.what == fault::kind::close_after ||
                 f.what == fault::kind::stall_after) &&
                passed + chunk.size() > f.at) {
                chunk.resize(f.at - passed);
                stop_here = true;
            }
            asio::write(client, asio::buffer(chunk), ec);
            passed += chunk.size();
            if (ec) break;
            if (stop_here) {
                spoiled = true;
                break;
            }
        }
        close(server, false);
        if (!spoiled) return;
        if (f.what == fault::kind::reset_after) {
            close(client, true);
        } else if (f.what == fault::kind::close_after) {
            client.shutdown(tcp::socket::shutdown_send, ec);
        } else { // stall: hold the connection until the client closes it (or the proxy stops)
            char buf[1024];
            while (!ec)
                client.read_some(asio::buffer(buf), ec);
        }
    }

    asio::io_context io_;
    tcp::endpoint upstream_;
    decide_fn decide_;
    tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::vector<std::thread> connections_;
    mutable std::mutex mutex_;
    std::set<int> open_;
    std::vector<proxied_request> seen_;
    std::atomic<bool> stopping_{false};
};

} // namespace cz_test
