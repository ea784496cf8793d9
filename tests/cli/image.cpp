// cz image ls|inspect|rm|tag|load and cz store verify|gc, against skopeo: skopeo writes the OCI
// layout cz loads, and reads cz's store (`skopeo inspect oci:ROOT/content:REF`) with the same
// digests. Local images only (dir:, oci:); no network.
#include "cz_tool.hpp"

#include "oci/image.hpp"

#include <cz/oci/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

using namespace cli_test;
using namespace cz_test;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

std::string skopeo_digest(const std::string& transport_ref) {
    return trim(sh_ok("skopeo inspect --format '{{.Digest}}' " + quote(transport_ref)));
}

// The bytes an image's manifest, config and layers take (what `cz image ls` reports as SIZE).
std::uint64_t stored_size(const std::string& transport_ref) {
    auto raw = sh_ok("skopeo inspect --raw " + quote(transport_ref));
    auto m = nlohmann::json::parse(raw);
    std::uint64_t size = raw.size() + m["config"]["size"].get<std::uint64_t>();
    for (const auto& layer : m["layers"])
        size += layer["size"].get<std::uint64_t>();
    return size;
}

const nlohmann::json* entry_named(const nlohmann::json& list, const std::string& name) {
    for (const auto& e : list)
        if (e["name"] == name) return &e;
    return nullptr;
}

// An OCI layout, written by skopeo, holding app:1 and other:2 (one-layer images in skopeo's
// dir: format, copied in) and multi:1 (an index of an amd64 and an arm64 image, built in a cz
// store and copied whole with --all). Returns the arm64 manifest's digest.
std::string make_layout(const temp_dir& tmp, const std::string& layout) {
    oci_test::write_dir_image(tmp.path / "app", "app one\n");
    oci_test::write_dir_image(tmp.path / "other", "other two\n");
    sh_ok("skopeo copy -q dir:" + quote(tmp / "app") + " oci:" + quote(layout + ":app:1") +
          " 2>&1");
    sh_ok("skopeo copy -q dir:" + quote(tmp / "other") + " oci:" + quote(layout + ":other:2") +
          " 2>&1");

    namespace oci = cz::oci;
    auto cs = oci::content_store::open(tmp.path / "multi");
    auto amd = oci_test::put_image(cs, "amd64\n", "amd64");
    auto arm = oci_test::put_image(cs, "arm64\n", "arm64", "v8");
    oci::image_index ix;
    ix.media_type = std::string(oci::media_type::oci_index);
    ix.manifests = {amd.manifest, arm.manifest};
    ix.manifests[0].platform = oci::platform{"linux", "amd64", "", "", {}};
    ix.manifests[1].platform = oci::platform{"linux", "arm64", "v8", "", {}};
    oci::image_store(cs).tag("multi:1", cs.put(oci::media_type::oci_index, serialize(ix)));
    sh_ok("skopeo copy -q --all --preserve-digests oci:" +
          quote((tmp.path / "multi/content").string() + ":multi:1") +
          " oci:" + quote(layout + ":multi:1") + " 2>&1");
    return arm.manifest.digest.str();
}

} // namespace

