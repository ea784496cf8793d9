// Out-of-line definitions for cz/oci/registry/client.hpp.
#pragma once

#include <cz/oci/media_types.hpp>
#include <cz/oci/registry/client.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <nlohmann/json.hpp>
#include <openssl/base64.h>

#include <algorithm>
#include <set>

// g++ 12 takes a coroutine frame's class-specific operator delete (Asio's awaitable_frame_base
// defines both new and delete) for a mismatch at -O2: a false positive, silenced for this file's
// coroutines, as in push.ipp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace cz::oci::registry {
namespace detail {

inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(d);
    std::error_code ignored;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

// content.begin_write without blocking the thread: while another writer holds the blob (a pull
// in another process, or one on this very thread, which could then never finish), wait and try
// again, from 10 ms up to half a second apart.
inline asio::awaitable<blob_writer> begin_write(const content_store& content, const descriptor& d,
                                                std::error_code& ec, std::string& why) {
    std::chrono::milliseconds wait{10};
    for (;;) {
        auto w = content.try_begin_write(d, ec, &why);
        if (ec != std::errc::operation_would_block) co_return w;
        co_await sleep_for(wait);
        wait = std::min(wait * 2, std::chrono::milliseconds(500));
    }
}

// Removes the writer's ingest file when it goes out of scope with nothing written (a committed
// writer has nothing left to remove).
struct drop_if_empty {
    blob_writer& w;
    explicit drop_if_empty(blob_writer& writer) : w(writer) {}
    drop_if_empty(const drop_if_empty&) = delete;
    drop_if_empty& operator=(const drop_if_empty&) = delete;
    ~drop_if_empty() {
        if (w.offset() == 0) w.abort();
    }
};

inline bool is_loopback_host(std::string_view host) {
    return host == "localhost" || host.starts_with("127.") || host == "[::1]";
}

inline std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    auto n = EVP_EncodeBlock(reinterpret_cast<std::uint8_t*>(out.data()),
                             reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
    out.resize(n);
    return out;
}

// The first error a registry's JSON error body names ("MANIFEST_UNKNOWN: manifest unknown"),
// or the start of the body as text.
inline std::string error_summary(std::string_view body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
        const auto& e = j["errors"][0];
        if (e.is_object() && e.contains("code") && e["code"].is_string()) {
            std::string s = e["code"].get<std::string>();
            if (e.contains("message") && e["message"].is_string())
                s += ": " + e["message"].get<std::string>();
            return s.substr(0, 200);
        }
    }
    std::string text(body.substr(0, 200));
    for (auto& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return text;
}

inline std::string media_type_of(const http_response_head& head, std::string_view bytes) {
    std::string type(head.header("content-type").value_or(""));
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ')
        type.pop_back();
    for (auto known : {media_type::oci_index, media_type::oci_manifest,
                       media_type::docker_manifest_list, media_type::docker_manifest})
        if (type == known) return type;
    return std::string(detect_media_type(bytes));
}

// The completion of one fetch worker: the last one wakes the pull.
struct worker_done {
    registry_client::pull_state* state;
    asio::steady_timer* all_done;
    void operator()(std::exception_ptr e) const {
        if (e && !state->first_error) state->first_error = cz::detail::error_from(e);
        if (--state->running == 0) all_done->cancel();
    }
};

// What fill() received: `size` bytes, then the end of the body (`ended`) or an error, or
// neither when the buffer is full.
struct body_piece {
    std::error_code ec;
    std::size_t size = 0;
    bool ended = false;
};

// The bytes of a blob handed to the store pool at once: large enough that the hand-over costs
// nothing beside hashing them, small enough that receiving the next ones starts soon.
inline constexpr std::size_t store_piece = 512 * 1024;

// Receives body bytes from `c` until `out` is full, the body ends, or an error.
inline asio::awaitable<body_piece> fill(registry_connection& c, mutable_bytes out) {
    body_piece got;
    while (got.size < out.size()) {
        auto [e, n] = co_await c.async_read_some_body(
            out.subspan(got.size), asio::experimental::as_tuple(asio::use_awaitable));
        got.size += n;
        if (e == asio::error::eof) {
            got.ended = true;
            break;
        }
        if (e) {
            got.ec = e;
            break;
        }
    }
    co_return got;
}

// store()'s work on the store pool. (A named coroutine, not a lambda: a lambda's type in the
// frame of a function that is not inline has no linkage, which g++ warns about.)
inline asio::awaitable<std::error_code> write_piece(blob_writer& w, bytes_view data) {
    std::error_code ec;
    w.write(data, ec);
    co_return ec;
}

// " (after 3 tries)" when a status came back on every try; nothing after one.
inline std::string tries_note(int tries) {
    return tries > 1 ? fmt::format(" (after {} tries)", tries) : std::string();
}

inline std::string describe(const http_request& r, const url& u) {
    return fmt::format("{} {}", r.method, u.str());
}

// The wait before try number `tries` + 1: what the server's Retry-After asks for (at most
// `cap`), else the backoff doubled per try.
inline std::chrono::steady_clock::duration retry_wait(std::chrono::milliseconds backoff, int tries,
                                                      std::optional<std::chrono::seconds> after,
                                                      std::chrono::seconds cap) {
    using namespace std::chrono;
    if (after) return duration_cast<steady_clock::duration>(std::min(*after, cap));
    return duration_cast<steady_clock::duration>(backoff * (1 << std::min(tries - 1, 10)));
}

CZ_DECL url follow_redirect(const url& from, std::string_view location, int redirects,
                            std::error_code& ec, std::string& why) {
    error_info detail;
    auto next = resolve_location(from, location, ec, &detail);
    if (ec) {
        why = fmt::format("redirect to '{}': {}", location.substr(0, 200), to_string(detail));
        return {};
    }
    if (redirects > max_redirects || (from.https && !next.https)) {
        ec = errc::refused_redirect;
        why = fmt::format("redirect to {} refused ({})", next.str(),
                          redirects > max_redirects
                              ? fmt::format("more than {} redirects", max_redirects)
                              : std::string("from HTTPS to plain HTTP"));
        return {};
    }
    return next;
}

} // namespace detail

