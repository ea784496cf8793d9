// cz image push against docker-registry on loopback: cz pushes an image from its store, skopeo
// finds it under the digest cz reports; a second push sends nothing; errors name what went
// wrong.
#include "../oci/image.hpp"
#include "../oci/registry_server.hpp"
#include "cz_tool.hpp"

using namespace cz_test;
using namespace cli_test;

namespace {

std::string skopeo_digest(const std::string& remote) {
    std::string out;
    CHECK(sh("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + remote, &out) ==
          0);
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

} // namespace

TEST_SUITE("cz cli") {

    TEST_CASE("image push: skopeo finds what cz pushed; again, nothing is sent; errors") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir tmp("cz-cli-push");
        auto store = cz::oci::content_store::open(tmp.path / "root");
        auto image = oci_test::put_image(store, "pushed by cz\n");
        cz::oci::image_store images(store);
        images.tag("app:1", image.manifest);
        auto root = "--root " + quote((tmp.path / "root").string());
        auto remote = server.host() + "/cz/app:1";
        auto digest = image.manifest.digest.str();

        auto push = run_cz(tmp, root + " image push app:1 " + remote);
        CHECK_MESSAGE(push.rc == 0, push.err);
        CHECK(contains(push.out, image.layer.digest.hex().substr(0, 12) + ": pushed, "));
        CHECK(contains(push.out, image.config.digest.hex().substr(0, 12) + ": pushed, "));
        CHECK(contains(push.out, "Pushed: " + remote + " (" + digest + ")"));
        CHECK(skopeo_digest(remote) == digest);

        auto again = run_cz(tmp, root + " image push app:1 " + remote);
        CHECK_MESSAGE(again.rc == 0, again.err);
        CHECK(contains(again.out, image.layer.digest.hex().substr(0, 12) + ": already there"));
        CHECK(!contains(again.out, ": pushed,"));

        // The remote reference defaults to the local name; -q prints only the digest; the
        // store names the repository the blobs came from, so they are mounted.
        images.tag(remote, image.manifest);
        images.tag(server.host() + "/cz/other:2", image.manifest);
        auto quiet = run_cz(tmp, root + " image push -q " + server.host() + "/cz/other:2");
        CHECK_MESSAGE(quiet.rc == 0, quiet.err);
        CHECK(quiet.out == digest + "\n");
        CHECK(skopeo_digest(server.host() + "/cz/other:2") == digest);
        auto mounted = run_cz(tmp, root + " image push app:1 " + server.host() + "/cz/third:1");
        CHECK_MESSAGE(mounted.rc == 0, mounted.err);
        CHECK(contains(mounted.out, ": mounted from cz/"));

        auto missing = run_cz(tmp, root + " image push nope:1 " + server.host() + "/cz/x:1");
        CHECK(missing.rc == 1);
        CHECK(contains(missing.err, "image nope:1: no image named"));
        auto bad_ref = run_cz(tmp, root + " image push app:1 'Not A Ref'");
        CHECK(bad_ref.rc == 1);
        CHECK(contains(bad_ref.err, "Not A Ref"));
        auto usage = run_cz(tmp, root + " image push");
        CHECK(usage.rc == 2);
        CHECK(contains(usage.err, "LOCAL-NAME is required"));
    }
}
