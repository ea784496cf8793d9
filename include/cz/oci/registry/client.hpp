// cz/oci/registry/client.hpp — a registry client (OCI distribution spec): manifests and blobs
// pulled into cz/oci's store, verified, resumed, retried (needs Asio and BoringSSL).
//
// Protocol primer (distribution spec, "pull"):
//   GET /v2/<name>/manifests/<tag|digest>   Accept: the manifest and index media types
//       -> 200, the document; Docker-Content-Digest; Content-Type says which kind it is
//   GET /v2/<name>/blobs/<digest>           [Range: bytes=N- to resume]
//       -> 200 (or 206 from N), possibly after a redirect to another host (a CDN)
//   401 + WWW-Authenticate: Bearer realm=R,service=S,scope=repository:<name>:pull
//       -> GET R?service=S&scope=... (with Basic credentials if any) -> {"token": ...}
//          (with an identity token: POST R grant_type=refresh_token&... -> {"access_token": ...})
//       -> the request again with Authorization: Bearer <token>
//   401 + WWW-Authenticate: Basic realm=...  -> the request again with the credentials
// Everything the registry sends is checked: manifests are capped at 4 MiB and must hash to the
// digest asked for; blobs are streamed into the store's ingest area while hashed and committed
// only at their announced size and digest. A registry is spoken to over HTTPS unless it is in
// registry_options::insecure or on a loopback address, through the HTTP proxy that
// registry_options::proxy names for it, if any.
//
// Usage (one thread; the client must outlive its operations):
//     registry_client client(io.get_executor());
//     auto [ec, d] = co_await client.async_pull(ref, host_platform(), images, as_tuple(...));
#pragma once

#include <cz/core/asio_operation.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/registry/challenge.hpp>
#include <cz/oci/registry/credentials.hpp>
#include <cz/oci/registry/proxy.hpp>
#include <cz/oci/registry/transport.hpp>
#include <cz/oci/registry/url.hpp>
#include <cz/oci/store.hpp>

#include <asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cz::oci::registry {

namespace detail {
class push_operation; // push.hpp
} // namespace detail

struct registry_options {
    // Registries (host[:port], as in references) spoken to over plain HTTP.
    std::vector<std::string> insecure;
    tls_options tls;
    // The HTTP proxies to reach registries through, and the hosts reached directly
    // (proxy.hpp); none by default. proxy_from_environment() fills it as docker would.
    proxy_settings proxy;
    http_timeouts timeouts;
    // Blobs fetched at once by a pull, or uploaded at once by a push (push.hpp).
    std::size_t concurrency = 4;
    // Threads that hash fetched blob bytes and write them into the store, beside the thread
    // running the client, which meanwhile receives the next bytes (two buffers per blob); 0:
    // everything on the client's thread. A cold pull on loopback spends about as long in the
    // kernel receiving and writing as in sha256 (benchmarks/registry_pull.cpp).
    std::size_t store_threads = 2;
    // A push sends a blob larger than this in chunks of this size (POST, PATCH..., PUT), a
    // smaller one in a single PUT; 0: every blob in a single PUT.
    std::uint64_t upload_chunk_size = 64 << 20;
    // Tries per request, for connection errors, 5xx and 429; the wait between them starts at
    // `backoff` and doubles (the answer's Retry-After, seconds or a date, when given, instead,
    // but never longer than `max_retry_after`).
    int attempts = 5;
    std::chrono::milliseconds backoff{200};
    std::chrono::seconds max_retry_after{60};
    // The credentials for a registry (its host[:port]), asked when it wants some.
    std::function<std::optional<registry::credentials>(std::string_view registry)> credentials;
};

// A blob being fetched: called as bytes arrive, and once more with `finished`.
struct blob_progress {
    cz::digest digest;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    bool finished = false;
};

struct fetched_manifest {
    std::string media_type;
    std::string bytes;
    descriptor desc; // media type, digest of the bytes, size
};

namespace detail {

// Where a redirect from `from` with the Location `location` goes, as the client follows it:
// errc::invalid_url for a Location that is no URL, errc::refused_redirect for one from HTTPS to
// plain HTTP or past `max_redirects` (`redirects` counts this one); `why` says which.
CZ_DECL url follow_redirect(const url& from, std::string_view location, int redirects,
                            std::error_code& ec, std::string& why);
inline constexpr int max_redirects = 5;

} // namespace detail

class registry_client {
public:
    using executor_type = asio::any_io_executor;

    CZ_DECL explicit registry_client(executor_type ex, registry_options options = {});
    registry_client(const registry_client&) = delete;
    registry_client& operator=(const registry_client&) = delete;

    executor_type get_executor() const noexcept { return ex_; }
    void on_progress(std::function<void(const blob_progress&)> f) { progress_ = std::move(f); }
    // Called once a pull has chosen the manifest for its platform (`d` its descriptor, `m` its
    // parsed form), before it fetches the config and layers that `m` lists: a caller can start
    // on the layers as they arrive in the store (cz/container builds its root filesystem so).
    void on_manifest(std::function<void(const descriptor& d, const manifest& m)> f) {
        manifest_ = std::move(f);
    }