CZ_DECL registry_client::registry_client(executor_type ex, registry_options options)
    : ex_(std::move(ex)), options_(std::move(options)), tls_(make_tls_context(options_.tls)),
      proxies_(options_.proxy) {}

CZ_DECL std::error_code registry_client::fail(std::error_code ec, std::string what) {
    last_error_ = std::move(what);
    return ec;
}

CZ_DECL url registry_client::registry_url(const reference& ref, std::string target) const {
    std::string authority = ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain;
    std::string host = authority;
    if (!host.empty() && host.front() == '[') {
        host = host.substr(0, host.find(']') + 1);
    } else {
        host = host.substr(0, host.find(':'));
    }
    bool plain = detail::is_loopback_host(host) ||
                 std::find(options_.insecure.begin(), options_.insecure.end(), ref.domain) !=
                     options_.insecure.end();
    std::error_code ec;
    auto u = parse_url((plain ? "http://" : "https://") + authority + target, ec);
    if (ec) throw_error(ec, "registry {}", ref.domain); // the reference grammar allows no such
    return u;
}

CZ_DECL asio::awaitable<std::pair<std::error_code, std::unique_ptr<registry_connection>>>
registry_client::checkout(const url& u, std::string* why) {
    auto& idle = idle_[u.origin()];
    if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        co_return std::pair{std::error_code{}, std::move(c)};
    }
    std::optional<proxy_server> proxy;
    if (auto* p = proxies_.select(u)) proxy = *p;
    co_return co_await detail::connect_to(ex_, tls_, u.bare_host(), u.port, u.https,
                                          options_.timeouts, std::move(proxy), why);
}

CZ_DECL void registry_client::checkin(const url& u, std::unique_ptr<registry_connection> c) {
    if (c && c->reusable()) idle_[u.origin()].push_back(std::move(c));
}

CZ_DECL asio::awaitable<std::pair<std::error_code, std::string>>
registry_client::read_body(response& r, std::size_t max) {
    auto [ec, body] =
        co_await r.conn->async_read_body(max, asio::experimental::as_tuple(asio::use_awaitable));
    checkin(r.at, std::move(r.conn));
    co_return std::pair{ec, std::move(body)};
}

