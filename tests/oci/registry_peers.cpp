// cz/oci/registry's HTTP connection against real servers on loopback: Debian's docker-registry
// (distribution 2.8, plain HTTP), and small servers of the test's own for what a registry does
// not do on request (stall, send garbage, close mid-body).
#include <cz/core/sha256.hpp>
#include <cz/oci/registry/connection.hpp>
#include <cz/oci/registry/transport.hpp>

#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_future.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <thread>

using namespace cz_test;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;
using asio::ip::tcp;
using connection = reg::http_connection<tcp::socket>;

namespace {

reg::http_request get(std::string target, std::string host, std::string method = "GET") {
    reg::http_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.host = std::move(host);
    return r;
}

// A server on loopback that reads one request head and then does `act` with the socket.
template <class Act>
std::pair<tcp::endpoint, std::thread> one_shot_server(Act act) {
    auto io = std::make_shared<asio::io_context>();
    auto acceptor =
        std::make_shared<tcp::acceptor>(*io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto ep = acceptor->local_endpoint();
    std::thread t([io, acceptor, act] {
        tcp::socket s(*io);
        acceptor->accept(s);
        asio::streambuf head;
        std::error_code ec;
        asio::read_until(s, head, "\r\n\r\n", ec);
        act(s);
    });
    return {ep, std::move(t)};
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("connection: docker-registry's answers, many requests on one connection") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        registry_server server;
        std::string blob(300000, '\0');
        for (std::size_t i = 0; i < blob.size(); ++i)
            blob[i] = static_cast<char>(i * 7919 >> 5);
        cz::sha256_hasher h;
        h.update(cz::as_bytes(blob));
        auto digest = h.final().str();

        run([&](asio::io_context& io) -> asio::awaitable<void> {
            tcp::socket socket(io);
            socket.connect(server.endpoint());
            connection c(std::move(socket));

            // The API version check: 200, a JSON body, the connection kept.
            auto [ec, head] =
                co_await c.async_request(get("/v2/", server.host()), as_tuple(asio::use_awaitable));
            REQUIRE(!ec);
            CHECK(head.status == 200);
            CHECK(head.header("docker-distribution-api-version") == "registry/2.0");
            auto [body_ec, body] =
                co_await c.async_read_body(1 << 20, as_tuple(asio::use_awaitable));
            CHECK(!body_ec);
            CHECK(body == "{}");
            CHECK(c.reusable());

            // A blob upload as distribution takes it: POST opens a session (202 and a
            // Location), PUT with the digest and the bytes completes it (201).
            auto [post_ec, started] =
                co_await c.async_request(get("/v2/cz/test/blobs/uploads/", server.host(), "POST"),
                                         as_tuple(asio::use_awaitable));
            REQUIRE(!post_ec);
            CHECK(started.status == 202);
            co_await c.async_read_body(1 << 20, as_tuple(asio::use_awaitable));
            REQUIRE(c.reusable());
            std::string location(started.header("location").value_or(""));
            // An absolute URL on this server: the request wants its path and query.
            auto path = location.find("/v2/");
            REQUIRE(path != std::string::npos);
            auto put = get(location.substr(path) + "&digest=" + digest, server.host(), "PUT");
            put.headers.push_back({"Content-Type", "application/octet-stream"});
            put.body = blob;
            auto [put_ec, created] = co_await c.async_request(put, as_tuple(asio::use_awaitable));
            REQUIRE(!put_ec);
            CHECK(created.status == 201);
            CHECK(created.header("docker-content-digest") == digest);
            co_await c.async_read_body(1 << 20, as_tuple(asio::use_awaitable));
            REQUIRE(c.reusable());

            // HEAD: the size without the bytes.
            auto [head_ec, info] =
                co_await c.async_request(get("/v2/cz/test/blobs/" + digest, server.host(), "HEAD"),
                                         as_tuple(asio::use_awaitable));
            REQUIRE(!head_ec);
            CHECK(info.status == 200);
            CHECK(info.header("content-length") == std::to_string(blob.size()));
            auto [none_ec, none] = co_await c.async_read_body(0, as_tuple(asio::use_awaitable));
            CHECK(!none_ec);
            CHECK(none.empty());

            // GET: the bytes, in pieces of whatever size the caller reads.
            auto [get_ec, got] = co_await c.async_request(
                get("/v2/cz/test/blobs/" + digest, server.host()), as_tuple(asio::use_awaitable));
            REQUIRE(!get_ec);
            CHECK(got.status == 200);
            std::string received;
            std::byte piece[1000];
            for (;;) {
                auto [e, n] = co_await c.async_read_some_body(piece, as_tuple(asio::use_awaitable));
                received.append(reinterpret_cast<const char*>(piece), n);
                if (e) {
                    CHECK(e == asio::error::eof);
                    break;
                }
            }
            CHECK(received == blob);

            // A manifest that is not there: 404 with distribution's JSON error; a body cap.
            auto [miss_ec, missing] = co_await c.async_request(
                get("/v2/cz/test/manifests/nope", server.host()), as_tuple(asio::use_awaitable));
            REQUIRE(!miss_ec);
            CHECK(missing.status == 404);
            auto [err_ec, error_body] =
                co_await c.async_read_body(1 << 20, as_tuple(asio::use_awaitable));
            CHECK(error_body.find("MANIFEST_UNKNOWN") != std::string::npos);
            auto [big_ec, big] = co_await c.async_request(
                get("/v2/cz/test/blobs/" + digest, server.host()), as_tuple(asio::use_awaitable));
            REQUIRE(!big_ec);
            auto [cap_ec, capped] = co_await c.async_read_body(1000, as_tuple(asio::use_awaitable));
            CHECK(cap_ec == cz::errc::too_large);
            CHECK(!c.reusable()); // the rest of that body is still in the way
            auto [after_ec, after] =
                co_await c.async_request(get("/v2/", server.host()), as_tuple(asio::use_awaitable));
            CHECK(after_ec == std::errc::not_connected);
        });
    }

    TEST_CASE("connection: a stalled server times out, garbage and early closes are errors") {
        auto try_server = [](auto act, std::chrono::milliseconds io_timeout) {
            auto [endpoint, thread] = one_shot_server(act);
            tcp::endpoint ep = endpoint; // (clang 14 cannot capture a structured binding)
            std::error_code result;
            cz::error_info detail;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                tcp::socket socket(io);
                socket.connect(ep);
                connection c(std::move(socket), {}, {io_timeout});
                auto [ec, head] = co_await c.async_request(get("/v2/", "127.0.0.1"),
                                                           as_tuple(asio::use_awaitable));
                if (!ec)
                    std::tie(ec, std::ignore) =
                        co_await c.async_read_body(1 << 20, as_tuple(asio::use_awaitable));
                result = ec;
                detail = c.error_detail();
            });
            thread.join();
            return std::pair{result, detail};
        };
        using namespace std::chrono_literals;
        auto [stalled, d1] = try_server(
            [](tcp::socket& s) {
                std::byte b[1];
                std::error_code ec;
                s.read_some(asio::buffer(b), ec); // until the client gives up and closes
            },
            200ms);
        CHECK(stalled == std::errc::timed_out);

