// Out-of-line definitions for cz/oci/registry/push.hpp.
#pragma once

#include <cz/core/syscall.hpp>
#include <cz/oci/media_types.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/registry/push.hpp>
// The helpers push shares with pull (sleep_for, retry_wait, error_summary), wherever client.ipp
// is compiled.
#include <cz/oci/registry/impl/client.ipp>

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <memory>

// g++ 12 takes a coroutine frame's class-specific operator delete (Asio's awaitable_frame_base
// defines both new and delete) for a mismatch at -O2: a false positive, silenced for this file's
// coroutines.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace cz::oci::registry {
namespace detail {

inline bool is_index_type(std::string_view type) {
    return type == media_type::oci_index || type == media_type::docker_manifest_list;
}

// Layers that must not leave the registry they came from (Windows base layers): docker and
// containerd never push them, and neither does cz.
inline bool is_nondistributable(std::string_view type) {
    return type == media_type::oci_layer_nondistributable ||
           type == media_type::oci_layer_nondistributable_gzip ||
           type == media_type::docker_layer_foreign_gzip ||
           type == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

// The last byte an upload session holds, from its Range header: "0-1023" as distribution writes
// it, "bytes=0-1023" as the spec does.
inline std::optional<std::uint64_t> upload_range_end(std::string_view v) {
    if (v.starts_with("bytes=")) v.remove_prefix(6);
    if (!v.starts_with("0-")) return std::nullopt;
    v.remove_prefix(2);
    std::uint64_t end = 0;
    auto [p, e] = std::from_chars(v.data(), v.data() + v.size(), end);
    if (e != std::errc{} || p != v.data() + v.size()) return std::nullopt;
    return end;
}

// `u` with a query parameter added, after the ones an upload's Location already carries.
inline url with_query(url u, std::string_view name, std::string_view value) {
    u.target += u.target.find('?') == std::string::npos ? '?' : '&';
    u.target += std::string(name) + "=" + query_escape(value);
    return u;
}

inline std::error_code status_error(int status) {
    if (status == 401 || status == 403) return errc::unauthorized;
    if (status == 404) return oci::errc::not_found;
    return errc::unexpected_status;
}

// Calls `f(digest, repository-path)` for every blob (config, layer) the image at `d` reaches
// in the store, through indexes at most 8 deep; documents that are missing or do not parse are
// passed over (the store may hold one platform of an index).
template <class F>
void for_each_stored_blob(const content_store& content, const descriptor& d, int depth, F&& f) {
    std::error_code ec;
    auto bytes = content.read(d, max_document_size, ec);
    if (ec || depth > 8) return;
    auto type = d.media_type.empty() ? std::string(detect_media_type(bytes)) : d.media_type;
    if (is_index_type(type)) {
        auto index = parse_index(std::move(bytes), ec);
        if (ec) return;
        for (const auto& child : index.manifests)
            if (content.contains(child.digest)) for_each_stored_blob(content, child, depth + 1, f);
        return;
    }
    auto m = parse_manifest(std::move(bytes), ec);
    if (ec) return;
    f(m.config.digest);
    for (const auto& l : m.layers)
        f(l.digest);
}

} // namespace detail

CZ_DECL detail::push_operation::push_operation(registry_client& client, const image_store& images,
                                               reference remote, push_options options)
    : client_(client), images_(images), remote_(std::move(remote)), options_(std::move(options)) {}

CZ_DECL std::string detail::push_operation::scope() const {
    return "repository:" + remote_.path + ":pull,push";
}

CZ_DECL url detail::push_operation::at(std::string target) const {
    return client_.registry_url(remote_, "/v2/" + remote_.path + std::move(target));
}

CZ_DECL std::error_code detail::push_operation::fail(std::error_code ec, std::string what) {
    return client_.fail(ec, std::move(what));
}

CZ_DECL void detail::push_operation::report(const descriptor& d, std::uint64_t done, push_step step,
                                            std::string from) {
    if (!options_.progress) return;
    push_progress p;
    p.digest = d.digest;
    p.done = done;
    p.total = static_cast<std::uint64_t>(std::max<std::int64_t>(d.size, 0));
    p.step = step;
    p.from = std::move(from);
    options_.progress(p);
}

CZ_DECL asio::awaitable<std::pair<std::error_code, push_result>>
detail::push_operation::run(std::string local_name) {
    using result = std::pair<std::error_code, push_result>;
    local_name_ = std::move(local_name);
    std::error_code ec;
    std::string why;
    auto top = images_.lookup(local_name_, ec, &why);
    if (ec) co_return result{fail(ec, fmt::format("image {}: {}", local_name_, why)), {}};
    if (remote_.digest && !(*remote_.digest == top.digest))
        co_return result{fail(oci::errc::digest_mismatch,
                              fmt::format("{}: image {} is {}, not that digest", remote_.str(),
                                          local_name_, top.digest.str())),
                         {}};
    if (auto e = co_await collect(top, 0)) co_return result{e, {}};
    if (auto e = co_await push_blobs()) co_return result{e, {}};
    // Children by digest, then the image itself under the reference's tag (or digest).
    for (std::size_t i = 0; i + 1 < documents_.size(); ++i)
        if (auto e = co_await put_manifest(documents_[i], documents_[i].desc.digest.str()))
            co_return result{e, {}};
    const auto& image = documents_.back();
    // Named, not a conditional expression inside co_await: g++ 12 destroys such a temporary
    // twice.
    std::string part = remote_.tag;
    if (part.empty()) part = image.desc.digest.str();
    if (auto e = co_await put_manifest(image, part)) co_return result{e, {}};
    result_.pushed = image.desc;
    co_return result{std::error_code{}, result_};
}

// Reads the document `d` and what it names from the store: its blobs into blobs_, itself (after
// its children) into documents_. A child manifest the store lacks must already be in the
// repository (the store may hold one platform of a pulled index).
CZ_DECL asio::awaitable<std::error_code> detail::push_operation::collect(const descriptor& d,
                                                                         int depth) {
    if (!seen_.insert(d.digest).second) co_return std::error_code{};
    auto where = fmt::format("image {}: {}", local_name_, d.digest.str());
    if (depth > 8)
        co_return fail(oci::errc::index_too_deep, where + ": indexes nested more than 8 deep");
    std::error_code ec;
    std::string why;
    const auto& content = images_.content();
    auto bytes = content.read(d, max_document_size, ec, &why);
    if (ec) co_return fail(ec, fmt::format("{}: {}", where, why));
    document doc{d, bytes};
    if (doc.desc.media_type.empty()) doc.desc.media_type = detect_media_type(bytes);
    if (is_index_type(doc.desc.media_type)) {
        auto index = parse_index(std::move(bytes), ec, &why);
        if (ec) co_return fail(ec, fmt::format("{}: index: {}", where, why));
        for (const auto& child : index.manifests) {
            if (content.contains(child.digest)) {
                if (auto e = co_await collect(child, depth + 1)) co_return e;
                continue;
            }
            auto [e, there] = co_await exists("manifests", child.digest);
            if (e) co_return e;
            if (!there)
                co_return fail(oci::errc::not_found,
                               fmt::format("{}: index: manifest {} is neither in the store nor in "
                                           "{}",
                                           where, child.digest.str(), remote_.name()));
            ++result_.present;
        }
    } else {
        auto m = parse_manifest(std::move(bytes), ec, &why);
        if (ec) co_return fail(ec, fmt::format("{}: manifest: {}", where, why));
        std::vector<descriptor> blobs{m.config};
        blobs.insert(blobs.end(), m.layers.begin(), m.layers.end());
        for (auto& b : blobs)
            if (!detail::is_nondistributable(b.media_type) && seen_.insert(b.digest).second)
                blobs_.push_back(std::move(b));
    }
    documents_.push_back(std::move(doc));
    co_return std::error_code{};
}

// HEAD of a blob or manifest in the destination repository: whether it is there.
CZ_DECL asio::awaitable<std::pair<std::error_code, bool>>
detail::push_operation::exists(std::string_view kind, const cz::digest& d) {
    using result = std::pair<std::error_code, bool>;
    http_request req;
    req.method = "HEAD";
    if (kind == "manifests")
        req.headers.push_back(
            {"Accept",
             fmt::format("{}, {}, {}, {}", media_type::oci_index, media_type::oci_manifest,
                         media_type::docker_manifest_list, media_type::docker_manifest)});
    auto r = co_await client_.send(at(fmt::format("/{}/{}", kind, d.str())), req, scope());
    if (r.ec) co_return result{r.ec, false};
    auto [ec, body] = co_await client_.read_body(r, 64 * 1024);
    auto where = fmt::format("HEAD {}", r.at.str());
    if (ec) co_return result{fail(ec, fmt::format("{}: {}", where, ec.message())), false};
    if (r.head.status == 200) co_return result{std::error_code{}, true};
    if (r.head.status == 404) co_return result{std::error_code{}, false};
    co_return result{fail(detail::status_error(r.head.status),
                          fmt::format("{}: {} {}", where, r.head.status, r.head.reason)),
                     false};
}

// The blobs, options.concurrency at a time, by workers that take the next one in turn.
CZ_DECL asio::awaitable<std::error_code> detail::push_operation::push_blobs() {
    auto ex = client_.get_executor();
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    auto workers = std::min(std::max<std::size_t>(client_.options_.concurrency, 1), blobs_.size());
    for (std::size_t i = 0; i < workers; ++i) {
        ++running_;
        asio::co_spawn(ex, blob_worker(), [this, &all_done](std::exception_ptr e) {
            if (e && !first_error_) {
                first_error_ = cz::detail::error_from(e);
                first_error_text_ =
                    fmt::format("{}: pushing blobs: {}", remote_.str(), first_error_.message());
            }
            if (--running_ == 0) all_done.cancel();
        });
    }
    if (running_ > 0) {
        std::error_code ignored;
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (first_error_) client_.last_error_ = first_error_text_; // not a later worker's
    co_return first_error_;
}

CZ_DECL asio::awaitable<void> detail::push_operation::blob_worker() {
    while (next_blob_ < blobs_.size() && !first_error_) {
        auto d = blobs_[next_blob_++];
        auto e = co_await push_blob(d);
        if (e && !first_error_) {
            first_error_ = e;
            first_error_text_ = client_.last_error();
        }
    }
}

// One blob: nothing when the repository has it, a mount when another repository has it,
// otherwise an upload, begun again after failures that a new session may get past.
CZ_DECL asio::awaitable<std::error_code> detail::push_operation::push_blob(const descriptor& d) {
    auto home = client_.registry_url(remote_, "/").origin() + " " + d.digest.str();
    auto [e, there] = co_await exists("blobs", d.digest);
    if (e) co_return e;
    if (there) {
        ++result_.present;
        client_.blob_homes_[home] = remote_.path;
        report(d, static_cast<std::uint64_t>(d.size), push_step::present);
        co_return std::error_code{};
    }
    if (!images_.content().contains(d.digest))
        co_return fail(oci::errc::not_found,
                       fmt::format("image {}: blob {} is neither in the store nor in {}",
                                   local_name_, d.digest.str(), remote_.name()));
    auto from = mount_source(d.digest);
    for (int tries = 1;; ++tries) {
        bool mounted = false;
        auto session = co_await start_upload(d, from, mounted);
        if (!session.ec && mounted) {
            ++result_.mounted;
            client_.blob_homes_[home] = remote_.path;
            report(d, static_cast<std::uint64_t>(d.size), push_step::mounted, from);
            co_return std::error_code{};
        }
        from.clear(); // a mount is asked for once; its 202 was an upload session
        if (!session.ec) session = co_await upload(d, session.location);
        if (!session.ec) {
            ++result_.uploaded;
            client_.blob_homes_[home] = remote_.path;
            report(d, static_cast<std::uint64_t>(d.size), push_step::uploaded);
            co_return std::error_code{};
        }
        if (!session.retry || tries >= client_.options_.attempts) co_return session.ec;
        co_await detail::sleep_for(detail::retry_wait(client_.options_.backoff, tries, std::nullopt,
                                                      client_.options_.max_retry_after));
    }
}

// POST .../blobs/uploads/ (with ?mount=&from= when `from` is set): an upload session, or
// `mounted`.
CZ_DECL asio::awaitable<detail::push_operation::upload_session>
detail::push_operation::start_upload(const descriptor& d, const std::string& from, bool& mounted) {
    auto u = at("/blobs/uploads/");
    if (!from.empty()) u = with_query(with_query(u, "mount", d.digest.str()), "from", from);
    http_request req;
    req.method = "POST";
    auto r = co_await client_.send(u, req, scope());
    if (r.ec) co_return upload_session::failure(r.ec, false);
    auto [ec, body] = co_await client_.read_body(r, 64 * 1024);
    auto where = fmt::format("POST {}", r.at.str());
    if (ec)
        co_return upload_session::failure(fail(ec, fmt::format("{}: {}", where, ec.message())),
                                          true);
    if (!from.empty() && r.head.status == 201) {
        auto announced = r.head.header("docker-content-digest");
        if (announced && *announced != d.digest.str())
            co_return upload_session::failure(
                fail(oci::errc::digest_mismatch,
                     fmt::format("{}: mounted as {}", where, *announced)),
                false);
        mounted = true;
        co_return upload_session{};
    }
    if (r.head.status != 202)
        co_return upload_session::failure(
            fail(detail::status_error(r.head.status),
                 fmt::format("{}: {} {}", where, r.head.status, detail::error_summary(body))),
            r.head.status >= 500);
    auto location = r.head.header("location");
    if (!location)
        co_return upload_session::failure(
            fail(errc::unexpected_status, where + ": 202 without a Location"), false);
    error_info detail;
    auto next = resolve_location(r.at, *location, ec, &detail);
    if (ec)
        co_return upload_session::failure(
            fail(ec, fmt::format("{}: Location '{}': {}", where, *location, to_string(detail))),
            false);
    upload_session s;
    s.location = std::move(next);
    co_return s;
}

// The blob's bytes into the session at `location`: one PUT, or PATCHes of
// options.upload_chunk_size and a PUT that commits them.
CZ_DECL asio::awaitable<detail::push_operation::upload_session>
detail::push_operation::upload(const descriptor& d, url location) {
    std::error_code ec;
    auto size = static_cast<std::uint64_t>(d.size);
    auto chunk = client_.options_.upload_chunk_size;
    if (chunk == 0 || size <= chunk) {
        http_request req;
        req.method = "PUT";
        req.headers.push_back({"Content-Type", "application/octet-stream"});
        req.body_reader = blob_reader(d, 0, size, ec);
        if (ec) co_return upload_session::failure(ec, false);
        co_return co_await send_upload(
            std::move(req), with_query(location, "digest", d.digest.str()), 201, &d.digest);
    }
    for (std::uint64_t offset = 0; offset < size;) {
        auto n = std::min(chunk, size - offset);
        http_request req;
        req.method = "PATCH";
        req.headers.push_back({"Content-Type", "application/octet-stream"});
        req.headers.push_back({"Content-Range", fmt::format("{}-{}", offset, offset + n - 1)});
        req.body_reader = blob_reader(d, offset, n, ec);
        if (ec) co_return upload_session::failure(ec, false);
        auto s = co_await send_upload(std::move(req), location, 202, nullptr);
        if (s.ec) co_return s;
        // The next chunk starts after what the session holds (the spec lets a registry take
        // less than it was sent).
        auto next = s.range_end ? *s.range_end + 1 : offset + n;
        if (next <= offset || next > offset + n)
            co_return upload_session::failure(
                fail(errc::unexpected_status,
                     fmt::format("PATCH {}: the session holds bytes 0-{} after bytes {}-{}",
                                 location.str(), next - 1, offset, offset + n - 1)),
                true);
        offset = next;
        location = std::move(s.location);
    }
    http_request req;
    req.method = "PUT";
    co_return co_await send_upload(std::move(req), with_query(location, "digest", d.digest.str()),
                                   201, &d.digest);
}

// One request of an upload session. On success the session's next Location (the same one if
// the answer names none) and the Range it holds; `committed`: the digest the registry must
// answer with.
CZ_DECL asio::awaitable<detail::push_operation::upload_session>
detail::push_operation::send_upload(http_request req, url location, int expected_status,
                                    const cz::digest* committed) {
    auto method = req.method;
    auto r = co_await client_.send(location, std::move(req), scope());
    // The client retried connection errors already; a new session may still get through.
    if (r.ec) co_return upload_session::failure(r.ec, true);
    auto [ec, body] = co_await client_.read_body(r, 64 * 1024);
    auto where = fmt::format("{} {}", method, r.at.str());
    if (ec)
        co_return upload_session::failure(fail(ec, fmt::format("{}: {}", where, ec.message())),
                                          true);
    auto status = r.head.status;
    if (status != expected_status) {
        auto summary = detail::error_summary(body);
        // 404 and 416: the session is gone or out of step; BLOB_UPLOAD_INVALID: distribution's
        // word for a session that lost its place.
        bool retry = status >= 500 || status == 404 || status == 416 ||
                     summary.starts_with("BLOB_UPLOAD_INVALID") ||
                     summary.starts_with("BLOB_UPLOAD_UNKNOWN");
        co_return upload_session::failure(
            fail(detail::status_error(status), fmt::format("{}: {} {}", where, status, summary)),
            retry);
    }
    if (committed) {
        auto announced = r.head.header("docker-content-digest");
        if (announced && *announced != committed->str())
            co_return upload_session::failure(
                fail(oci::errc::digest_mismatch,
                     fmt::format("{}: the registry committed {}", where, *announced)),
                false);
    }
    upload_session s;
    s.location = r.at;
    if (auto next = r.head.header("location")) {
        error_info detail;
        s.location = resolve_location(r.at, *next, ec, &detail);
        if (ec)
            co_return upload_session::failure(
                fail(ec, fmt::format("{}: Location '{}': {}", where, *next, to_string(detail))),
                false);
    }
    if (auto range = r.head.header("range")) s.range_end = detail::upload_range_end(*range);
    co_return s;
}

CZ_DECL asio::awaitable<std::error_code>
detail::push_operation::put_manifest(const document& doc, const std::string& reference_part) {
    http_request req;
    req.method = "PUT";
    req.headers.push_back({"Content-Type", doc.desc.media_type});
    req.body = doc.bytes;
    auto r = co_await client_.send(at("/manifests/" + reference_part), std::move(req), scope());
    if (r.ec) co_return r.ec;
    auto [ec, body] = co_await client_.read_body(r, 64 * 1024);
    auto where = fmt::format("PUT {}", r.at.str());
    if (ec) co_return fail(ec, fmt::format("{}: {}", where, ec.message()));
    if (r.head.status != 201 && r.head.status != 200)
        co_return fail(detail::status_error(r.head.status),
                       fmt::format("{}: {} {}", where, r.head.status, detail::error_summary(body)));
    auto announced = r.head.header("docker-content-digest");
    if (announced && *announced != doc.desc.digest.str())
        co_return fail(oci::errc::digest_mismatch,
                       fmt::format("{}: the registry stored {}, the document is {}", where,
                                   *announced, doc.desc.digest.str()));
    ++result_.manifests;
    co_return std::error_code{};
}

// The repository to mount `d` from, if any: the ones the caller named, then the one the client
// last saw it in, then one whose name an image in the store carries and that reaches it.
CZ_DECL std::string detail::push_operation::mount_source(const cz::digest& d) {
    for (const auto& repository : options_.mount_from)
        if (repository != remote_.path) return repository;
    auto known =
        client_.blob_homes_.find(client_.registry_url(remote_, "/").origin() + " " + d.str());
    if (known != client_.blob_homes_.end() && known->second != remote_.path) return known->second;
    if (!store_homes_) {
        store_homes_.emplace();
        std::error_code ec;
        for (const auto& entry : images_.list(ec)) {
            auto ref = parse_reference(entry.name, ec);
            if (ec || ref.domain != remote_.domain || ref.path == remote_.path) continue;
            detail::for_each_stored_blob(
                images_.content(), entry.target, 0,
                [&](const cz::digest& blob) { store_homes_->emplace(blob, ref.path); });
        }
    }
    auto it = store_homes_->find(d);
    return it == store_homes_->end() ? std::string{} : it->second;
}

// Bytes [base, base + size) of blob `d`, read from its file in the store as they are sent.
CZ_DECL http_body_reader detail::push_operation::blob_reader(const descriptor& d,
                                                             std::uint64_t base, std::uint64_t size,
                                                             std::error_code& ec) {
    auto fd = std::make_shared<unique_fd>(images_.content().open_blob(d.digest, ec));
    if (ec) {
        fail(ec, fmt::format("image {}: blob {}: {}", local_name_, d.digest.str(), ec.message()));
        return {};
    }
    struct ::stat st {};
    if (sys::fstat(fd->get(), &st) != 0) {
        ec = last_system_error();
        fail(ec, fmt::format("image {}: blob {}: {}", local_name_, d.digest.str(), ec.message()));
        return {};
    }
    if (static_cast<std::uint64_t>(st.st_size) != static_cast<std::uint64_t>(d.size)) {
        ec = oci::errc::size_mismatch;
        fail(ec, fmt::format("image {}: blob {} holds {} bytes, its descriptor says {}",
                             local_name_, d.digest.str(), st.st_size, d.size));
        return {};
    }
    http_body_reader reader;
    reader.size = size;
    reader.read = [this, fd, d, base](std::uint64_t offset, mutable_bytes out,
                                      std::error_code& rec) -> std::size_t {
        auto n =
            sys::pread_some(fd->get(), out.data(), out.size(), static_cast<off_t>(base + offset));
        if (n < 0) {
            rec = last_system_error();
            return 0;
        }
        result_.bytes_sent += static_cast<std::uint64_t>(n);
        report(d, base + offset + static_cast<std::uint64_t>(n), push_step::uploading);
        return static_cast<std::size_t>(n);
    };
    return reader;
}

CZ_DECL asio::awaitable<std::pair<std::error_code, push_result>>
detail::push(registry_client& client, const image_store& images, std::string local_name,
             reference remote, push_options options) {
    push_operation op(client, images, std::move(remote), std::move(options));
    co_return co_await op.run(std::move(local_name));
}

} // namespace cz::oci::registry

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