CZ_DECL asio::awaitable<registry_client::response> registry_client::send(url u, http_request r,
                                                                         std::string scope) {
    using namespace std::chrono;
    int tries = 0, redirects = 0;
    bool authenticated = false;
    for (;;) {
        std::string why; // what failed to connect, and how (the proxy, if it was the proxy)
        auto [ec, conn] = co_await checkout(u, &why);
        if (!ec) {
            http_request req = r;
            req.host = u.authority();
            req.target = u.target;
            for (const auto& key : {u.origin() + " " + scope, u.origin()}) {
                auto it = authorization_.find(key);
                if (it != authorization_.end() && it->second.expires > steady_clock::now()) {
                    req.headers.push_back({"Authorization", it->second.header});
                    break;
                }
            }
            auto [rec, head] = co_await conn->async_request(
                req, asio::experimental::as_tuple(asio::use_awaitable));
            ec = rec;
            if (!ec) {
                response resp{{}, std::move(head), std::move(conn), u};
                auto status = resp.head.status;
                if (const auto* proxy = resp.conn->forwarding(); proxy && status == 407) {
                    // The proxy's own answer: the registry never saw the request.
                    auto message = detail::proxy_refusal(proxy->name, !proxy->authorization.empty(),
                                                         detail::describe(r, u), resp.head);
                    co_return response{
                        fail(errc::proxy_refused, std::move(message)), {}, nullptr, u};
                }
                bool redirect = status == 301 || status == 302 || status == 303 || status == 307 ||
                                status == 308;
                bool retry = status == 429 || status >= 500;
                if (!(status == 401 && !authenticated) && !redirect &&
                    !(retry && tries + 1 < options_.attempts)) {
                    resp.tries = tries + 1;
                    co_return resp;
                }
                auto challenge = std::string(resp.head.header("www-authenticate").value_or(""));
                auto location = std::string(resp.head.header("location").value_or(""));
                std::optional<seconds> after;
                if (auto value = resp.head.header("retry-after"))
                    after =
                        parse_retry_after(*value, time_point_cast<seconds>(system_clock::now()));
                co_await read_body(resp, 64 * 1024); // what is left on the connection
                if (status == 401) {
                    authenticated = true;
                    if (auto e = co_await authenticate(u, challenge, scope))
                        co_return response{e, {}, nullptr, u};
                    continue;
                }
                if (redirect) {
                    std::string why;
                    auto next = detail::follow_redirect(u, location, ++redirects, ec, why);
                    if (ec)
                        co_return response{
                            fail(ec, fmt::format("{}: {}", detail::describe(r, u), why)),
                            {},
                            nullptr,
                            u};
                    if (status == 303) r.method = "GET";
                    u = std::move(next); // credentials are kept by origin: none go elsewhere
                    continue;
                }
                ++tries;
                co_await detail::sleep_for(
                    detail::retry_wait(options_.backoff, tries, after, options_.max_retry_after));
                continue;
            }
        }
        if (++tries >= options_.attempts)
            co_return response{fail(ec, fmt::format("{}: {}", detail::describe(r, u),
                                                    why.empty() ? ec.message() : why)),
                               {},
                               nullptr,
                               u};
        co_await detail::sleep_for(
            detail::retry_wait(options_.backoff, tries, std::nullopt, options_.max_retry_after));
    }
}

