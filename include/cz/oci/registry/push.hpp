// cz/oci/registry/push.hpp — pushing an image from cz/oci's store to a registry: its blobs, then
// its manifests (needs Asio and BoringSSL).
//
// Protocol primer (distribution spec, "push"), per blob, then per document:
//   HEAD /v2/<name>/blobs/<digest>
//       -> 200: the repository has it; nothing to send
//   POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repository>
//       -> 201: linked from another repository of the same registry; nothing to send
//       -> 202 + Location: no mount (the other repository lacks it): an upload session instead
//   POST /v2/<name>/blobs/uploads/                       -> 202 + Location: an upload session
//   monolithic: PUT <location>?digest=<digest>  Content-Type: application/octet-stream, the blob
//   chunked:    PATCH <location>  Content-Range: <first>-<last> (inclusive), one chunk
//                   -> 202 + Location (the next request goes there) + Range: 0-<last>
//               ... PUT <location>?digest=<digest> with no body
//       -> 201 + Docker-Content-Digest: the blob is committed under its digest
//   PUT /v2/<name>/manifests/<tag|digest>  Content-Type: the document's media type
//       -> 201 + Docker-Content-Digest: the sha256 of the bytes as sent
// Every Location is followed as given (absolute, or a path on the same registry) and the latest
// one is used. An index goes up after its manifests (by digest), a manifest after its config and
// layers, so the registry never holds a document that names something it lacks.
//
// The bytes come from the store: each blob is read from its file as it is sent (never a whole
// layer in memory), and re-read from its start when an upload is retried. A failed upload is
// begun again (a new session) for connection errors, 5xx, and the answers that say the session
// is lost (404, 416); the client's own retries with backoff apply to each request.
//
// Usage (one thread; the client must outlive the operation):
//     registry_client client(io.get_executor());
//     push_options o;
//     o.progress = [](const push_progress& p) { ... };
//     auto [ec, r] = co_await async_push(client, images, "app:1",
//                                        parse_reference("registry.example/team/app:1"), o,
//                                        as_tuple(use_awaitable));
//     // r.pushed: the manifest or index now tagged; r.uploaded, r.present, r.mounted: blobs
#pragma once

#include <cz/oci/registry/client.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cz::oci::registry {

// What a push did, or is doing, with one blob.
enum class push_step {
    uploading, // bytes on their way: `done` of `total`
    uploaded,  // sent by this push and committed by the registry
    present,   // the repository had it already (HEAD): nothing sent
    mounted,   // linked from another repository (`from`) of the registry: nothing sent
};

struct push_progress {
    cz::digest digest;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    push_step step = push_step::uploading;
    std::string from; // mounted: the repository it came from
};

struct push_options {
    // A blob the repository lacks is mounted, once, from the first of: these repositories of
    // the destination registry; the one the client last pushed it to or found it in; one of the
    // same registry that an image in the store reaching it is named after (where it was pulled
    // from). When that repository lacks it too, the registry's 202 starts an upload instead.
    std::vector<std::string> mount_from;
    // Called as blobs go up, and once per blob with its outcome (uploaded, present, mounted).
    std::function<void(const push_progress&)> progress;
};

struct push_result {
    descriptor pushed;            // the manifest or index the remote reference now names
    std::size_t uploaded = 0;     // blobs sent
    std::size_t present = 0;      // blobs (and child manifests) the registry had
    std::size_t mounted = 0;      // blobs linked from another repository
    std::size_t manifests = 0;    // manifests and indexes PUT
    std::uint64_t bytes_sent = 0; // blob bytes sent, retries included
};

namespace detail {

// One push: the documents and blobs under the local image, then the uploads. Lives in the
// coroutine frame of push(); a friend of registry_client, whose requests it sends.
class push_operation {
public:
    CZ_DECL push_operation(registry_client& client, const image_store& images, reference remote,
                           push_options options);

    CZ_DECL asio::awaitable<std::pair<std::error_code, push_result>> run(std::string local_name);

private:
    struct document {
        descriptor desc;
        std::string bytes;
    };
    struct upload_session {
        std::error_code ec;
        bool retry = false; // the failure may pass when the blob is begun again
        url location;
        std::optional<std::uint64_t> range_end; // the last byte the session holds, if said

        static upload_session failure(std::error_code ec, bool retry) {
            upload_session s;
            s.ec = ec;
            s.retry = retry;
            return s;
        }
    };

    CZ_DECL std::string scope() const;
    CZ_DECL url at(std::string target) const;
    CZ_DECL std::error_code fail(std::error_code ec, std::string what);
    CZ_DECL asio::awaitable<std::error_code> collect(const descriptor& d, int depth);
    CZ_DECL asio::awaitable<std::pair<std::error_code, bool>> exists(std::string_view kind,
                                                                     const cz::digest& d);
    CZ_DECL asio::awaitable<std::error_code> push_blobs();
    CZ_DECL asio::awaitable<void> blob_worker();
    CZ_DECL asio::awaitable<std::error_code> push_blob(const descriptor& d);
    CZ_DECL asio::awaitable<upload_session> start_upload(const descriptor& d,
                                                         const std::string& from, bool& mounted);
    CZ_DECL asio::awaitable<upload_session> upload(const descriptor& d, url location);
    CZ_DECL asio::awaitable<upload_session>
    send_upload(http_request req, url location, int expected_status, const cz::digest* committed);
    CZ_DECL asio::awaitable<std::error_code> put_manifest(const document& doc,
                                                          const std::string& reference_part);
    CZ_DECL std::string mount_source(const cz::digest& d);
    CZ_DECL http_body_reader blob_reader(const descriptor& d, std::uint64_t base,
                                         std::uint64_t size, std::error_code& ec);
    CZ_DECL void report(const descriptor& d, std::uint64_t done, push_step step,
                        std::string from = {});

    registry_client& client_;
    const image_store& images_;
    reference remote_;
    push_options options_;
    std::string local_name_;
    // Found by collect(): manifests and indexes to PUT, children first; the blobs they name.
    std::vector<document> documents_;
    std::vector<descriptor> blobs_;
    std::set<cz::digest> seen_;
    // Blob uploads shared by the workers.
    std::size_t next_blob_ = 0;
    std::size_t running_ = 0;
    std::error_code first_error_;
    std::string first_error_text_;
    // Blobs of images in the store named after other repositories of the destination registry.
    std::optional<std::map<cz::digest, std::string>> store_homes_;
    push_result result_;
};

CZ_DECL asio::awaitable<std::pair<std::error_code, push_result>>
push(registry_client& client, const image_store& images, std::string local_name, reference remote,
     push_options options);

} // namespace detail

// Pushes the image that `local_name` names in `images` (a manifest, or an index with the
// manifests it has in the store) to `remote`: blobs the repository lacks, `client.options()
// .concurrency` at a time, then the manifests, then the top document under remote's tag (or
// digest, which must then be the local document's). Errors: oci::errc::not_found for a name not
// in the store or a blob missing from both the store and the registry; registry::errc's for
// what the registry refuses, with client.last_error() saying what it answered.
// Completion: void(std::error_code, push_result).
template <class CompletionToken>
auto async_push(registry_client& client, const image_store& images, std::string_view local_name,
                const reference& remote, push_options options, CompletionToken&& token) {
    return cz::detail::spawn_operation(
        client.get_executor(),
        detail::push(client, images, std::string(local_name), remote, std::move(options)),
        std::forward<CompletionToken>(token));
}

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/push.ipp>
#endif