        auto [garbage, d2] = try_server(
            [](tcp::socket& s) {
                asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nX : y\r\n\r\n")));
            },
            5s);
        CHECK(garbage == reg::errc::malformed_response);
        CHECK(d2.offset == 17u);

        auto [cut, d3] = try_server(
            [](tcp::socket& s) {
                asio::write(s, asio::buffer(std::string_view(
                                   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")));
            },
            5s);
        CHECK(cut == reg::errc::truncated_response);

        auto [mid_body_stall, d4] = try_server(
            [](tcp::socket& s) {
                asio::write(s, asio::buffer(std::string_view(
                                   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")));
                std::byte b[1];
                std::error_code ec;
                s.read_some(asio::buffer(b), ec);
            },
            200ms);
        CHECK(mid_body_stall == std::errc::timed_out);
    }

    TEST_CASE("transport: TLS to docker-registry with a CA of the test's, names checked") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("openssl")) CZ_SKIP("openssl is not installed");
        registry_server server(true);
        auto trusting = reg::make_tls_context({server.ca_file()});
        auto system_only = reg::make_tls_context();
        using namespace std::chrono_literals;
        // Connects as `name` and asks for /v2/: the status, or the error on the way.
        auto try_get = [&](asio::ssl::context& tls, std::string name, bool use_tls) {
            std::error_code result;
            int status = 0;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                auto [ec, c] = co_await reg::async_connect_registry(
                    io.get_executor(), tls, name, server.port(), use_tls, {5s, 5s},
                    as_tuple(asio::use_awaitable));
                if (!ec) {
                    reg::http_request r;
                    r.target = "/v2/";
                    r.host = name + ":" + server.port();
                    reg::http_response_head head;
                    std::tie(ec, head) =
                        co_await c->async_request(r, as_tuple(asio::use_awaitable));
                    status = head.status;
                }
                result = ec;
            });
            return std::pair{result, status};
        };
        auto [ok, status] = try_get(trusting, "127.0.0.1", true);
        CHECK(!ok);
        CHECK(status == 200);
        // A CA nobody trusts, and a certificate that does not name the host dialled.
        auto [untrusted, s2] = try_get(system_only, "127.0.0.1", true);
        CHECK(untrusted.category() == asio::error::get_ssl_category());
        auto [wrong_name, s3] = try_get(trusting, "localhost", true);
        CHECK(wrong_name.category() == asio::error::get_ssl_category());
        // Plain HTTP to the TLS port: Go answers 400 in plain text, which parses.
        auto [plain, s4] = try_get(trusting, "127.0.0.1", false);
        CHECK(!plain);
        CHECK(s4 == 400);
    }
}
