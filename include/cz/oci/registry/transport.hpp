// cz/oci/registry/transport.hpp — the byte stream under an HTTP connection to a registry: TCP,
// with TLS (BoringSSL, through Asio's SSL layer) unless the registry is marked insecure; and
// connecting one, resolved, within a deadline, the certificate checked against the host's name,
// directly or through an HTTP proxy (proxy.hpp): a CONNECT tunnel for TLS, requests in
// absolute-form to the proxy for plain HTTP.
#pragma once

#include <cz/oci/registry/connection.hpp>
#include <cz/oci/registry/proxy.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace cz::oci::registry {

struct tls_options {
    // A PEM file of certificate authorities trusted beside the system's bundle (a registry
    // with a certificate of its own making).
    std::filesystem::path ca_file;
};

// A client TLS context: peer verification on, the system's CA bundle and `options.ca_file`.
// Throws cz::system_error naming the file that could not be loaded.
inline asio::ssl::context make_tls_context(const tls_options& options = {}) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    std::error_code ec;
    // Debian's bundle, where ca-certificates puts it; BoringSSL's own default paths are
    // Android's.
    const std::filesystem::path system_bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (std::filesystem::exists(system_bundle, ec)) {
        ctx.load_verify_file(system_bundle.string(), ec);
        if (ec) throw_error(ec, "loading {}", system_bundle.string());
    } else {
        ctx.set_default_verify_paths(ec);
    }
    if (!options.ca_file.empty()) {
        ctx.load_verify_file(options.ca_file.string(), ec);
        if (ec) throw_error(ec, "loading the CA file {}", options.ca_file.string());
    }
    return ctx;
}

// TCP, with or without TLS on it; an Asio stream either way.
class registry_stream {
public:
    using executor_type = asio::any_io_executor;
    using lowest_layer_type = asio::ip::tcp::socket;

    registry_stream(executor_type ex, asio::ssl::context& tls, bool use_tls)
        : stream_(std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(ex, tls)),
          tls_(use_tls) {}

    executor_type get_executor() noexcept { return stream_->get_executor(); }
    lowest_layer_type& lowest_layer() noexcept { return stream_->next_layer(); }
    bool uses_tls() const noexcept { return tls_; }
    asio::ssl::stream<asio::ip::tcp::socket>& tls_stream() noexcept { return *stream_; }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                if (tls_)
                    stream_->async_read_some(b, std::move(handler));
                else
                    stream_->next_layer().async_read_some(b, std::move(handler));
            },
            token, buffers);
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                if (tls_)
                    stream_->async_write_some(b, std::move(handler));
                else
                    stream_->next_layer().async_write_some(b, std::move(handler));
            },
            token, buffers);
    }

private:
    // Held by pointer: the SSL stream stays put while operations refer to it, whatever moves
    // the registry_stream.
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket>> stream_;
    bool tls_;
};

using registry_connection = http_connection<registry_stream>;

