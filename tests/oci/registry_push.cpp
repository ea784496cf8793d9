// cz::oci::registry::async_push against docker-registry on loopback: cz pushes images from its
// store (one umoci made, with a layer sent in chunks; an index of two platforms), skopeo pulls
// them back and finds cz's bytes; a second push sends nothing, a push to another repository
// mounts, Basic authentication, and the errors for what cannot be pushed.
#include <cz/oci/registry/push.hpp>

#include <cz/oci/import.hpp>

#include "image.hpp"
#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <map>
#include <thread>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;

namespace {

// An image umoci builds in an OCI layout at `layout`, tagged `tag`: three layers, the second
// `big` bytes of noise (gzip cannot shrink it).
void umoci_image(const std::filesystem::path& layout, const std::string& tag, std::size_t big) {
    auto dir = quote(layout.parent_path().string());
    auto image = quote(layout.string() + ":" + tag);
    sh_ok("cd " + dir + " && umoci init --layout " + quote(layout.string()) +
          " && umoci new --image " + image + " && echo one > one && umoci insert --image " + image +
          " one /one && head -c " + std::to_string(big) +
          " /dev/urandom > big && umoci insert --image " + image +
          " big /big && echo three > three && umoci insert --image " + image + " three /etc/three");
}

struct push_outcome {
    std::error_code ec;
    reg::push_result result;
    std::string last_error;
    std::vector<reg::push_progress> progress;
};

// Pushes `local` from `images` to `remote` with a client of its own.
push_outcome push(const oci::image_store& images, const std::string& local,
                  const std::string& remote, reg::registry_options options = {},
                  reg::push_options push_options = {}) {
    push_outcome out;
    run([&](asio::io_context& io) -> asio::awaitable<void> {
        reg::registry_client client(io.get_executor(), options);
        push_options.progress = [&](const reg::push_progress& p) { out.progress.push_back(p); };
        auto [ec, r] = co_await reg::async_push(client, images, local, oci::parse_reference(remote),
                                                push_options, as_tuple(asio::use_awaitable));
        out = {ec, r, client.last_error(), std::move(out.progress)};
    });
    return out;
}

// The outcome each blob of a push ended with.
std::map<cz::digest, reg::push_step> outcomes(const push_outcome& o) {
    std::map<cz::digest, reg::push_step> steps;
    for (const auto& p : o.progress)
        if (p.step != reg::push_step::uploading) steps[p.digest] = p.step;
    return steps;
}

std::size_t count(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
        ++n;
    return n;
}

// skopeo pulls `remote` into an OCI layout at `layout` (tag `x`, layers as they are: skopeo
// would compress the uncompressed ones); every blob it wrote must be the store's, byte for byte.
// Returns how many blobs it wrote.
std::size_t pull_back_and_compare(const std::string& remote, const std::filesystem::path& layout,
                                  const oci::content_store& store, const std::string& extra = {}) {
    sh_ok("skopeo copy -q " + extra +
          " --src-tls-verify=false --dest-oci-accept-uncompressed-layers docker://" + remote + " " +
          quote("oci:" + layout.string() + ":x"));
    std::size_t blobs = 0;
    for (const auto& e : std::filesystem::directory_iterator(layout / "blobs/sha256")) {
        auto d = oci::parse_digest("sha256:" + e.path().filename().string());
        INFO(d.str());
        REQUIRE(store.contains(d));
        CHECK(read_file(e.path()) == read_file(store.blob_path(d)));
        ++blobs;
    }
    return blobs;
}

std::string skopeo_digest(const std::string& remote, const std::string& extra = {}) {
    std::string out;
    CHECK(sh("skopeo inspect " + extra + " --tls-verify=false --format '{{.Digest}}' docker://" +
                 remote,
             &out) == 0);
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

// A TCP proxy on loopback in front of `target` that cuts the first connection on which a request
// starting with `method` goes out, once `cut_after` bytes of it have passed: the registry gets
// half a request.
class request_cutting_proxy {
public:
    request_cutting_proxy(asio::ip::tcp::endpoint target, std::string method, std::size_t cut_after)
        : target_(target), method_(std::move(method) + " "), cut_after_(cut_after),
          acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~request_cutting_proxy() {
        stopping_ = true;
        std::error_code ignored;
        asio::ip::tcp::socket s(io_); // wakes accept()
        s.connect(acceptor_.local_endpoint(), ignored);
        accept_thread_.join();
        for (auto& t : pumps_)
            t.join();
    }
    std::string host() const {
        return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    bool cut() const { return cut_; }

private:
    void accept_loop() {
        for (;;) {
            auto client = std::make_shared<asio::ip::tcp::socket>(io_);
            std::error_code ec;
            acceptor_.accept(*client, ec);
            if (ec || stopping_) return;
            auto server = std::make_shared<asio::ip::tcp::socket>(io_);
            server->connect(target_, ec);
            if (ec) continue;
            pumps_.emplace_back([this, client, server] { pump(*client, *server, true); });
            pumps_.emplace_back([this, client, server] { pump(*server, *client, false); });
        }
    }
    // Copies `from` to `to` until either ends; a request that starts with the method is cut.
    void pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to, bool requests) {
        char buf[16384];
        bool cutting = false;
        std::size_t passed = 0;
        for (;;) {
            std::error_code ec;
            auto n = from.read_some(asio::buffer(buf), ec);
            if (ec) break;
            if (requests && !cutting && std::string_view(buf, n).starts_with(method_) &&
                !cut_.exchange(true))
                cutting = true;
            if (cutting && passed + n > cut_after_) {
                asio::write(to, asio::buffer(buf, cut_after_ - passed), ec);
                break;
            }
            passed += n;
            asio::write(to, asio::buffer(buf, n), ec);
            if (ec) break;
        }
        std::error_code ignored;
        from.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        to.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }

    asio::io_context io_;
    asio::ip::tcp::endpoint target_;
    std::string method_;
    std::size_t cut_after_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::vector<std::thread> pumps_;
    std::atomic<bool> stopping_{false}, cut_{false};
};

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("push: umoci's image, one layer in chunks; skopeo pulls it back byte for byte") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!have("umoci")) CZ_SKIP("umoci is not installed");
        registry_server server;
        temp_dir dir("cz-push");
        umoci_image(dir.path / "layout", "img", 300000);
        auto store = oci::content_store::open(dir.path / "store");
        oci::image_store images(store);
        oci::import_layout(images, dir.path / "layout");
        auto local = images.lookup("img");
        auto manifest = oci::parse_manifest(store.read(local, 1 << 20));
        REQUIRE(manifest.layers.size() == 3);
        REQUIRE(manifest.layers[1].size > 256 * 1024);

