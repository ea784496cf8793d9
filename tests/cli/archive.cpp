// cz image import, save and load with archives, against skopeo: an image cz imports from a root
// filesystem tar is what skopeo inspects in cz's store and in the archives cz saves (OCI and
// docker formats), and what skopeo writes into archives cz loads.
#include "cz_tool.hpp"

#include <nlohmann/json.hpp>

using namespace cz_test;
using namespace cli_test;

namespace {

std::string digest_of(const std::string& transport_ref) {
    auto d = sh_ok("skopeo inspect --format '{{.Digest}}' " + quote(transport_ref));
    while (!d.empty() && (d.back() == '\n' || d.back() == ' '))
        d.pop_back();
    return d;
}

} // namespace

TEST_SUITE("cz cli") {

    TEST_CASE("image import, save (oci, docker) and load: skopeo reads what cz writes, and back") {
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp("cz-cli-archive");
        auto root = (tmp.path / "root").string();
        auto cz_root = "--root " + quote(root) + " ";
        sh_ok("mkdir -p " + quote(tmp / "tree/etc") + " && echo imported > " +
              quote(tmp / "tree/etc/motd") + " && tar -C " + quote(tmp / "tree") + " -czf " +
              quote(tmp / "rootfs.tar.gz") + " .");

        auto o = run_cz(tmp, cz_root + "image import " + quote(tmp / "rootfs.tar.gz") + " app:1");
        REQUIRE_MESSAGE(o.rc == 0, o.err);
        CHECK(o.out.rfind("Imported: docker.io/library/app:1 (sha256:", 0) == 0);
        auto stored = digest_of("oci:" + root + "/content:docker.io/library/app:1");

        o = run_cz(tmp, cz_root + "image save app:1 -o " + quote(tmp / "oci.tar"));
        REQUIRE_MESSAGE(o.rc == 0, o.err);
        CHECK(digest_of("oci-archive:" + tmp / "oci.tar" + ":docker.io/library/app:1") == stored);
        o = run_cz(tmp, cz_root + "image save app:1 --format docker -o " + quote(tmp / "d.tar"));
        REQUIRE_MESSAGE(o.rc == 0, o.err);
        auto config = nlohmann::json::parse(
            sh_ok("skopeo inspect --config docker-archive:" + quote(tmp / "d.tar")));
        CHECK(config["rootfs"]["diff_ids"].size() == 1);

        // Both archives back into a fresh root; skopeo's own oci-archive too.
        auto fresh = "--root " + quote((tmp.path / "fresh").string()) + " ";
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "oci.tar"));
        CHECK_MESSAGE(o.rc == 0, o.err);
        CHECK(contains(o.out, "Loaded: docker.io/library/app:1 (" + stored + ")"));
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "d.tar"));
        CHECK_MESSAGE(o.rc == 0, o.err);
        CHECK(contains(o.out, "Loaded: "));
        sh_ok("skopeo copy -q oci:" + quote(root + "/content:docker.io/library/app:1") +
              " oci-archive:" + quote(tmp / "skopeo.tar" + ":other:2"));
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "skopeo.tar"));
        CHECK_MESSAGE(o.rc == 0, o.err);
        CHECK(contains(o.out, "Loaded: other:2 (" + stored + ")"));
        CHECK(run_cz(tmp, fresh + "store verify").rc == 0);

        // skopeo's dir: format has no name: --name gives it one, and is required.
        sh_ok("skopeo copy -q oci:" + quote(root + "/content:docker.io/library/app:1") +
              " dir:" + quote(tmp / "dir"));
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "dir"));
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "give --name NAME"));
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "dir") + " --name fromdir:3");
        CHECK_MESSAGE(o.rc == 0, o.err);
        CHECK(contains(o.out, "Loaded: docker.io/library/fromdir:3 (" + stored + ")"));
        o = run_cz(tmp, fresh + "image load " + quote(tmp / "oci.tar") + " --name x:1");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "--name is for skopeo's dir: format"));

        // Errors name what is wrong.
        o = run_cz(tmp, cz_root + "image save nope:1 -o " + quote(tmp / "x.tar"));
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "nope:1"));
        CHECK(!std::filesystem::exists(tmp.path / "x.tar"));
        o = run_cz(tmp, cz_root + "image save app:1 --format zip -o " + quote(tmp / "x.tar"));
        CHECK(o.rc == 2);
        o = run_cz(tmp, cz_root + "image import " + quote(tmp / "missing.tar") + " app:2");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "missing.tar"));
        o = run_cz(tmp, cz_root + "image import " + quote(tmp / "rootfs.tar.gz") + " Bad:Name:1");
        CHECK(o.rc == 1);
    }

    TEST_CASE("image import --change: how containers of the image run, as docker import sets it") {
        temp_dir tmp("cz-cli-change");
        auto cz_root = "--root " + quote((tmp.path / "root").string()) + " ";
        sh_ok("mkdir -p " + quote(tmp / "tree/etc") + " && tar -C " + quote(tmp / "tree") +
              " -cf " + quote(tmp / "rootfs.tar") + " .");
        auto o = run_cz(tmp, cz_root + "image import " + quote(tmp / "rootfs.tar") +
                                 " app:1 --change 'CMD [\"sh\", \"-l\"]' -c 'ENTRYPOINT echo hi' "
                                 "-c 'ENV A=1 B=2' -c 'env A 3' -c 'WORKDIR /srv' -c 'USER alice'");
        REQUIRE_MESSAGE(o.rc == 0, o.err);
        o = run_cz(tmp, cz_root + "image inspect app:1 --json");
        REQUIRE_MESSAGE(o.rc == 0, o.err);
        auto config = nlohmann::json::parse(o.out)["config"]["config"];
        CHECK(config["Cmd"] == nlohmann::json({"sh", "-l"}));
        CHECK(config["Entrypoint"] == nlohmann::json({"/bin/sh", "-c", "echo hi"}));
        CHECK(config["Env"] == nlohmann::json({"B=2", "A=3"}));
        CHECK(config["WorkingDir"] == "/srv");
        CHECK(config["User"] == "alice");
        for (const char* bad : {"'CMD [1]'", "'EXPOSE 80'", "'WORKDIR rel'", "'ENV =x'", "CMD"}) {
            o = run_cz(tmp, cz_root + "image import " + quote(tmp / "rootfs.tar") +
                                " app:2 --change " + bad);
            CHECK_MESSAGE(o.rc == 2, bad);
            CHECK(contains(o.err, "--change"));
        }
    }
}
