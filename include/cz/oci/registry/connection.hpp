// cz/oci/registry/connection.hpp — one HTTP/1.1 connection on Asio: a request out, its response
// in, then the next request on the same connection when the server allows it (needs Asio).
//
// The stream is any Asio stream with a lowest_layer() that can be cancelled: a TCP socket for a
// plain-HTTP registry on loopback, a TLS stream over one otherwise. The bytes the server sends go
// through http_response_parser (http.hpp), which caps the head; the caller caps the body (a
// manifest's 4 MiB, a blob's announced size) through async_read_body's `max` or by counting what
// async_read_some_body gives. Every read and write has a deadline (`timeouts`): a server that
// stalls ends the operation with std::errc::timed_out instead of holding the client forever.
//
//     http_connection<asio::ip::tcp::socket> c(std::move(socket));
//     auto [ec, head] = co_await c.async_request({"GET", "/v2/", "127.0.0.1:5000"}, as_tuple(...));
//     auto [ec2, body] = co_await c.async_read_body(4 << 20, as_tuple(...));
//     if (c.reusable()) ... the next request ...
//
// One operation at a time; the connection must outlive its operations.
#pragma once

#include <cz/core/asio_operation.hpp>
#include <cz/core/bytes.hpp>
#include <cz/oci/registry/http.hpp>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace cz::oci::registry {

// A request body read piece by piece as it is sent, so that a blob of any size goes out without
// being held in memory: `size` bytes; read(offset, out, ec) fills the start of `out` with the
// bytes at `offset` and returns how many (at least one while offset < size). Reading by offset
// lets a retried request send the body again from its start.
struct http_body_reader {
    std::uint64_t size = 0;
    std::function<std::size_t(std::uint64_t offset, mutable_bytes out, std::error_code& ec)> read;
};

struct http_request {
    std::string method = "GET";
    std::string target; // origin-form: /v2/library/busybox/manifests/latest
    std::string host;   // the Host header: host[:port]
    std::vector<http_header> headers;
    std::string body; // sent with its Content-Length (always for POST, PUT and PATCH)
    // Instead of `body`, when set: a body streamed from elsewhere (a blob in the store).
    http_body_reader body_reader;
};

// The HTTP proxy a connection to a plain-HTTP origin goes through (proxy.hpp): the connection
// is to the proxy, and every request on it names its origin in absolute-form (RFC 9112 section
// 3.2.2: "GET http://registry.example:5000/v2/ HTTP/1.1"), with the proxy's credentials in
// Proxy-Authorization, as Go's net/http sends plain-HTTP requests through HTTP_PROXY.
struct forward_proxy {
    std::string origin;        // "http://registry.example:5000", put in front of each target
    std::string authorization; // the Proxy-Authorization value; "": none
    std::string name;          // "http://host:port" of the proxy, as messages name it
};

struct http_timeouts {
    // The longest wait for any one read or write to make progress.
    std::chrono::steady_clock::duration io = std::chrono::seconds(30);
    // Resolving, connecting and the TLS handshake together (transport.hpp).
    std::chrono::steady_clock::duration connect = std::chrono::seconds(30);
};

template <class Stream>
class http_connection {
public:
    using executor_type = typename Stream::executor_type;

    explicit http_connection(Stream stream, http_limits limits = {}, http_timeouts timeouts = {})
        : stream_(std::move(stream)), parser_(limits), timeouts_(timeouts),
          watchdog_(stream_.get_executor()) {}

    executor_type get_executor() noexcept { return stream_.get_executor(); }
    Stream& stream() noexcept { return stream_; }

