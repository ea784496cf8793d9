// cz::container::pull_image against docker-registry on loopback, through the tests' fault proxy:
// a five-layer image (files added, replaced and whited out) pulled while its root filesystem is
// built, layer by layer as the layers arrive (each read while it downloads). The image built so
// must be the one the layers make when they are all in the store first, also when a layer's
// download starts over; a pull that fails, or a layer that is not a tar, leaves no image file
// behind.
#include <cz/container/pull.hpp>

#include "../oci/fault_proxy.hpp"
#include "../oci/registry_server.hpp"
#include "support/support.hpp"

#include <cz/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

using namespace cz_test;
namespace oci = cz::oci;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A gzip layer made by GNU tar from a shell script run in an empty directory.
oci::descriptor make_layer(const oci::content_store& content, const fs::path& scratch, int n,
                           const std::string& script, std::string& diff_ids) {
    auto dir = scratch / ("layer" + std::to_string(n));
    sh_ok("mkdir -p " + quote(dir.string()) + " && cd " + quote(dir.string()) + " && " + script +
          " && tar --sort=name --owner=0 --group=0 --numeric-owner -cf ../l.tar . && gzip -nf "
          "../l.tar");
    auto tar_path = scratch / "l.tar.gz";
    auto out = sh_ok("gzip -dc " + quote(tar_path.string()) + " | sha256sum");
    diff_ids += (diff_ids.empty() ? "" : ",") + ("\"sha256:" + out.substr(0, 64) + "\"");
    return content.put(oci::media_type::oci_layer_gzip, read_file(tar_path));
}

// Five layers: each adds a directory with ~300 KB of random bytes; layer 2 replaces a file of
// layer 0, layer 3 removes one of layer 1 with a whiteout.
struct layered_image {
    temp_dir dir{"cz-pull"};
    oci::content_store content = oci::content_store::open(dir.path / "source");
    oci::image_store images{content};
    oci::descriptor manifest;
    oci::manifest parsed;

    layered_image() {
        std::string diff_ids;
        std::vector<oci::descriptor> layers;
        const char* scripts[] = {
            "mkdir -p etc l0 && echo one > etc/motd && head -c 300000 /dev/urandom > l0/data",
            "mkdir l1 && head -c 300000 /dev/urandom > l1/data && echo gone > l1/gone",
            "mkdir etc l2 && echo two > etc/motd && head -c 300000 /dev/urandom > l2/data",
            "mkdir l1 l3 && touch l1/.wh.gone && head -c 300000 /dev/urandom > l3/data",
            "mkdir l4 && head -c 300000 /dev/urandom > l4/data && ln -s ../etc/motd l4/link",
        };
        for (int i = 0; i < 5; ++i)
            layers.push_back(make_layer(content, dir.path, i, scripts[i], diff_ids));
        auto config = content.put(
            oci::media_type::oci_config,
            R"({"architecture":")" + oci::host_platform().architecture +
                R"(","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[)" +
                diff_ids + "]}}");
        nlohmann::json m = {{"schemaVersion", 2},
                            {"mediaType", oci::media_type::oci_manifest},
                            {"config", oci::to_json(config)},
                            {"layers", nlohmann::json::array()}};
        for (const auto& l : layers)
            m["layers"].push_back(oci::to_json(l));
        manifest = content.put(oci::media_type::oci_manifest, m.dump());
        parsed = oci::parse_manifest(content.read(manifest, 1 << 20));
        images.tag("layered", manifest);
    }
};

// docker-registry holding the layered image as cz/layered:1 (pushed by skopeo).
struct fixture {
    layered_image image;
    registry_server server;
    temp_dir dest{"cz-pull-dest"};

    fixture() {
        sh_ok("skopeo copy -q --dest-tls-verify=false " +
              quote("oci:" + (image.dir.path / "source" / "content").string() + ":layered") +
              " docker://" + server.host() + "/cz/layered:1");
    }
    // The image's root filesystem built from the source store, every layer there already.
    std::string reference_rootfs() const {
        std::error_code ec;
        std::string why;
        auto r = cz::container::ensure_rootfs(image.content, image.parsed, image.manifest.digest,
                                              {}, ec, &why);
        INFO(why);
        REQUIRE_FALSE(ec);
        return read_file(r.path);
    }
    std::vector<std::string> leftovers() const {
        std::vector<std::string> names;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dest.path / "rootfs", ec))
            names.push_back(e.path().filename().string());
        return names;
    }
};