        reg::registry_options options;
        options.upload_chunk_size = 64 * 1024; // the 300 KB layer goes in 5 PATCHes
        auto remote = server.host() + "/cz/app:1";
        auto first = push(images, "img", remote, options);
        REQUIRE_MESSAGE(!first.ec, first.last_error);
        CHECK(first.result.pushed.digest == local.digest);
        CHECK(first.result.uploaded == 4); // config and three layers
        CHECK(first.result.present == 0);
        CHECK(first.result.mounted == 0);
        CHECK(first.result.manifests == 1);
        auto log = server.log();
        CHECK(count(log, "\"PATCH /v2/cz/app/blobs/uploads/") == 5);
        CHECK(count(log, "\"PUT /v2/cz/app/blobs/uploads/") == 4); // 3 single PUTs, 1 commit
        CHECK(count(log, "\"PUT /v2/cz/app/manifests/1") == 1);
        // Progress: every blob ends uploaded; the big one's bytes climb to its size.
        auto steps = outcomes(first);
        CHECK(steps.size() == 4);
        for (const auto& [d, step] : steps)
            CHECK(step == reg::push_step::uploaded);
        std::uint64_t last = 0;
        std::size_t updates = 0;
        for (const auto& p : first.progress)
            if (p.digest == manifest.layers[1].digest && p.step == reg::push_step::uploading) {
                CHECK(p.done > last);
                last = p.done;
                ++updates;
            }
        CHECK(updates >= 5);
        CHECK(last == static_cast<std::uint64_t>(manifest.layers[1].size));

        CHECK(skopeo_digest(remote) == local.digest.str());
        CHECK(pull_back_and_compare(remote, dir.path / "back", store) == 5);