    // Writes `r` and reads its response's head (interim 1xx responses are skipped). Completion:
    // void(std::error_code, http_response_head). The body, if any, is read next.
    template <class CompletionToken>
    auto async_request(const http_request& r, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), request(r),
                                           std::forward<CompletionToken>(token));
    }

    // Reads the next body bytes into `out`. Completion: void(std::error_code, std::size_t);
    // asio::error::eof once the whole body has been read.
    template <class CompletionToken>
    auto async_read_some_body(mutable_bytes out, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), read_some_body(out),
                                           std::forward<CompletionToken>(token));
    }

    // Reads the whole body, refusing more than `max` bytes with cz::errc::too_large. Completion:
    // void(std::error_code, std::string).
    template <class CompletionToken>
    auto async_read_body(std::size_t max, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), read_body(max),
                                           std::forward<CompletionToken>(token));
    }

    // Sends every later request to a forward proxy in absolute-form (forward_proxy above).
    void forward_through(forward_proxy proxy) { proxy_ = std::move(proxy); }
    // The proxy requests go through in absolute-form, or nullptr (direct, or a CONNECT tunnel).
    const forward_proxy* forwarding() const noexcept {
        return proxy_.origin.empty() ? nullptr : &proxy_;
    }

    // After the body was read to its end: whether the next request may use this connection.
    bool reusable() const noexcept { return done_ && parser_.keep_alive() && !broken_; }
    // The parser's account of the last protocol error (where in the response).
    const error_info& error_detail() const noexcept { return parser_.error_detail(); }

