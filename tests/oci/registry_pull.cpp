// registry_client::async_pull against docker-registry on loopback: skopeo pushes images cz made
// (one platform, and an index of two), cz pulls them into a fresh store, and the two agree on
// every digest and byte.
#include <cz/oci/registry/client.hpp>

#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <thread>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;

namespace {

// A one-layer image for `arch` in `images`' store: a real gzip layer, a config naming its
// diff_id, an OCI manifest.
oci::descriptor make_image(const oci::image_store& images, const std::string& arch,
                           const std::filesystem::path& scratch) {
    auto tree = scratch / ("tree-" + arch);
    sh_ok("mkdir -p " + quote(tree.string()) + " && echo " + arch + " > " +
          quote((tree / "arch.txt").string()) + " && head -c 200000 /dev/urandom > " +
          quote((tree / "noise").string()) + " && tar -C " + quote(tree.string()) + " -cf " +
          quote(tree.string() + ".tar") + " . && gzip -kn " + quote(tree.string() + ".tar"));
    auto tar = read_file(tree.string() + ".tar");
    auto gz = read_file(tree.string() + ".tar.gz");
    cz::sha256_hasher h;
    h.update(cz::as_bytes(tar));
    auto diff_id = h.final();
    const auto& content = images.content();
    auto layer = content.put(oci::media_type::oci_layer_gzip, gz);
    nlohmann::json config = {{"architecture", arch},
                             {"os", "linux"},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.str()}}}}};
    auto config_d = content.put(oci::media_type::oci_config, config.dump());
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", oci::media_type::oci_manifest},
                               {"config", oci::to_json(config_d)},
                               {"layers", {oci::to_json(layer)}}};
    return content.put(oci::media_type::oci_manifest, manifest.dump());
}

// Pushes `tag` of the OCI layout under `store_root` to `server` as cz/<tag>:1, with skopeo.
void push(const registry_server& server, const std::filesystem::path& store_root,
          const std::string& tag, const std::string& extra = {}) {
    sh_ok("skopeo copy -q " + extra + " --dest-tls-verify=false " +
          quote("oci:" + (store_root / "content").string() + ":" + tag) + " docker://" +
          server.host() + "/cz/" + tag + ":1");
}

oci::platform linux(const std::string& arch) {
    oci::platform p;
    p.os = "linux";
    p.architecture = arch;
    return p;
}