CZ_DECL asio::awaitable<std::error_code>
registry_client::authenticate(const url& u, std::string_view header, const std::string& scope) {
    std::error_code ec;
    error_info detail;
    auto challenges = parse_challenges(header, ec, &detail);
    if (ec)
        co_return fail(ec, fmt::format("{}: WWW-Authenticate: {}", u.origin(), to_string(detail)));
    std::optional<credentials> creds;
    if (options_.credentials) creds = options_.credentials(u.authority());
    for (const auto& c : challenges) {
        if (iequals(c.scheme, "basic")) {
            if (!creds || creds->username.empty())
                co_return fail(errc::unauthorized,
                               fmt::format("{} wants a user name and password", u.origin()));
            authorization_[u.origin()] = {
                "Basic " + detail::base64(creds->username + ":" + creds->password),
                std::chrono::steady_clock::time_point::max()};
            co_return std::error_code{};
        }
        if (!iequals(c.scheme, "bearer")) continue;
        auto realm_text = c.param("realm");
        if (!realm_text)
            co_return fail(errc::malformed_challenge,
                           fmt::format("{}: a Bearer challenge without a realm", u.origin()));
        auto realm = parse_url(*realm_text, ec, &detail);
        if (ec)
            co_return fail(ec, fmt::format("{}: token realm '{}': {}", u.origin(), *realm_text,
                                           to_string(detail)));
        if (creds && u.https && !realm.https)
            co_return fail(errc::refused_redirect,
                           fmt::format("{}: credentials would go to {} in plain HTTP", u.origin(),
                                       realm.origin()));
        std::string query;
        if (auto service = c.param("service")) query += "service=" + query_escape(*service);
        auto wanted = std::string(c.param("scope").value_or(scope));
        if (!wanted.empty())
            query += (query.empty() ? "" : "&") + ("scope=" + query_escape(wanted));
        http_request req;
        req.host = realm.authority();
        if (creds && !creds->identity_token.empty()) {
            // An identity token is an OAuth2 refresh token (RFC 6749 section 6), traded as
            // docker trades it.
            req.method = "POST";
            req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
            req.body = "grant_type=refresh_token&client_id=cz&refresh_token=" +
                       query_escape(creds->identity_token) + (query.empty() ? "" : "&" + query);
        } else {
            if (!query.empty())
                realm.target += (realm.target.find('?') == std::string::npos ? "?" : "&") + query;
            if (creds)
                req.headers.push_back(
                    {"Authorization",
                     "Basic " + detail::base64(creds->username + ":" + creds->password)});
        }
        req.target = realm.target;
        std::string why;
        auto [cec, conn] = co_await checkout(realm, &why);
        if (cec) co_return fail(cec, fmt::format("token service {}: {}", realm.origin(), why));
        auto [rec, head] =
            co_await conn->async_request(req, asio::experimental::as_tuple(asio::use_awaitable));
        if (rec)
            co_return fail(rec, fmt::format("token service {}: {}", realm.origin(), rec.message()));
        response resp{{}, head, std::move(conn), realm};
        auto [bec, body] = co_await read_body(resp, 1 << 20);
        if (bec)
            co_return fail(bec, fmt::format("token service {}: {}", realm.origin(), bec.message()));
        if (head.status != 200)
            co_return fail(errc::unauthorized,
                           fmt::format("token service {}: {} {}", realm.origin(), head.status,
                                       detail::error_summary(body)));
        auto j = nlohmann::json::parse(body, nullptr, false);
        std::string token;
        for (const char* field : {"token", "access_token"})
            if (token.empty() && j.is_object() && j.contains(field) && j[field].is_string())
                token = j[field].get<std::string>();
        if (token.empty() || token.find_first_of("\r\n") != std::string::npos)
            co_return fail(errc::unauthorized,
                           fmt::format("token service {}: no token in its answer", realm.origin()));
        long expires = 60;
        if (j.contains("expires_in") && j["expires_in"].is_number_integer())
            expires = std::clamp<long>(j["expires_in"].get<long>(), 1, 86400);
        authorization_[u.origin() + " " + scope] = {
            "Bearer " + token,
            std::chrono::steady_clock::now() + std::chrono::seconds(std::max(1L, expires - 5))};
        co_return std::error_code{};
    }
    co_return fail(errc::unauthorized,
                   fmt::format("{} asks for an authentication scheme cz does not speak: '{}'",
                               u.origin(), header.substr(0, 100)));
}