        // Again: the registry has every blob (HEAD), nothing is sent, the tag is PUT again.
        auto again = push(images, "img", remote, options);
        REQUIRE_MESSAGE(!again.ec, again.last_error);
        CHECK(again.result.uploaded == 0);
        CHECK(again.result.present == 4);
        CHECK(again.result.bytes_sent == 0);
        CHECK(again.result.manifests == 1);
        for (const auto& p : again.progress)
            CHECK(p.step == reg::push_step::present);
        CHECK(count(server.log(), "\"PATCH ") == 5); // no more than the first push's
    }

    TEST_CASE("push: to another repository of the registry the blobs are mounted") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-push-mount");
        auto store = oci::content_store::open(dir.path);
        oci::image_store images(store);
        auto image = oci_test::put_image(store, "mounted across repositories\n");
        images.tag("app:1", image.manifest);
        auto first = push(images, "app:1", server.host() + "/cz/one:1");
        REQUIRE_MESSAGE(!first.ec, first.last_error);
        CHECK(first.result.uploaded == 2);

        // Named by the caller.
        reg::push_options from_one;
        from_one.mount_from = {"cz/one"};
        auto named = push(images, "app:1", server.host() + "/cz/two:1", {}, from_one);
        REQUIRE_MESSAGE(!named.ec, named.last_error);
        CHECK(named.result.mounted == 2);
        CHECK(named.result.uploaded == 0);
        CHECK(named.result.bytes_sent == 0);
        for (const auto& p : named.progress)
            CHECK((p.step == reg::push_step::mounted && p.from == "cz/one"));
        CHECK(count(server.log(), "\"POST /v2/cz/two/blobs/uploads/?mount=sha256") == 2);
        CHECK(skopeo_digest(server.host() + "/cz/two:1") == image.manifest.digest.str());

        // Known to the client: it pushed them to cz/one a moment ago.
        run([&](asio::io_context& io) -> asio::awaitable<void> {
            reg::registry_client client(io.get_executor());
            for (const auto* repository : {"/cz/one:1", "/cz/three:1"}) {
                auto [ec, r] = co_await reg::async_push(
                    client, images, "app:1", oci::parse_reference(server.host() + repository), {},
                    as_tuple(asio::use_awaitable));
                CHECK_MESSAGE(!ec, client.last_error());
                if (std::string_view(repository) == "/cz/three:1") CHECK(r.mounted == 2);
            }
        });

        // Named in the store: an image pulled from cz/one (its store name says where).
        images.tag(server.host() + "/cz/one:1", image.manifest);
        auto by_store = push(images, "app:1", server.host() + "/cz/four:1");
        REQUIRE_MESSAGE(!by_store.ec, by_store.last_error);
        CHECK(by_store.result.mounted == 2);

        // A repository without the blobs: the registry answers 202, and cz uploads instead.
        reg::push_options from_nowhere;
        from_nowhere.mount_from = {"cz/nothing"};
        auto fallback = push(images, "app:1", server.host() + "/cz/five:1", {}, from_nowhere);
        REQUIRE_MESSAGE(!fallback.ec, fallback.last_error);
        CHECK(fallback.result.mounted == 0);
        CHECK(fallback.result.uploaded == 2);
        CHECK(count(server.log(), "\"POST /v2/cz/five/blobs/uploads/?mount=sha256") == 2);
        CHECK(pull_back_and_compare(server.host() + "/cz/five:1", dir.path / "back", store) == 3);
    }

    TEST_CASE("push: an index of two platforms, its manifests before it") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-push-index");
        auto store = oci::content_store::open(dir.path / "store");
        oci::image_store images(store);
        auto amd64 = oci_test::put_image(store, "amd64\n", "amd64");
        auto arm64 = oci_test::put_image(store, "arm64\n", "arm64", "v8");
        amd64.manifest.platform = oci::platform{"linux", "amd64", "", "", {}};
        arm64.manifest.platform = oci::platform{"linux", "arm64", "v8", "", {}};
        nlohmann::json index = {
            {"schemaVersion", 2},
            {"mediaType", oci::media_type::oci_index},
            {"manifests", {oci::to_json(amd64.manifest), oci::to_json(arm64.manifest)}}};
        auto index_d = store.put(oci::media_type::oci_index, index.dump());
        images.tag("multi", index_d);
        auto remote = server.host() + "/cz/multi:1";
        auto pushed = push(images, "multi", remote);
        REQUIRE_MESSAGE(!pushed.ec, pushed.last_error);
        CHECK(pushed.result.pushed.digest == index_d.digest);
        CHECK(pushed.result.pushed.media_type == oci::media_type::oci_index);
        CHECK(pushed.result.uploaded == 4);
        CHECK(pushed.result.manifests == 3);
        auto log = server.log();
        auto child = log.find("\"PUT /v2/cz/multi/manifests/" + amd64.manifest.digest.str());
        CHECK(child != std::string::npos);
        CHECK(child < log.find("\"PUT /v2/cz/multi/manifests/1"));
        std::string raw;
        CHECK(sh("skopeo inspect --raw --tls-verify=false docker://" + remote, &raw) == 0);
        auto index_bytes = store.read(index_d, 1 << 20);
        CHECK((raw == index_bytes || raw == index_bytes + "\n"));
        CHECK(pull_back_and_compare(remote, dir.path / "back", store, "--all") == 7);

        // An index naming a manifest neither the store nor the registry has.
        auto absent = oci::describe(oci::media_type::oci_manifest, "{\"schemaVersion\":2}");
        nlohmann::json broken = {{"schemaVersion", 2},
                                 {"mediaType", oci::media_type::oci_index},
                                 {"manifests", {oci::to_json(absent)}}};
        images.tag("broken", store.put(oci::media_type::oci_index, broken.dump()));
        auto refused = push(images, "broken", server.host() + "/cz/broken:1");
        CHECK(refused.ec == oci::errc::not_found);
        CHECK(refused.last_error.find(absent.digest.str() + " is neither in the store nor in " +
                                      server.host() + "/cz/broken") != std::string::npos);
    }

    TEST_CASE("push: Basic authentication (distribution's htpasswd): none, wrong, right") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        std::string hash;
        if (sh("python3 -c \"import crypt; print(crypt.crypt('secret', "
               "crypt.mksalt(crypt.METHOD_BLOWFISH)).replace('\\$2b\\$', '\\$2a\\$'))\" "
               "2>/dev/null",
               &hash) != 0 ||
            !hash.starts_with("$2"))
            CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        while (!hash.empty() && hash.back() == '\n')
            hash.pop_back();
        registry_server server(false, "cz:" + hash);
        temp_dir dir("cz-push-auth");
        auto store = oci::content_store::open(dir.path);
        oci::image_store images(store);
        auto image = oci_test::put_image(store, "behind a password\n");
        images.tag("app:1", image.manifest);
        auto remote = server.host() + "/cz/auth:1";
        auto with = [&](std::optional<reg::credentials> creds) {
            reg::registry_options options;
            options.credentials = [creds](std::string_view) { return creds; };
            return push(images, "app:1", remote, options);
        };
        auto none = with(std::nullopt);
        CHECK(none.ec == reg::errc::unauthorized);
        CHECK(none.last_error.find("wants a user name and password") != std::string::npos);
        auto wrong = with(reg::credentials{"cz", "wrong"});
        CHECK(wrong.ec == reg::errc::unauthorized);
        CHECK(wrong.last_error.find("401") != std::string::npos);
        auto right = with(reg::credentials{"cz", "secret"});
        REQUIRE_MESSAGE(!right.ec, right.last_error);
        CHECK(right.result.uploaded == 2);
        CHECK(skopeo_digest(remote, "--creds cz:secret") == image.manifest.digest.str());
    }

    TEST_CASE("push: a connection cut in the middle of a chunk; the blob is begun again") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!have("umoci")) CZ_SKIP("umoci is not installed");
        registry_server server;
        temp_dir dir("cz-push-cut");
        umoci_image(dir.path / "layout", "img", 300000);
        auto store = oci::content_store::open(dir.path / "store");
        oci::image_store images(store);
        oci::import_layout(images, dir.path / "layout");
        request_cutting_proxy proxy(server.endpoint(), "PATCH", 20000);
        reg::registry_options options;
        options.upload_chunk_size = 64 * 1024;
        options.backoff = std::chrono::milliseconds(10);
        auto remote = proxy.host() + "/cz/cut:1";
        auto pushed = push(images, "img", remote, options);
        REQUIRE_MESSAGE(!pushed.ec, pushed.last_error);
        CHECK(proxy.cut());
        CHECK(pushed.result.uploaded == 4);
        // The cut session was given up for a new one: one more POST than blobs.
        CHECK(count(server.log(), "\"POST /v2/cz/cut/blobs/uploads/") == 5);
        CHECK(pull_back_and_compare(server.host() + "/cz/cut:1", dir.path / "back", store) == 5);
    }

    TEST_CASE("push: a name the store lacks, a digest that is not the image's") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        registry_server server;
        temp_dir dir("cz-push-errors");
        auto store = oci::content_store::open(dir.path);
        oci::image_store images(store);
        auto image = oci_test::put_image(store, "one\n");
        images.tag("app:1", image.manifest);
        auto missing = push(images, "nope:1", server.host() + "/cz/app:1");
        CHECK(missing.ec == oci::errc::not_found);
        CHECK(missing.last_error.find("image nope:1: no image named") != std::string::npos);
        auto other = oci::describe(oci::media_type::oci_manifest, "{}");
        auto wrong = push(images, "app:1", server.host() + "/cz/app@" + other.digest.str());
        CHECK(wrong.ec == oci::errc::digest_mismatch);
        CHECK(wrong.last_error.find(image.manifest.digest.str()) != std::string::npos);
        // By its own digest: pushed, and no tag.
        auto by_digest =
            push(images, "app:1", server.host() + "/cz/app@" + image.manifest.digest.str());
        CHECK_MESSAGE(!by_digest.ec, by_digest.last_error);
        CHECK(count(server.log(), "\"PUT /v2/cz/app/manifests/" + image.manifest.digest.str()) ==
              1);
    }
}