private:
    // Runs one read or write with the deadline: the watchdog cancels the stream when it passes.
    template <class Op>
    asio::awaitable<std::size_t> with_deadline(Op op, std::error_code& ec) {
        expired_ = false;
        watchdog_.expires_after(timeouts_.io);
        watchdog_.async_wait([this](std::error_code e) {
            if (e) return; // cancelled: the operation finished first
            expired_ = true;
            std::error_code ignored;
            stream_.lowest_layer().cancel(ignored);
        });
        std::size_t n = co_await op(asio::redirect_error(asio::use_awaitable, ec));
        watchdog_.cancel();
        // Let the wait's handler run now, before the next operation re-arms the timer.
        co_await asio::post(get_executor(), asio::use_awaitable);
        if (expired_) ec = std::make_error_code(std::errc::timed_out);
        co_return n;
    }

    // Feeds buffered bytes to the parser until an event, reading more when it needs them.
    asio::awaitable<std::error_code> next_event() {
        for (;;) {
            std::error_code ec;
            auto used = parser_.feed(bytes_view(buffer_).subspan(begin_, end_ - begin_), ec);
            begin_ += used;
            if (!ec) co_return ec;
            if (ec != errc::need_more) co_return ec;
            // Keep the unconsumed bytes at the front and make room behind them.
            if (begin_ > 0) {
                std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
                end_ -= begin_;
                begin_ = 0;
            }
            if (buffer_.size() - end_ < read_size) buffer_.resize(end_ + read_size);
            std::size_t n = co_await with_deadline(
                [&](auto token) {
                    return stream_.async_read_some(
                        asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
                        std::move(token));
                },
                ec);
            end_ += n;
            if (ec == asio::error::eof) {
                parser_.finish(ec);
                co_return ec;
            }
            if (ec) co_return ec;
        }
    }

    asio::awaitable<std::pair<std::error_code, http_response_head>> request(http_request r) {
        if (broken_ || (started_ && !reusable()))
            co_return std::pair{make_error_code(std::errc::not_connected), http_response_head{}};
        std::error_code ec;
        if (r.body_reader.read)
            r.headers.push_back({"Content-Length", std::to_string(r.body_reader.size)});
        else if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH")
            r.headers.push_back({"Content-Length", std::to_string(r.body.size())});
        if (!proxy_.origin.empty()) {
            r.target = proxy_.origin + r.target;
            if (!proxy_.authorization.empty())
                r.headers.push_back({"Proxy-Authorization", proxy_.authorization});
        }
        auto wire = format_http_request(r.method, r.target, r.host, r.headers, ec);
        if (ec) co_return std::pair{ec, http_response_head{}};
        wire += r.body;
        started_ = true;
        done_ = false;
        parser_.reset(r.method == "HEAD");
        pending_ = {};
        co_await with_deadline(
            [&](auto token) {
                return asio::async_write(stream_, asio::buffer(wire), std::move(token));
            },
            ec);
        if (!ec && r.body_reader.read) ec = co_await write_body(r.body_reader);
        if (!ec) ec = co_await next_event();
        if (ec) {
            broken_ = true;
            co_return std::pair{ec, http_response_head{}};
        }
        // The first event of a response is always its head.
        co_return std::pair{std::error_code{}, parser_.head()};
    }

    // Sends a streamed body: exactly body.size bytes, as the Content-Length said.
    asio::awaitable<std::error_code> write_body(const http_body_reader& body) {
        std::vector<std::byte> piece(std::min<std::uint64_t>(body.size, write_size));
        for (std::uint64_t offset = 0; offset < body.size;) {
            std::error_code ec;
            auto want = std::min<std::uint64_t>(body.size - offset, piece.size());
            auto n = body.read(offset, mutable_bytes(piece).first(want), ec);
            if (ec) co_return ec;
            if (n == 0 || n > want) co_return make_error_code(cz::errc::truncated);
            co_await with_deadline(
                [&](auto token) {
                    return asio::async_write(stream_, asio::buffer(piece.data(), n),
                                             std::move(token));
                },
                ec);
            if (ec) co_return ec;
            offset += n;
        }
        co_return std::error_code{};
    }

    asio::awaitable<std::pair<std::error_code, std::size_t>> read_some_body(mutable_bytes out) {
        if (pending_.empty() && begin_ == end_ && !done_ && !broken_ &&
            parser_.body_remaining() > 0)
            co_return co_await read_body_directly(out);
        while (pending_.empty()) {
            if (done_) co_return std::pair{make_error_code(asio::error::eof), std::size_t{0}};
            if (broken_)
                co_return std::pair{make_error_code(std::errc::not_connected), std::size_t{0}};
            if (auto ec = co_await next_event()) {
                broken_ = true;
                co_return std::pair{ec, std::size_t{0}};
            }
            if (parser_.event() == http_event::body) pending_ = parser_.body();
            if (parser_.event() == http_event::done) done_ = true;
        }
        // pending_ points into buffer_, which nothing touches until it has been handed out.
        auto n = std::min(out.size(), pending_.size());
        std::memcpy(out.data(), pending_.data(), n);
        pending_ = pending_.subspan(n);
        co_return std::pair{std::error_code{}, n};
    }

    // Receives Content-Length body bytes, none of them buffered yet, straight into `out` (one
    // copy fewer than through buffer_), then lets the parser count them.
    asio::awaitable<std::pair<std::error_code, std::size_t>> read_body_directly(mutable_bytes out) {
        auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), parser_.body_remaining()));
        std::error_code ec;
        std::size_t n = co_await with_deadline(
            [&](auto token) {
                return stream_.async_read_some(asio::buffer(out.data(), want), std::move(token));
            },
            ec);
        if (ec == asio::error::eof) parser_.finish(ec); // the body is cut short
        if (!ec) {
            // All n bytes are body (n <= body_remaining()): one body event viewing `out`.
            auto used = parser_.feed(bytes_view(out.data(), n), ec);
            if (!ec && (used != n || parser_.event() != http_event::body))
                ec = make_error_code(errc::malformed_response);
        }
        if (ec) {
            broken_ = true;
            co_return std::pair{ec, std::size_t{0}};
        }
        co_return std::pair{std::error_code{}, n};
    }

    asio::awaitable<std::pair<std::error_code, std::string>> read_body(std::size_t max) {
        std::string body;
        std::byte chunk[16384];
        for (;;) {
            auto [ec, n] = co_await read_some_body(chunk);
            if (ec == asio::error::eof) co_return std::pair{std::error_code{}, std::move(body)};
            if (ec) co_return std::pair{ec, std::string{}};
            if (body.size() + n > max) {
                broken_ = true; // the rest of the body is still on the connection
                co_return std::pair{make_error_code(cz::errc::too_large), std::string{}};
            }
            body.append(reinterpret_cast<const char*>(chunk), n);
        }
    }

    // A read takes what the socket holds, up to this much: with 64 KiB, a cold loopback pull
    // (benchmarks/registry_pull.cpp) spent about 15% more CPU on reads and their deadlines.
    static constexpr std::size_t read_size = 256 * 1024;
    static constexpr std::size_t write_size = 256 * 1024;

    Stream stream_;
    http_response_parser parser_;
    http_timeouts timeouts_;
    forward_proxy proxy_; // origin empty: requests in origin-form
    asio::steady_timer watchdog_;
    std::vector<std::byte> buffer_;
    std::size_t begin_ = 0, end_ = 0; // the bytes read and not yet parsed
    bytes_view pending_;              // body bytes parsed and not yet handed out
    bool started_ = false;            // a request has been sent
    bool done_ = false;               // the current response has been read to its end
    bool broken_ = false;             // an error left the connection unusable
    bool expired_ = false;            // the watchdog cancelled the last read or write
};

} // namespace cz::oci::registry