CZ_DECL asio::awaitable<std::error_code> registry_client::check_credentials(std::string registry) {
    reference ref;
    ref.domain = std::move(registry);
    auto u = registry_url(ref, "/v2/");
    // Named, not temporaries: g++ 12 destroys a braced temporary argument of a coroutine twice.
    http_request req;
    std::string no_scope;
    auto r = co_await send(u, req, no_scope);
    if (r.ec) co_return r.ec;
    auto [ec, body] = co_await read_body(r, 64 * 1024);
    if (r.head.status == 200) co_return std::error_code{};
    co_return fail(
        r.head.status == 401 ? errc::unauthorized : errc::unexpected_status,
        fmt::format("GET {}: {} {}", r.at.str(), r.head.status, detail::error_summary(body)));
}

CZ_DECL asio::awaitable<std::pair<std::error_code, fetched_manifest>>
registry_client::get_manifest(const reference& ref, std::string part) {
    using result = std::pair<std::error_code, fetched_manifest>;
    if (part.empty()) part = ref.digest ? ref.digest->str() : ref.tag;
    auto u = registry_url(ref, "/v2/" + ref.path + "/manifests/" + part);
    http_request req;
    req.headers.push_back(
        {"Accept", fmt::format("{}, {}, {}, {}", media_type::oci_index, media_type::oci_manifest,
                               media_type::docker_manifest_list, media_type::docker_manifest)});
    auto r = co_await send(u, req, "repository:" + ref.path + ":pull");
    if (r.ec) co_return result{r.ec, {}};
    auto [ec, body] = co_await read_body(r, max_document_size);
    auto where = fmt::format("GET {}", r.at.str());
    if (ec == cz::errc::too_large)
        co_return result{fail(oci::errc::document_too_large,
                              fmt::format("{}: larger than {} bytes", where, max_document_size)),
                         {}};
    if (ec) co_return result{fail(ec, fmt::format("{}: {}", where, ec.message())), {}};
    if (r.head.status == 404)
        co_return result{
            fail(oci::errc::not_found, fmt::format("{}: {}", where, detail::error_summary(body))),
            {}};
    if (r.head.status != 200)
        co_return result{
            fail(r.head.status == 401 ? errc::unauthorized : errc::unexpected_status,
                 fmt::format("{}: {} {}{}", where, r.head.status, detail::error_summary(body),
                             detail::tries_note(r.tries))),
            {}};
    fetched_manifest m;
    sha256_hasher h;
    h.update(as_bytes(body));
    m.desc.digest = h.final();
    m.desc.size = static_cast<std::int64_t>(body.size());
    // The digest asked for, or the one the registry says it sent, must be the bytes' own.
    std::optional<cz::digest> expected;
    if (part.starts_with("sha256:")) expected = cz::digest::parse(part, ec);
    if (auto announced = r.head.header("docker-content-digest"); announced && !expected) {
        auto d = cz::digest::parse(*announced, ec);
        if (!ec) expected = d;
    }
    if (expected && !(*expected == m.desc.digest))
        co_return result{fail(oci::errc::digest_mismatch,
                              fmt::format("{}: the manifest hashes to {}, not {}", where,
                                          m.desc.digest.str(), expected->str())),
                         {}};
    m.media_type = detail::media_type_of(r.head, body);
    if (m.media_type.empty())
        co_return result{fail(oci::errc::unsupported_media_type,
                              fmt::format("{}: neither a manifest nor an index", where)),
                         {}};
    m.desc.media_type = m.media_type;
    m.bytes = std::move(body);
    co_return result{std::error_code{}, std::move(m)};
}