    // The manifest or index `ref` names (by its digest when it has one, else its tag).
    // Completion: void(std::error_code, fetched_manifest).
    template <class CompletionToken>
    auto async_get_manifest(const reference& ref, CompletionToken&& token) {
        return cz::detail::spawn_operation(ex_, get_manifest(ref, {}),
                                           std::forward<CompletionToken>(token));
    }

    // Fetches blob `d` of `ref`'s repository into `content` (nothing when it is there already).
    // Completion: void(std::error_code, descriptor).
    template <class CompletionToken>
    auto async_fetch_blob(const reference& ref, const descriptor& d, const content_store& content,
                          CompletionToken&& token) {
        return cz::detail::spawn_operation(ex_, fetch_blob(ref, d, content),
                                           std::forward<CompletionToken>(token));
    }

    // Pulls `ref` for platform `want` into `images`: the manifest (and the index it came
    // from), its config and layers, then the tag `ref.str()`. Completion: void(std::error_code,
    // descriptor) with what was tagged.
    template <class CompletionToken>
    auto async_pull(const reference& ref, const platform& want, const image_store& images,
                    CompletionToken&& token) {
        return cz::detail::spawn_operation(ex_, pull(ref, want, images),
                                           std::forward<CompletionToken>(token));
    }

    // GET /v2/ of `registry` (host[:port], as references name it) through the authentication
    // flow, with what options.credentials gives for it: whether the registry answers and takes
    // those credentials (`cz login` checks them so before keeping them). Completion:
    // void(std::error_code); errc::unauthorized when they are refused.
    template <class CompletionToken>
    auto async_check_credentials(std::string registry, CompletionToken&& token) {
        return cz::detail::spawn_operation(ex_, check_credentials(std::move(registry)),
                                           std::forward<CompletionToken>(token));
    }

    // What the last failed operation was doing, in the registry's terms ("GET
    // https://.../manifests/latest: 404 MANIFEST_UNKNOWN ...").
    const std::string& last_error() const noexcept { return last_error_; }

    // A pull's blobs, shared by its fetch workers.
    struct pull_state {
        std::vector<descriptor> blobs;
        std::size_t next = 0;    // the next blob a worker takes
        std::size_t running = 0; // workers not finished
        std::error_code first_error;
    };

private:
    friend class detail::push_operation; // sends requests through send(), like pull

    struct response {
        std::error_code ec;
        http_response_head head;
        std::unique_ptr<registry_connection> conn; // the body is still to be read from it
        url at;                                    // where the answer came from
        int tries = 1; // requests sent for it: more than one after 5xx, 429 or a lost connection
    };

    CZ_DECL url registry_url(const reference& ref, std::string target) const;
    CZ_DECL asio::awaitable<std::pair<std::error_code, std::unique_ptr<registry_connection>>>
    checkout(const url& u, std::string* why = nullptr);
    CZ_DECL void checkin(const url& u, std::unique_ptr<registry_connection> c);
    CZ_DECL asio::awaitable<response> send(url u, http_request r, std::string scope);
    CZ_DECL asio::awaitable<std::error_code> authenticate(const url& u, std::string_view header,
                                                          const std::string& scope);
    CZ_DECL asio::awaitable<std::pair<std::error_code, std::string>> read_body(response& r,
                                                                               std::size_t max);
    CZ_DECL asio::awaitable<std::pair<std::error_code, fetched_manifest>>
    get_manifest(const reference& ref, std::string reference_part);
    CZ_DECL asio::awaitable<std::pair<std::error_code, descriptor>>
    fetch_blob(reference ref, descriptor d, const content_store& content);
    CZ_DECL asio::awaitable<std::error_code> store(blob_writer& w, bytes_view data);
    CZ_DECL asio::awaitable<void> fetch_worker(reference ref, pull_state& state,
                                               const content_store& content);
    CZ_DECL asio::awaitable<std::pair<std::error_code, descriptor>>
    pull(reference ref, platform want, const image_store& images);
    CZ_DECL asio::awaitable<std::error_code> check_credentials(std::string registry);
    CZ_DECL std::error_code fail(std::error_code ec, std::string what);

    executor_type ex_;
    registry_options options_;
    asio::ssl::context tls_;
    proxy_selector proxies_;
    std::function<void(const blob_progress&)> progress_;
    std::function<void(const descriptor&, const manifest&)> manifest_;
    // Idle connections by origin, and the Authorization to send by origin (+ scope for tokens).
    std::map<std::string, std::vector<std::unique_ptr<registry_connection>>> idle_;
    struct token {
        std::string header;
        std::chrono::steady_clock::time_point expires;
    };
    std::map<std::string, token> authorization_;
    // Where blobs are known to be, for a push to mount them from: "origin digest" -> repository.
    std::map<std::string, std::string> blob_homes_;
    std::string last_error_;
    // Where blob bytes are hashed and written (options_.store_threads), made on first use. Last,
    // so that it is joined first: a job in flight refers to a coroutine's writer.
    std::unique_ptr<asio::thread_pool> store_pool_;
};

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/client.ipp>
#endif