TEST_SUITE("cli") {

    TEST_CASE("image load, ls, inspect, tag, rm; store gc and verify; skopeo agrees") {
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp("cz-cli-image");
        auto layout = tmp / "layout";
        auto arm_digest = make_layout(tmp, layout);
        auto root = tmp / "root";
        auto store = root + "/content";
        auto cz_root = "--root " + quote(root) + " ";

        auto app_digest = skopeo_digest("oci:" + layout + ":app:1");
        auto other_digest = skopeo_digest("oci:" + layout + ":other:2");
        auto multi_raw =
            nlohmann::json::parse(sh_ok("skopeo inspect --raw oci:" + quote(layout + ":multi:1")));
        REQUIRE(multi_raw["manifests"].size() == 2);

        // load: every named entry is tagged, and said so.
        auto o = run_cz(tmp, cz_root + "image load " + quote(layout));
        INFO(o.err);
        REQUIRE(o.rc == 0);
        CHECK(o.err.empty());
        CHECK(contains(o.out, "Loaded: app:1 (" + app_digest + ")"));
        CHECK(contains(o.out, "Loaded: other:2 (" + other_digest + ")"));
        CHECK(contains(o.out, "Loaded: multi:1 (sha256:"));

        // skopeo reads cz's store with the digests it wrote.
        CHECK(skopeo_digest("oci:" + store + ":app:1") == app_digest);
        CHECK(skopeo_digest("oci:" + store + ":other:2") == other_digest);

        // ls --json (the root given after the command this time).
        o = run_cz(tmp, "image ls --json --root " + quote(root));
        REQUIRE(o.rc == 0);
        auto list = nlohmann::json::parse(o.out);
        REQUIRE(list.is_array());
        CHECK(list.size() == 3);
        const auto* app = entry_named(list, "app:1");
        REQUIRE(app);
        CHECK((*app)["digest"] == app_digest);
        CHECK((*app)["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
        CHECK((*app)["platforms"] == nlohmann::json::array({"linux/amd64"}));
        CHECK((*app)["size"].get<std::uint64_t>() == stored_size("oci:" + layout + ":app:1"));
        CHECK(!app->contains("problem"));
        const auto* multi = entry_named(list, "multi:1");
        REQUIRE(multi);
        CHECK((*multi)["mediaType"] == "application/vnd.oci.image.index.v1+json");
        CHECK((*multi)["platforms"] == nlohmann::json::array({"linux/amd64", "linux/arm64/v8"}));
        // The index, both manifests, and their configs and layers.
        std::uint64_t multi_size =
            sh_ok("skopeo inspect --raw oci:" + quote(layout + ":multi:1")).size();
        for (const auto& m : multi_raw["manifests"]) {
            auto digest = m["digest"].get<std::string>();
            multi_size += m["size"].get<std::uint64_t>();
            auto manifest = nlohmann::json::parse(
                read_file(std::filesystem::path(store) / "blobs/sha256" / digest.substr(7)));
            multi_size += manifest["config"]["size"].get<std::uint64_t>();
            multi_size += manifest["layers"][0]["size"].get<std::uint64_t>();
        }
        CHECK((*multi)["size"].get<std::uint64_t>() == multi_size);

        // ls as a table: a header, then one line per reference with the short digest.
        o = run_cz(tmp, cz_root + "image ls");
        REQUIRE(o.rc == 0);
        CHECK(o.out.rfind("REFERENCE", 0) == 0);
        CHECK(contains(o.out, "DIGEST"));
        CHECK(contains(o.out, "PLATFORMS"));
        CHECK(std::count(o.out.begin(), o.out.end(), '\n') == 4);
        CHECK(contains(o.out, app_digest.substr(7, 12)));
        CHECK(contains(o.out, "linux/amd64,linux/arm64/v8"));

        // inspect: a manifest, its config summary and layers; --json as stored.
        o = run_cz(tmp, cz_root + "image inspect app:1");
        REQUIRE(o.rc == 0);
        CHECK(contains(o.out, "Digest:     " + app_digest));
        CHECK(contains(o.out, "Platform:   linux/amd64"));
        CHECK(contains(o.out, "Cmd:        [\"/bin/cat\", \"/hello\"]"));
        CHECK(contains(o.out, "Layers:\n  sha256:"));
        o = run_cz(tmp, cz_root + "image inspect --json app:1");
        REQUIRE(o.rc == 0);
        auto j = nlohmann::json::parse(o.out);
        CHECK(j["digest"] == app_digest);
        CHECK(j["name"] == "app:1");
        CHECK(j["manifest"] ==
              nlohmann::json::parse(sh_ok("skopeo inspect --raw oci:" + quote(store + ":app:1"))));
        CHECK(j["config"] == nlohmann::json::parse(sh_ok("skopeo inspect --config --raw oci:" +
                                                         quote(store + ":app:1"))));
        // An index: its platforms; --platform follows it as skopeo would for arm64.
        o = run_cz(tmp, cz_root + "image inspect --json multi:1");
        REQUIRE(o.rc == 0);
        j = nlohmann::json::parse(o.out);
        CHECK(j["platforms"] == nlohmann::json::array({"linux/amd64", "linux/arm64/v8"}));
        CHECK(j["index"] == multi_raw);
        o = run_cz(tmp, cz_root + "image inspect --json --platform linux/aarch64 multi:1");
        REQUIRE(o.rc == 0);
        j = nlohmann::json::parse(o.out);
        CHECK(j["digest"] == arm_digest);
        CHECK(j["config"]["architecture"] == "arm64");
        CHECK(j["indexDigest"] == skopeo_digest("oci:" + store + ":multi:1"));
        // skopeo picks the same manifest for arm64: a copy without --all takes that one.
        sh_ok("skopeo --override-arch arm64 copy -q --preserve-digests oci:" +
              quote(store + ":multi:1") + " dir:" + quote(tmp / "arm-out") + " 2>&1");
        CHECK("sha256:" +
                  sh_ok("sha256sum < " + quote(tmp / "arm-out/manifest.json")).substr(0, 64) ==
              arm_digest);
        o = run_cz(tmp, cz_root + "image inspect multi:1");
        REQUIRE(o.rc == 0);
        CHECK(contains(o.out, "linux/arm64/v8    " + arm_digest));

        // tag: the new name is normalised, and skopeo finds it under that name.
        o = run_cz(tmp, cz_root + "image tag app:1 copy:2");
        REQUIRE(o.rc == 0);
        CHECK(o.out == "Tagged: docker.io/library/copy:2 -> " + app_digest + "\n");
        CHECK(skopeo_digest("oci:" + store + ":docker.io/library/copy:2") == app_digest);
        // ... and cz finds it by its short name.
        o = run_cz(tmp, cz_root + "image inspect --json copy:2");
        REQUIRE(o.rc == 0);
        CHECK(nlohmann::json::parse(o.out)["name"] == "docker.io/library/copy:2");

        // rm: all references must exist before any goes.
        o = run_cz(tmp, cz_root + "image rm other:2 no-such:1");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "no-such:1"));
        CHECK(skopeo_digest("oci:" + store + ":other:2") == other_digest);
        o = run_cz(tmp, cz_root + "image rm other:2 copy");
        CHECK(o.rc == 1); // copy:latest does not exist
        o = run_cz(tmp, cz_root + "image rm other:2 copy:2 docker.io/library/copy:2");
        REQUIRE(o.rc == 0);
        CHECK(o.out == "Untagged: other:2\nUntagged: docker.io/library/copy:2\n");
        CHECK(sh("skopeo inspect oci:" + quote(store + ":other:2") + " >/dev/null 2>&1") != 0);
        o = run_cz(tmp, cz_root + "image ls --json");
        REQUIRE(o.rc == 0);
        CHECK(nlohmann::json::parse(o.out).size() == 2);

        // gc: the removed image's manifest, config and layer go; app's stay.
        auto other_raw =
            nlohmann::json::parse(sh_ok("skopeo inspect --raw oci:" + quote(layout + ":other:2")));
        std::vector<std::string> other_blobs = {
            other_digest, other_raw["config"]["digest"].get<std::string>(),
            other_raw["layers"][0]["digest"].get<std::string>()};
        auto blob_file = [&](const std::string& digest) {
            return std::filesystem::path(store) / "blobs/sha256" / digest.substr(7);
        };
        for (const auto& d : other_blobs)
            REQUIRE(std::filesystem::exists(blob_file(d)));
        auto freed = stored_size("oci:" + layout + ":other:2");
        // Young blobs are kept by the default grace.
        o = run_cz(tmp, cz_root + "store gc");
        REQUIRE(o.rc == 0);
        CHECK(o.out == "Removed 0 blobs, 0 B; kept 3 unreachable blobs younger than 10m\n");
        o = run_cz(tmp, cz_root + "store gc --grace 0 --dry-run");
        REQUIRE(o.rc == 0);
        CHECK(o.out.rfind("Would remove 3 blobs, ", 0) == 0);
        for (const auto& d : other_blobs)
            CHECK(std::filesystem::exists(blob_file(d)));
        o = run_cz(tmp, cz_root + "store gc --grace 0");
        REQUIRE(o.rc == 0);
        CHECK(o.out.rfind("Removed 3 blobs, ", 0) == 0);
        CHECK(freed < 1024);
        CHECK(o.out == "Removed 3 blobs, " + std::to_string(freed) + " B\n");
        for (const auto& d : other_blobs)
            CHECK(!std::filesystem::exists(blob_file(d)));
        CHECK(skopeo_digest("oci:" + store + ":app:1") == app_digest);
        sh_ok("skopeo copy -q oci:" + quote(store + ":app:1") + " dir:" + quote(tmp / "out") +
              " 2>&1");

        // verify: clean; then a blob whose bytes changed is named.
        o = run_cz(tmp, cz_root + "store verify");
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "; 0 problems\n"));
        CHECK(!contains(o.out, "partial"));
        CHECK(o.err.empty());
        // A partial blob (an interrupted pull's) is reported, and is no problem.
        auto partial = std::filesystem::path(root) / "ingest" / ("sha256-" + std::string(64, 'a'));
        write_file(partial, std::string(2048, 'x'));
        o = run_cz(tmp, cz_root + "store verify");
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "; 0 problems\n1 partial blob in " + root + "/ingest (2.0 KiB)"));
        std::filesystem::remove(partial);
        auto app_raw =
            nlohmann::json::parse(sh_ok("skopeo inspect --raw oci:" + quote(store + ":app:1")));
        auto layer = app_raw["layers"][0]["digest"].get<std::string>();
        auto layer_file = blob_file(layer);
        std::filesystem::permissions(layer_file, std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add);
        auto bytes = read_file(layer_file);
        bytes[bytes.size() / 2] ^= 1;
        write_file(layer_file, bytes);
        o = run_cz(tmp, cz_root + "store verify");
        CHECK(o.rc == 1);
        CHECK(contains(o.out, "blobs/sha256/" + layer.substr(7) + ": content hashes to sha256:"));
        CHECK(contains(o.out, "; 1 problem\n"));
        CHECK(o.err == "cz: store " + root + ": 1 problem (listed above)\n");
        // A missing blob is a problem of the reference that reaches it.
        std::filesystem::remove(layer_file);
        o = run_cz(tmp, cz_root + "store verify");
        CHECK(o.rc == 1);
        CHECK(contains(o.out, "app:1"));
        CHECK(contains(o.out, layer));
        // ls still lists the image, and says what it lacks.
        o = run_cz(tmp, cz_root + "image ls --json");
        REQUIRE(o.rc == 0);
        list = nlohmann::json::parse(o.out);
        app = entry_named(list, "app:1");
        REQUIRE(app);
        CHECK((*app)["problem"] == "layer " + layer + ": not in the store");
        CHECK(!entry_named(list, "multi:1")->contains("problem"));
        o = run_cz(tmp, cz_root + "image ls");
        REQUIRE(o.rc == 0);
        CHECK(contains(o.out, "linux/amd64  (layer " + layer + ": not in the store)\n"));
    }

    TEST_CASE("image and store commands: errors name the reference or path") {
        temp_dir tmp("cz-cli-image");
        auto cz_root = "--root " + quote(tmp / "root") + " ";

        auto o = run_cz(tmp, cz_root + "image inspect nope:1");
        CHECK(o.rc == 1);
        CHECK(o.err == "cz: no image named \"nope:1\": not found\n");
        o = run_cz(tmp, cz_root + "image rm nope");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "\"nope\""));
        o = run_cz(tmp, cz_root + "image tag nope:1 fine:2");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "\"nope:1\""));
        o = run_cz(tmp, cz_root + "image tag nope:1 Bad/Name::x");
        CHECK(o.rc == 1);
        CHECK(o.err.rfind("cz: Bad/Name::x: at offset ", 0) == 0);
        o = run_cz(tmp, cz_root + "image tag nope:1 app@sha256:" + std::string(64, 'a'));
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "a tag names no digest"));

        // load takes a layout directory or an archive, and says which path is wrong.
        write_file(tmp / "file.tar", "not a layout");
        o = run_cz(tmp, cz_root + "image load " + quote(tmp / "file.tar"));
        CHECK(o.rc == 1);
        CHECK(o.err.rfind("cz: " + tmp / "file.tar" + ": ", 0) == 0);
        o = run_cz(tmp, cz_root + "image load " + quote(tmp / "missing"));
        CHECK(o.rc == 1);
        CHECK(o.err.rfind("cz: " + tmp / "missing" + ": ", 0) == 0);
        std::filesystem::create_directories(tmp.path / "empty");
        o = run_cz(tmp, cz_root + "image load " + quote(tmp / "empty"));
        CHECK(o.rc == 1);
        CHECK(o.err.rfind("cz: " + tmp / "empty" + ": ", 0) == 0);

        // Usage errors: exit code 2.
        o = run_cz(tmp, cz_root + "store gc --grace 5x");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--grace: '5x' is not a duration"));
        o = run_cz(tmp, cz_root + "image inspect --platform linux/amd64/v3/x a:1");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--platform"));
        o = run_cz(tmp, cz_root + "image");
        CHECK(o.rc == 2);

        // An empty store: an empty list, a clean verify, nothing to collect.
        o = run_cz(tmp, cz_root + "image ls --json");
        CHECK(o.rc == 0);
        CHECK(nlohmann::json::parse(o.out) == nlohmann::json::array());
        o = run_cz(tmp, cz_root + "store verify");
        CHECK(o.rc == 0);
        o = run_cz(tmp, cz_root + "store gc --grace 0");
        CHECK(o.out == "Removed 0 blobs, 0 B\n");
    }

    TEST_CASE("the state root: --root, then CZ_ROOT, then XDG_DATA_HOME, then HOME") {
        temp_dir tmp("cz-cli-image");
        auto ls = quote(cli_test::cz()) + " image ls --json </dev/null >/dev/null 2>&1";
        auto layout_at = [&](const std::string& dir) {
            return std::filesystem::exists(std::filesystem::path(dir) / "content/oci-layout");
        };
        sh_ok("env CZ_ROOT=" + quote(tmp / "env") + " XDG_DATA_HOME=" + quote(tmp / "xdg") +
              " HOME=" + quote(tmp / "home") + " " + quote(cli_test::cz()) + " --root " +
              quote(tmp / "flag") + " image ls --json </dev/null >/dev/null 2>&1");
        CHECK(layout_at(tmp / "flag"));
        CHECK(!layout_at(tmp / "env"));
        sh_ok("env CZ_ROOT=" + quote(tmp / "env") + " XDG_DATA_HOME=" + quote(tmp / "xdg") +
              " HOME=" + quote(tmp / "home") + " " + ls);
        CHECK(layout_at(tmp / "env"));
        CHECK(!layout_at(tmp / "xdg/cz"));
        sh_ok("env -u CZ_ROOT XDG_DATA_HOME=" + quote(tmp / "xdg") +
              " HOME=" + quote(tmp / "home") + " " + ls);
        CHECK(layout_at(tmp / "xdg/cz"));
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        sh_ok("cd " + quote(tmp.str()) +
              " && env -u CZ_ROOT XDG_DATA_HOME=rel HOME=" + quote(tmp / "home") + " " + ls);
        CHECK(layout_at(tmp / "home/.local/share/cz"));
        CHECK(!std::filesystem::exists(tmp.path / "rel"));
        auto o = sh("env -u CZ_ROOT -u XDG_DATA_HOME -u HOME " + ls);
        CHECK(o == 1);
    }

} // TEST_SUITE