// A TCP proxy on loopback in front of `target` that cuts the first connection carrying a blob
// GET once `cut_after` bytes of its answer have passed, and notes the Range headers it sees.
class cutting_proxy {
public:
    cutting_proxy(asio::ip::tcp::endpoint target, std::size_t cut_after)
        : target_(target), cut_after_(cut_after),
          acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~cutting_proxy() {
        stopping_ = true;
        std::error_code ignored;
        // Wake accept() with a connection of our own.
        asio::ip::tcp::socket s(io_);
        s.connect(acceptor_.local_endpoint(), ignored);
        accept_thread_.join();
        for (auto& t : pumps_)
            t.join();
    }
    std::string host() const {
        return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    bool cut() const { return cut_; }
    bool saw_range() const { return saw_range_; }

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
            auto blob_request = std::make_shared<std::atomic<bool>>(false);
            pumps_.emplace_back([this, client, server, blob_request] {
                pump(*client, *server, blob_request.get(), true);
            });
            pumps_.emplace_back([this, client, server, blob_request] {
                pump(*server, *client, blob_request.get(), false);
            });
        }
    }
    // Copies `from` to `to` until either ends; requests are looked at, answers maybe cut.
    void pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
              std::atomic<bool>* blob_request, bool requests) {
        char buf[16384];
        std::size_t passed = 0;
        for (;;) {
            std::error_code ec;
            auto n = from.read_some(asio::buffer(buf), ec);
            if (ec) break;
            std::string_view chunk(buf, n);
            if (requests) {
                if (chunk.find("/blobs/sha256:") != std::string_view::npos &&
                    chunk.starts_with("GET"))
                    *blob_request = true;
                if (chunk.find("Range: bytes=") != std::string_view::npos) saw_range_ = true;
            } else if (*blob_request && !cut_.exchange(true)) {
                cutting_ = true;
            }
            if (!requests && cutting_ && passed + n > cut_after_) {
                asio::write(to, asio::buffer(buf, cut_after_ - passed), ec);
                cutting_ = false;
                break; // the connection dies mid-answer
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
    std::size_t cut_after_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::vector<std::thread> pumps_;
    std::atomic<bool> stopping_{false}, cut_{false}, cutting_{false}, saw_range_{false};
};

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("pull: what skopeo pushed, byte for byte; an index resolved for a platform") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-pull");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        auto amd64 = make_image(source, "amd64", dir.path);
        auto arm64 = make_image(source, "arm64", dir.path);
        amd64.platform = linux("amd64");
        arm64.platform = linux("arm64");
        nlohmann::json index = {{"schemaVersion", 2},
                                {"mediaType", oci::media_type::oci_index},
                                {"manifests", {oci::to_json(amd64), oci::to_json(arm64)}}};
        auto index_d = source_store.put(oci::media_type::oci_index, index.dump());
        source.tag("single", amd64);
        source.tag("multi", index_d);
        push(server, dir.path / "source", "single");
        push(server, dir.path / "source", "multi", "--all");

        auto dest_store = oci::content_store::open(dir.path / "dest");
        oci::image_store dest(dest_store);
        std::vector<reg::blob_progress> progress;
        auto pull = [&](const std::string& name, const std::string& arch) {
            std::pair<std::error_code, oci::descriptor> result;
            std::string last_error;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                reg::registry_client client(io.get_executor());
                client.on_progress([&](const reg::blob_progress& p) { progress.push_back(p); });
                auto ref = oci::parse_reference(server.host() + "/cz/" + name);
                auto [ec, d] = co_await client.async_pull(ref, linux(arch), dest,
                                                          as_tuple(asio::use_awaitable));
                result = {ec, d};
                last_error = client.last_error();
            });
            INFO(last_error);
            CHECK(!result.first);
            return result.second;
        };

        auto single = pull("single:1", "amd64");
        CHECK(single.digest == amd64.digest); // skopeo pushed cz's manifest unchanged
        CHECK(dest.lookup(server.host() + "/cz/single:1").digest == amd64.digest);
        // Every blob cz stored is the source's, byte for byte.
        std::error_code ec;
        for (const auto& d : dest_store.list(ec))
            CHECK(read_file(dest_store.blob_path(d)) == read_file(source_store.blob_path(d)));
        CHECK(dest_store.list(ec).size() == 3); // manifest, config, layer
        CHECK(!progress.empty());
        CHECK(progress.back().finished);
        auto report = dest.verify(ec);
        CHECK(report.ok());

        // Again: everything is there, nothing is fetched.
        progress.clear();
        pull("single:1", "amd64");
        CHECK(progress.empty());

        // The index: the arm64 manifest and its blobs, and not amd64's config.
        auto multi = pull("multi:1", "arm64");
        CHECK(multi.digest == index_d.digest);
        auto resolved = dest.resolve(multi, linux("arm64"));
        CHECK(resolved.digest == arm64.digest);
        auto arm_manifest = oci::parse_manifest(source_store.read(arm64, 1 << 20));
        CHECK(dest_store.contains(arm_manifest.config.digest));
        CHECK(dest.verify(ec).ok());
    }

    TEST_CASE("pull: a tag that is not there, a platform the index lacks") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        registry_server server;
        temp_dir dir("cz-pull");
        auto store = oci::content_store::open(dir.path);
        oci::image_store images(store);
        run([&](asio::io_context& io) -> asio::awaitable<void> {
            reg::registry_client client(io.get_executor());
            auto ref = oci::parse_reference(server.host() + "/cz/none:1");
            auto [ec, d] = co_await client.async_pull(ref, oci::host_platform(), images,
                                                      as_tuple(asio::use_awaitable));
            CHECK(ec == oci::errc::not_found);
            CHECK(client.last_error().find("MANIFEST_UNKNOWN") != std::string::npos);
        });
        std::error_code ec;
        CHECK(images.list(ec).empty());
    }

    TEST_CASE("pull: Basic authentication (distribution's htpasswd): none, wrong, right") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        registry_server server(false, htpasswd);
        temp_dir dir("cz-pull-auth");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        auto image = make_image(source, "amd64", dir.path);
        source.tag("auth", image);
        push(server, dir.path / "source", "auth", "--dest-creds cz:secret");

        auto store = oci::content_store::open(dir.path / "dest");
        oci::image_store images(store);
        auto ref = oci::parse_reference(server.host() + "/cz/auth:1");
        auto pull = [&](std::optional<reg::credentials> creds) {
            std::pair<std::error_code, std::string> result;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                reg::registry_options options;
                std::string asked_for;
                options.credentials = [&](std::string_view registry) {
                    asked_for = registry;
                    return creds;
                };
                reg::registry_client client(io.get_executor(), options);
                auto [ec, d] = co_await client.async_pull(ref, linux("amd64"), images,
                                                          as_tuple(asio::use_awaitable));
                CHECK(asked_for == server.host()); // asked by the registry's own name
                result = {ec, client.last_error()};
            });
            return result;
        };
        auto none = pull(std::nullopt);
        CHECK(none.first == reg::errc::unauthorized);
        CHECK(none.second.find("wants a user name and password") != std::string::npos);
        auto wrong = pull(reg::credentials{"cz", "wrong"});
        CHECK(wrong.first == reg::errc::unauthorized);
        CHECK(wrong.second.find("401") != std::string::npos);
        std::error_code ec;
        CHECK(images.list(ec).empty());
        auto right = pull(reg::credentials{"cz", "secret"});
        CHECK_MESSAGE(!right.first, right.second);
        CHECK(images.lookup(ref.str()).digest == image.digest);
        CHECK(images.verify(ec).ok());
    }

    TEST_CASE("pull: a connection cut in the middle of a layer; the pull resumes with Range") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-pull-cut");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        auto image = make_image(source, "amd64", dir.path);
        source.tag("cut", image);
        push(server, dir.path / "source", "cut");
        cutting_proxy proxy(server.endpoint(), 100000); // the layer is ~200 KB
        auto store = oci::content_store::open(dir.path / "dest");
        oci::image_store images(store);
        auto ref = oci::parse_reference(proxy.host() + "/cz/cut:1");
        std::string last_error;
        std::error_code pulled;
        run([&](asio::io_context& io) -> asio::awaitable<void> {
            reg::registry_options options;
            options.concurrency = 1; // one blob at a time: the first blob GET is the one cut
            reg::registry_client client(io.get_executor(), options);
            auto [ec, d] = co_await client.async_pull(ref, linux("amd64"), images,
                                                      as_tuple(asio::use_awaitable));
            pulled = ec;
            last_error = client.last_error();
        });
        CHECK_MESSAGE(!pulled, last_error);
        CHECK(proxy.cut());
        CHECK(proxy.saw_range());
        CHECK(images.lookup(ref.str()).digest == image.digest);
        std::error_code ec;
        CHECK(images.verify(ec).ok());
    }
}