CZ_DECL asio::awaitable<std::pair<std::error_code, descriptor>>
registry_client::fetch_blob(reference ref, descriptor d, const content_store& content) {
    using result = std::pair<std::error_code, descriptor>;
    std::error_code ec;
    std::string detail_text;
    auto writer = co_await detail::begin_write(content, d, ec, detail_text);
    if (ec) co_return result{fail(ec, fmt::format("blob {}: {}", d.digest.str(), detail_text)), {}};
    if (writer.already_stored()) co_return result{std::error_code{}, d};
    // However the fetch ends, an ingest file it wrote nothing into is not left behind (one with
    // bytes in it stays for the next pull to resume from).
    detail::drop_if_empty drop(writer);
    auto u = registry_url(ref, "/v2/" + ref.path + "/blobs/" + d.digest.str());
    blob_progress progress{d.digest, writer.offset(), static_cast<std::uint64_t>(d.size), false};
    std::vector<std::byte> buffers[2] = {std::vector<std::byte>(detail::store_piece),
                                         std::vector<std::byte>(detail::store_piece)};
    for (int tries = 1;; ++tries) {
        http_request req;
        if (writer.offset() > 0)
            req.headers.push_back({"Range", fmt::format("bytes={}-", writer.offset())});
        auto r = co_await send(u, req, "repository:" + ref.path + ":pull");
        if (r.ec) co_return result{r.ec, {}};
        auto where = fmt::format("GET {}", r.at.str());
        if (r.head.status == 200 && writer.offset() > 0) {
            // The range was ignored: start over.
            writer.abort();
            writer = co_await detail::begin_write(content, d, ec, detail_text);
            if (ec)
                co_return result{fail(ec, fmt::format("blob {}: {}", d.digest.str(), detail_text)),
                                 {}};
        } else if (r.head.status != 200 && r.head.status != 206) {
            auto [bec, body] = co_await read_body(r, 64 * 1024);
            auto code = r.head.status == 404   ? make_error_code(oci::errc::not_found)
                        : r.head.status == 401 ? make_error_code(errc::unauthorized)
                                               : make_error_code(errc::unexpected_status);
            co_return result{
                fail(code, fmt::format("{}: {} {}{}", where, r.head.status,
                                       detail::error_summary(body), detail::tries_note(r.tries))),
                {}};
        }
        // What the registry is about to send must be what is missing, no more, no less.
        if (auto length = r.head.header("content-length"); length && d.size >= 0) {
            auto missing = std::to_string(static_cast<std::uint64_t>(d.size) - writer.offset());
            if (*length != missing)
                co_return result{fail(oci::errc::size_mismatch,
                                      fmt::format("{}: {} bytes announced, {} expected", where,
                                                  *length, missing)),
                                 {}};
        }
        // Two buffers: while the bytes in one are hashed and written (store(), on the store
        // pool), the next ones are received into the other.
        std::error_code read_ec, store_ec;
        std::size_t pending = 0; // bytes in buffers[1 - current], not stored yet
        int current = 0;
        for (;;) {
            detail::body_piece got;
            if (pending == 0) {
                got = co_await detail::fill(*r.conn, buffers[current]);
            } else {
                using namespace asio::experimental::awaitable_operators;
                auto [piece, stored_ec] =
                    co_await (detail::fill(*r.conn, buffers[current]) &&
                              store(writer, bytes_view(buffers[1 - current]).first(pending)));
                got = piece;
                store_ec = stored_ec;
                if (!store_ec) {
                    progress.done = writer.offset();
                    if (progress_) progress_(progress);
                }
            }
            if (!store_ec && got.size > 0 && (got.ec || got.ended)) {
                // The last bytes: nothing more to receive meanwhile.
                store_ec = co_await store(writer, bytes_view(buffers[current]).first(got.size));
                got.size = 0;
                if (!store_ec) {
                    progress.done = writer.offset();
                    if (progress_) progress_(progress);
                }
            }
            if (store_ec) {
                if (store_ec != oci::errc::size_mismatch)
                    co_return result{
                        fail(store_ec, fmt::format("{}: writing blob {}: {}", where, d.digest.str(),
                                                   store_ec.message())),
                        {}};
                writer.abort();
                co_return result{fail(store_ec, fmt::format("{}: more bytes than the {} announced",
                                                            where, d.size)),
                                 {}};
            }
            if (got.ec || got.ended) {
                read_ec = got.ec;
                break;
            }
            pending = got.size;
            current = 1 - current;
        }
        checkin(r.at, std::move(r.conn));
        if (read_ec) {
            // Cut off: resume from what is on disk.
            if (tries >= options_.attempts)
                co_return result{fail(read_ec, fmt::format("{}: {} after {} tries", where,
                                                           read_ec.message(), tries)),
                                 {}};
            co_await detail::sleep_for(options_.backoff * (1 << std::min(tries - 1, 10)));
            continue;
        }
        auto stored = writer.commit(ec, &detail_text);
        if (ec) co_return result{fail(ec, fmt::format("{}: {}", where, detail_text)), {}};
        progress.finished = true;
        if (progress_) progress_(progress);
        co_return result{std::error_code{}, stored};
    }
}

