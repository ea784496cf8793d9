// cz image pull against docker-registry on loopback: skopeo pushes an image cz made, cz pulls it
// into a fresh root with the digest skopeo reports, and errors name what went wrong.
#include "../oci/fault_proxy.hpp"
#include "../oci/image.hpp"
#include "../oci/registry_server.hpp"
#include "cz_tool.hpp"

using namespace cz_test;
using namespace cli_test;

namespace {

std::string trim_digest(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// An image of `layers` uncompressed layers, each a file of `size` bytes that no other layer
// shares; returns the manifest.
cz::oci::descriptor put_layered_image(const cz::oci::content_store& cs, int layers,
                                      std::size_t size) {
    cz::oci::image_config c;
    c.architecture = "amd64";
    c.os = "linux";
    cz::oci::manifest m;
    m.media_type = std::string(cz::oci::media_type::oci_manifest);
    std::string content(size, '\0');
    for (int i = 0; i < layers; ++i) {
        std::uint64_t x = 0x9e3779b97f4a7c15ull * std::uint64_t(i + 1);
        for (auto& ch : content) { // xorshift: incompressible, different per layer
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ch = static_cast<char>(x);
        }
        auto layer = cs.put(cz::oci::media_type::oci_layer,
                            oci_test::layer_tar("layer" + std::to_string(i), content));
        c.diff_ids.push_back(layer.digest);
        m.layers.push_back(layer);
    }
    m.config = cs.put(cz::oci::media_type::oci_config, cz::oci::serialize(c));
    return cs.put(cz::oci::media_type::oci_manifest, cz::oci::serialize(m));
}

} // namespace

TEST_SUITE("cz cli") {

    TEST_CASE("image pull: what skopeo pushed, with its digest; errors name the cause") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir tmp("cz-cli-pull");
        auto source = cz::oci::content_store::open(tmp.path / "source");
        auto image = oci_test::put_image(source, "pulled through the registry\n");
        cz::oci::image_store(source).tag("app:1", image.manifest);
        auto remote = server.host() + "/cz/app:1";
        sh_ok("skopeo copy -q --dest-tls-verify=false " +
              quote("oci:" + (tmp.path / "source/content").string() + ":app:1") + " docker://" +
              remote);
        auto pushed = trim_digest(sh_ok("skopeo inspect --tls-verify=false --format "
                                        "'{{.Digest}}' docker://" +
                                        remote));
        auto root = quote((tmp.path / "root").string());

        auto pull = run_cz(tmp, "--root " + root + " image pull " + remote);
        CHECK_MESSAGE(pull.rc == 0, pull.err);
        CHECK(contains(pull.out, "Pulled: " + remote + " (" + pushed + ")"));
        CHECK(contains(pull.out, ": done,"));
        auto quiet = run_cz(tmp, "--root " + root + " image pull -q " + remote);
        CHECK(quiet.rc == 0);
        CHECK(quiet.out == pushed + "\n");
        auto ls = run_cz(tmp, "--root " + root + " image ls --json");
        CHECK(contains(ls.out, remote));
        CHECK(run_cz(tmp, "--root " + root + " store verify").rc == 0);

        auto missing = run_cz(tmp, "--root " + root + " image pull " + server.host() + "/cz/app:2");
        CHECK(missing.rc == 1);
        CHECK(contains(missing.err, "MANIFEST_UNKNOWN"));
        auto bad_ref = run_cz(tmp, "--root " + root + " image pull 'Not A Ref'");
        CHECK(bad_ref.rc == 1);
        CHECK(contains(bad_ref.err, "Not A Ref"));
        auto bad_platform = run_cz(tmp, "--root " + root + " image pull --platform x " + remote);
        CHECK(bad_platform.rc == 1);
        CHECK(contains(bad_platform.err, "--platform x"));
    }

    TEST_CASE("image pull: two processes pull the same image at once; one copy of each blob") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir tmp("cz-cli-pull2");
        auto source = cz::oci::content_store::open(tmp.path / "source");
        // More layers than a pull fetches at once (4), so the two pulls meet on several blobs.
        auto manifest = put_layered_image(source, 10, 2 << 20);
        cz::oci::image_store(source).tag("big:1", manifest);
        auto remote = server.host() + "/cz/big:1";
        sh_ok("skopeo copy -q --dest-tls-verify=false " +
              quote("oci:" + (tmp.path / "source/content").string() + ":big:1") + " docker://" +
              remote);
        auto pushed = trim_digest(sh_ok("skopeo inspect --tls-verify=false --format "
                                        "'{{.Digest}}' docker://" +
                                        remote));
        // Blobs come slowly (0.3 s before each answer), so that both pulls hold some blobs'
        // ingest locks while they wait for others'.
        fault_proxy proxy(server.endpoint(), [](const auto& seen) {
            return seen.back().is_blob_get() ? fault::slow(std::chrono::milliseconds(300))
                                             : fault::pass();
        });
        remote = proxy.host() + "/cz/big:1";
        auto root = quote((tmp.path / "root").string());
        // Each pull in the background, its exit code in a file; `timeout` turns a deadlock
        // between them into a failure.
        std::string both;
        for (int i : {1, 2})
            both += "(timeout 120 " + quote(cli_test::cz()) + " --root " + root +
                    " image pull -q " + remote + " >" + quote(tmp / ("out" + std::to_string(i))) +
                    " 2>" + quote(tmp / ("err" + std::to_string(i))) + "; echo $? >" +
                    quote(tmp / ("rc" + std::to_string(i))) + ") & ";
        sh_ok(both + "wait");
        for (int i : {1, 2}) {
            auto n = std::to_string(i);
            INFO("pull ", i, ": ", read_file(tmp / ("err" + n)));
            CHECK(read_file(tmp / ("rc" + n)) == "0\n");
            CHECK(read_file(tmp / ("out" + n)) == pushed + "\n");
        }
        auto verify = run_cz(tmp, "--root " + root + " store verify");
        CHECK_MESSAGE(verify.rc == 0, verify.out, verify.err);
        // One copy of each blob (config, manifest, 10 layers), and no partial one.
        std::size_t blobs = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(
                 tmp.path / "root" / "content" / "blobs" / "sha256"))
            ++blobs;
        CHECK(blobs == 12);
        CHECK(std::filesystem::is_empty(tmp.path / "root" / "ingest"));
        auto ls = run_cz(tmp, "--root " + root + " image ls --json");
        CHECK(contains(ls.out, remote));
    }
}
