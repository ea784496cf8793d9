// cz image pull against docker-registry on loopback: skopeo pushes an image cz made, cz pulls it
// into a fresh root with the digest skopeo reports, and errors name what went wrong.
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
}