CZ_DECL asio::awaitable<std::error_code> registry_client::store(blob_writer& w, bytes_view data) {
    std::error_code ec;
    if (options_.store_threads == 0) {
        w.write(data, ec);
        co_return ec;
    }
    if (!store_pool_) store_pool_ = std::make_unique<asio::thread_pool>(options_.store_threads);
    // The writer is the caller's, untouched by it until this completes; back on the client's
    // executor when it does (co_spawn's completion goes through use_awaitable's).
    co_return co_await asio::co_spawn(store_pool_->get_executor(), detail::write_piece(w, data),
                                      asio::use_awaitable);
}

CZ_DECL asio::awaitable<void> registry_client::fetch_worker(reference ref, pull_state& state,
                                                            const content_store& content) {
    while (state.next < state.blobs.size() && !state.first_error) {
        auto d = state.blobs[state.next++];
        auto [e, stored] = co_await fetch_blob(ref, d, content);
        if (e && !state.first_error) state.first_error = e;
    }
}

CZ_DECL asio::awaitable<std::pair<std::error_code, descriptor>>
registry_client::pull(reference ref, platform want, const image_store& images) {
    using result = std::pair<std::error_code, descriptor>;
    const auto& content = images.content();
    std::error_code ec;
    std::string detail_text;
    auto [top_ec, top] = co_await get_manifest(ref, {});
    if (top_ec) co_return result{top_ec, {}};
    fetched_manifest chosen = top;
    bool is_index = top.media_type == media_type::oci_index ||
                    top.media_type == media_type::docker_manifest_list;
    if (is_index) {
        auto index = parse_index(top.bytes, ec, &detail_text);
        if (ec)
            co_return result{fail(ec, fmt::format("{}: index: {}", ref.str(), detail_text)), {}};
        auto* entry = select_platform(index, want, ec, &detail_text);
        if (ec || !entry)
            co_return result{fail(ec ? ec : make_error_code(oci::errc::no_matching_platform),
                                  fmt::format("{}: {}", ref.str(), detail_text)),
                             {}};
        auto [m_ec, m] = co_await get_manifest(ref, entry->digest.str());
        if (m_ec) co_return result{m_ec, {}};
        chosen = std::move(m);
    }
    auto parsed = parse_manifest(chosen.bytes, ec, &detail_text);
    if (ec) co_return result{fail(ec, fmt::format("{}: manifest: {}", ref.str(), detail_text)), {}};
    if (manifest_) manifest_(chosen.desc, parsed);

    // The config and layers, a few at once; then the documents that name them.
    pull_state state;
    std::set<cz::digest> seen;
    std::vector<const descriptor*> all{&parsed.config};
    for (const auto& l : parsed.layers)
        all.push_back(&l);
    for (const auto* d : all)
        if (seen.insert(d->digest).second && !content.contains(d->digest))
            state.blobs.push_back(*d);
    asio::steady_timer all_done(ex_, asio::steady_timer::time_point::max());
    auto workers = std::min(std::max<std::size_t>(options_.concurrency, 1), state.blobs.size());
    for (std::size_t i = 0; i < workers; ++i) {
        ++state.running;
        asio::co_spawn(ex_, fetch_worker(ref, state, content),
                       detail::worker_done{&state, &all_done});
    }
    if (state.running > 0) {
        std::error_code ignored;
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (state.first_error) co_return result{state.first_error, {}};

    auto stored = content.put(chosen.media_type, chosen.bytes, ec, &detail_text);
    if (!ec && is_index) stored = content.put(top.media_type, top.bytes, ec, &detail_text);
    if (ec) co_return result{fail(ec, fmt::format("{}: storing: {}", ref.str(), detail_text)), {}};
    images.tag(ref.str(), stored, ec, &detail_text);
    if (ec) co_return result{fail(ec, fmt::format("{}: tagging: {}", ref.str(), detail_text)), {}};
    co_return result{std::error_code{}, stored};
}

} // namespace cz::oci::registry

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