cz::container::pull_options quick_options() {
    cz::container::pull_options o;
    o.registry.attempts = 2;
    o.registry.backoff = 20ms;
    return o;
}

} // namespace

TEST_CASE("a pull builds the root filesystem while later layers are still downloading") {
    if (!have("skopeo") || !have("docker-registry")) CZ_SKIP("skopeo and docker-registry needed");
    fixture f;
    const auto& layers = f.image.parsed.layers;
    // The last two layers come slowly: the first ones must be applied meanwhile.
    fault_proxy proxy(f.server.endpoint(), [&](const std::vector<proxied_request>& seen) {
        const auto& r = seen.back();
        for (std::size_t i = 3; i < layers.size(); ++i)
            if (r.is_blob_get() && r.target.find(layers[i].digest.str()) != std::string::npos)
                return fault::slow(1500ms);
        return fault::pass();
    });
    std::mutex mutex;
    std::vector<std::string> events;
    auto o = quick_options();
    o.on_blob = [&](const oci::registry::blob_progress& p) {
        if (!p.finished) return;
        std::lock_guard lock(mutex);
        for (std::size_t i = 0; i < layers.size(); ++i)
            if (layers[i].digest == p.digest) events.push_back("arrived " + std::to_string(i));
    };
    o.on_layer = [&](std::size_t i, std::size_t n) {
        std::lock_guard lock(mutex);
        CHECK(n == 5);
        events.push_back("apply " + std::to_string(i));
    };
    std::error_code ec;
    std::string why;
    auto r = cz::container::pull_image(f.dest.path, proxy.host() + "/cz/layered:1", o, ec, &why);
    INFO(why);
    REQUIRE_FALSE(ec);
    CHECK(r.rootfs.built);
    CHECK(r.manifest == f.image.manifest.digest);
    CHECK(r.tagged.digest == f.image.manifest.digest);
    INFO(fmt::format("{}", fmt::join(events, ", ")));
    auto at = [&](const std::string& e) {
        return std::find(events.begin(), events.end(), e) - events.begin();
    };
    REQUIRE(at("arrived 4") < static_cast<long>(events.size()));
    // Built once: no layer failed while it was read and had to be built again from the store.
    CHECK(std::count(events.begin(), events.end(), "apply 0") == 1);
    CHECK(at("apply 0") < at("arrived 3"));
    CHECK(at("apply 2") < at("arrived 4"));
    // The same bytes as when every layer is there first.
    CHECK(read_file(r.rootfs.path) == f.reference_rootfs());
    CHECK(f.leftovers() == std::vector<std::string>{r.rootfs.path.filename().string()});
    // The store has the image under its name.
    auto store = oci::content_store::open(f.dest.path);
    oci::image_store images(store);
    CHECK(images.lookup(proxy.host() + "/cz/layered:1").digest == f.image.manifest.digest);

    // A second pull finds the root filesystem in the cache.
    auto again =
        cz::container::pull_image(f.dest.path, proxy.host() + "/cz/layered:1", o, ec, &why);
    REQUIRE_FALSE(ec);
    CHECK_FALSE(again.rootfs.built);
    CHECK(again.rootfs.path == r.rootfs.path);
}