namespace detail {

// "proxy http://host:port refused WHAT: 407 Proxy Authentication Required (hint)": a proxy's
// answer to a CONNECT, or to a request it was to forward, that it will not pass on.
inline std::string proxy_refusal(std::string_view proxy_name, bool sent_credentials,
                                 std::string_view what, const http_response_head& head) {
    const char* hint = "";
    if (head.status == 407)
        hint = sent_credentials ? " (it refused the credentials in the proxy URL)"
                                : " (it wants credentials: http://user:password@host:port)";
    return fmt::format("proxy {} refused {}: {} {}{}", proxy_name, what, head.status,
                       head.reason.substr(0, 100), hint);
}

// Asks the proxy at the other end of `socket` for a tunnel to `authority` (host:port) and reads
// its answer's head through http_response_parser, which caps it: an empty error once the tunnel
// is open, errc::proxy_refused for an answer other than 2xx, the parser's errors for one that
// is no HTTP. `why` names the proxy and what it said. The caller's deadline bounds it.
inline asio::awaitable<std::error_code> open_tunnel(asio::ip::tcp::socket& socket,
                                                    const proxy_server& proxy,
                                                    const std::string& authority,
                                                    std::string& why) {
    std::error_code ec;
    std::vector<http_header> headers;
    if (!proxy.authorization.empty())
        headers.push_back({"Proxy-Authorization", proxy.authorization});
    auto wire = format_http_request("CONNECT", authority, authority, headers, ec);
    if (ec) {
        why = fmt::format("proxy {}: CONNECT {}: {}", proxy.name, authority, ec.message());
        co_return ec;
    }
    co_await asio::async_write(socket, asio::buffer(wire),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        why = fmt::format("proxy {}: sending CONNECT {}: {}", proxy.name, authority, ec.message());
        co_return ec;
    }
    // A 2xx answer to CONNECT has no body (RFC 9110 section 9.3.6): parse it as a HEAD's answer.
    http_response_parser parser;
    parser.reset(true);
    std::string buffer;
    std::size_t begin = 0;
    for (;;) {
        auto used = parser.feed(as_bytes(std::string_view(buffer).substr(begin)), ec);
        begin += used;
        if (!ec && parser.event() == http_event::head) break;
        if (ec && ec != errc::need_more) {
            why = fmt::format("proxy {}: its answer to CONNECT {}: {}", proxy.name, authority,
                              to_string(parser.error_detail()));
            co_return ec;
        }
        if (ec == errc::need_more) {
            char chunk[4096];
            auto n = co_await socket.async_read_some(asio::buffer(chunk),
                                                     asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::eof) parser.finish(ec);
            if (ec) {
                why = fmt::format("proxy {}: reading its answer to CONNECT {}: {}", proxy.name,
                                  authority,
                                  parser.error_detail().empty() ? ec.message()
                                                                : to_string(parser.error_detail()));
                co_return ec;
            }
            buffer.append(chunk, n);
        }
    }
    const auto& head = parser.head();
    if (head.status < 200 || head.status > 299) {
        why = proxy_refusal(proxy.name, !proxy.authorization.empty(), "CONNECT " + authority, head);
        co_return make_error_code(errc::proxy_refused);
    }
    // The registry speaks first only after the client has (TLS, HTTP): bytes already here
    // would be the proxy's, sent past its own answer.
    if (begin != buffer.size()) {
        why = fmt::format("proxy {}: bytes after its answer to CONNECT {}", proxy.name, authority);
        co_return make_error_code(errc::malformed_response);
    }
    co_return std::error_code{};
}

// Connects to `host`:`port`, through `proxy` when it is set (with TLS: a tunnel to the registry;
// without: a connection to the proxy that sends requests in absolute-form); `why`, when given,
// is set to a message naming what failed (the proxy, when it was the proxy).
inline asio::awaitable<std::pair<std::error_code, std::unique_ptr<registry_connection>>>
connect_to(asio::any_io_executor ex, asio::ssl::context& tls, std::string host, std::string port,
           bool use_tls, http_timeouts timeouts, std::optional<proxy_server> proxy = {},
           std::string* why = nullptr) {
    using result = std::pair<std::error_code, std::unique_ptr<registry_connection>>;
    std::error_code ec;
    registry_stream stream(ex, tls, use_tls);
    // One deadline for resolving, connecting, the proxy's tunnel and the handshake together.
    asio::steady_timer deadline(ex);
    bool expired = false;
    asio::ip::tcp::resolver resolver(ex);
    deadline.expires_after(timeouts.connect);
    deadline.async_wait([&](std::error_code e) {
        if (e) return;
        expired = true;
        resolver.cancel();
        std::error_code ignored;
        stream.lowest_layer().cancel(ignored);
    });
    std::string failure;      // what failed, said by open_tunnel
    bool tunnel_open = false; // the proxy's part is done
    auto finish = [&](std::error_code e) -> asio::awaitable<result> {
        deadline.cancel();
        co_await asio::post(ex, asio::use_awaitable); // the wait's handler runs first
        if (expired) e = std::make_error_code(std::errc::timed_out);
        if (why && e) {
            if (!failure.empty() && !expired)
                *why = failure;
            else if (proxy && tunnel_open)
                *why = fmt::format("{} (through proxy {})", e.message(), proxy->name);
            else if (proxy)
                *why = fmt::format("proxy {}: {}", proxy->name, e.message());
            else
                *why = e.message();
        }
        co_return result{e, nullptr};
    };
    // The registry's name (or address) is resolved by the proxy when there is one.
    auto endpoints =
        co_await resolver.async_resolve(proxy ? proxy->host : host, proxy ? proxy->port : port,
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return co_await finish(ec);
    co_await asio::async_connect(stream.lowest_layer(), endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return co_await finish(ec);
    stream.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ec);
    // authority-form: host:port, an IPv6 address in brackets.
    auto authority = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
    if (proxy && use_tls) {
        ec = co_await open_tunnel(stream.lowest_layer(), *proxy, authority, failure);
        if (ec) co_return co_await finish(ec);
        tunnel_open = true;
    }
    if (use_tls) {
        auto& s = stream.tls_stream();
        // SNI, and the certificate must name this host (or IP address): the registry's, also
        // inside a proxy's tunnel.
        if (!SSL_set_tlsext_host_name(s.native_handle(), host.c_str()))
            co_return co_await finish(std::make_error_code(std::errc::invalid_argument));
        s.set_verify_callback(asio::ssl::host_name_verification(host));
        co_await s.async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return co_await finish(ec);
    }
    deadline.cancel();
    co_await asio::post(ex, asio::use_awaitable);
    if (expired) co_return co_await finish(std::make_error_code(std::errc::timed_out));
    auto conn = std::make_unique<registry_connection>(std::move(stream), http_limits{}, timeouts);
    if (proxy && !use_tls) {
        // The origin as url::origin() writes it, so that absolute-form and Host agree.
        conn->forward_through(
            {"http://" + (port == "80" ? authority.substr(0, authority.rfind(':')) : authority),
             proxy->authorization, proxy->name});
    }
    co_return result{std::error_code{}, std::move(conn)};
}

} // namespace detail

// Connects to `host`:`port` over TCP, then TLS unless `use_tls` is false, within
// timeouts.connect. Completion: void(std::error_code, std::unique_ptr<registry_connection>);
// std::errc::timed_out past the deadline, asio's SSL errors for a certificate that does not
// verify or name the host. `tls` must outlive the connection.
template <class CompletionToken>
auto async_connect_registry(asio::any_io_executor ex, asio::ssl::context& tls, std::string host,
                            std::string port, bool use_tls, http_timeouts timeouts,
                            CompletionToken&& token) {
    return cz::detail::spawn_operation(
        ex, detail::connect_to(ex, tls, std::move(host), std::move(port), use_tls, timeouts),
        std::forward<CompletionToken>(token));
}

} // namespace cz::oci::registry