TEST_CASE("a layer whose download starts over is built from the verified blob") {
    if (!have("skopeo") || !have("docker-registry")) CZ_SKIP("skopeo and docker-registry needed");
    fixture f;
    // Layer 2 is cut off half-way. The resumed request (with Range) is answered late and with
    // the whole blob, as a server that ignores Range does: the client starts the blob over in a
    // new ingest file, while the builder has already read the first half of the old one.
    const auto& layer = f.image.parsed.layers[2];
    auto whole = f.image.content.read(layer, 1 << 20);
    std::atomic<int> gets = 0;
    std::atomic<bool> ranged = false;
    fault_proxy proxy(f.server.endpoint(), [&](const std::vector<proxied_request>& seen) {
        const auto& r = seen.back();
        if (!r.is_blob_get() || r.target.find(layer.digest.str()) == std::string::npos)
            return fault::pass();
        if (++gets == 1) return fault::reset(whole.size() / 2);
        ranged = r.header("range").has_value();
        std::this_thread::sleep_for(500ms);
        return fault::respond(http_answer(200, "OK", {}, whole));
    });
    std::error_code ec;
    std::string why;
    auto r = cz::container::pull_image(f.dest.path, proxy.host() + "/cz/layered:1", quick_options(),
                                       ec, &why);
    INFO(why);
    REQUIRE_FALSE(ec);
    CHECK(gets == 2);
    CHECK(ranged);
    CHECK(read_file(r.rootfs.path) == f.reference_rootfs());
    CHECK(f.leftovers() == std::vector<std::string>{r.rootfs.path.filename().string()});
}

TEST_CASE("a pull that fails part-way leaves no root filesystem") {
    if (!have("skopeo") || !have("docker-registry")) CZ_SKIP("skopeo and docker-registry needed");
    fixture f;
    auto doomed = f.image.parsed.layers[3].digest.str();
    fault_proxy proxy(f.server.endpoint(), [&](const std::vector<proxied_request>& seen) {
        const auto& r = seen.back();
        if (r.is_blob_get() && r.target.find(doomed) != std::string::npos)
            return fault::respond(http_answer(500, "Internal Server Error", {}, "down"));
        return fault::pass();
    });
    std::error_code ec;
    std::string why;
    cz::container::pull_image(f.dest.path, proxy.host() + "/cz/layered:1", quick_options(), ec,
                              &why);
    CHECK(ec);
    INFO(why);
    CHECK(why.find(doomed) != std::string::npos);
    CHECK(why.find("500") != std::string::npos);
    CHECK(f.leftovers().empty());
    // The layers that came are kept for the next pull; nothing is tagged.
    oci::content_store store = oci::content_store::open(f.dest.path);
    CHECK(store.contains(f.image.parsed.layers[0].digest));
    oci::image_store images(store);
    images.find(proxy.host() + "/cz/layered:1", ec);
    CHECK(ec);
}

TEST_CASE("a layer that is not a tar archive fails the build, naming the layer") {
    if (!have("skopeo") || !have("docker-registry")) CZ_SKIP("skopeo and docker-registry needed");
    temp_dir dir{"cz-pull-bad"};
    auto content = oci::content_store::open(dir.path / "source");
    oci::image_store images(content);
    std::string junk(4096, 'x');
    auto layer = content.put(oci::media_type::oci_layer, junk);
    auto config = content.put(oci::media_type::oci_config,
                              R"({"architecture":")" + oci::host_platform().architecture +
                                  R"(","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
                                  layer.digest.str() + R"("]}})");
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", oci::media_type::oci_manifest},
                        {"config", oci::to_json(config)},
                        {"layers", nlohmann::json::array({oci::to_json(layer)})}};
    images.tag("junk", content.put(oci::media_type::oci_manifest, m.dump()));
    registry_server server;
    sh_ok("skopeo copy -q --dest-tls-verify=false " +
          quote("oci:" + (dir.path / "source" / "content").string() + ":junk") + " docker://" +
          server.host() + "/cz/junk:1");
    std::error_code ec;
    std::string why;
    cz::container::pull_image(dir.path / "dest", server.host() + "/cz/junk:1", quick_options(), ec,
                              &why);
    CHECK(ec);
    INFO(why);
    CHECK(why.find("root filesystem") != std::string::npos);
    // (skopeo compresses the layer on its way: its digest in the registry is another)
    CHECK(why.find("layer sha256:") != std::string::npos);
    CHECK(why.find("tar header at offset 0") != std::string::npos);
    std::error_code ignored;
    CHECK(fs::is_empty(dir.path / "dest" / "rootfs", ignored));
}

TEST_CASE("a reference that does not parse is an error before anything is fetched") {
    temp_dir dir{"cz-pull-ref"};
    std::error_code ec;
    std::string why;
    cz::container::pull_image(dir.path, "Not A Reference!", {}, ec, &why);
    CHECK(ec);
    CHECK(why.find("Not A Reference!") != std::string::npos);
}
