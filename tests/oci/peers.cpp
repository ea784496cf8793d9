// cz/oci/store.hpp against skopeo and umoci: images skopeo writes into cz's store are read by
// cz; images cz stores are read by `skopeo inspect|copy oci:` and `umoci unpack`, with the same
// manifest digests. Everything is local (dir:, oci:, oci-archive:); no network.
#include <cz/oci/archive.hpp>
#include <cz/oci/import.hpp>
#include <cz/oci/store.hpp>

#include "image.hpp"
#include "support/support.hpp"

#include <cz/core/compression.hpp>
#include <cz/tar/reader.hpp>

#include <nlohmann/json.hpp>

using namespace cz::oci;
using cz_test::quote;
using cz_test::read_file;
using cz_test::sh;
using cz_test::sh_ok;
using cz_test::temp_dir;
using cz_test::write_file;

namespace {

// The contents of the file `name` in a layer blob (tar, gzip or zstd).
std::string file_in_layer(const content_store& cs, const descriptor& layer,
                          const std::string& name) {
    auto bytes = cs.read(layer, 64 << 20);
    cz::memory_source src(cz::as_bytes(bytes));
    cz::decompressing_source plain(src);
    cz::tar::reader r(plain);
    while (const auto* e = r.next()) {
        if (e->name == name || e->name == "./" + name) {
            cz::byte_buffer out;
            cz::buffer_sink sink(out);
            std::error_code ec;
            cz::copy(r, sink, ec);
            REQUIRE(!ec);
            return cz::to_string(out);
        }
    }
    FAIL("no ", name, " in layer ", layer.digest.str());
    return {};
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("peers: skopeo copies dir: and oci-archive: images into cz's store; cz reads them") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        auto cs = content_store::open(tmp.path / "root");
        auto content = tmp.path / "root" / "content";
        auto manifest_bytes = oci_test::write_dir_image(tmp.path / "src", "hello from skopeo\n");

        sh_ok("skopeo copy -q dir:" + quote((tmp.path / "src").string()) +
              " oci:" + quote(content.string() + ":docker.io/library/from-dir:1") + " 2>&1");
        // Through an OCI archive as well (skopeo writes it, then copies it in).
        sh_ok("skopeo copy -q dir:" + quote((tmp.path / "src").string()) +
              " oci-archive:" + quote(tmp / "image.tar") + " 2>&1");
        sh_ok("skopeo copy -q oci-archive:" + quote(tmp / "image.tar") +
              " oci:" + quote(content.string() + ":from-archive") + " 2>&1");

        image_store images(cs);
        auto entries = images.list();
        REQUIRE(entries.size() == 2);
        CHECK(entries[0].name == "docker.io/library/from-dir:1");
        CHECK(entries[1].name == "from-archive");

        // skopeo's digest for the image is the one cz finds, and the manifest bytes are skopeo's.
        auto skopeo_digest = trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci:" +
                                        quote(content.string() + ":docker.io/library/from-dir:1")));
        auto top = images.lookup("from-dir:1"); // the normalised name finds it
        CHECK(top.digest.str() == skopeo_digest);
        auto target = images.resolve(top, parse_platform("linux/amd64"));
        auto m = parse_manifest(cs.read(target, max_document_size));
        CHECK(m.bytes == trim(sh_ok("skopeo inspect --raw oci:" +
                                    quote(content.string() + ":docker.io/library/from-dir:1"))));
        auto c = parse_image_config(cs.read(m.config, max_document_size));
        CHECK(c.os == "linux");
        REQUIRE(c.config.cmd);
        CHECK(c.config.cmd->at(1) == "/hello");
        REQUIRE(m.layers.size() == 1);
        CHECK(file_in_layer(cs, m.layers[0], "hello") == "hello from skopeo\n");
        // "from-archive" is a name on docker.io too: both spellings find it.
        CHECK(images.lookup("docker.io/library/from-archive:latest").digest ==
              images.lookup("from-archive").digest);

        std::error_code ec;
        auto report = images.verify(ec);
        CHECK(!ec);
        CHECK(report.ok());
        CHECK(report.blobs >= 3);
        (void)manifest_bytes;
    }

    TEST_CASE("peers: an OCI layout skopeo writes is imported with skopeo's digests") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        oci_test::write_dir_image(tmp.path / "src", "imported\n");
        std::filesystem::create_directories(tmp.path / "layout");
        sh_ok("skopeo copy -q dir:" + quote((tmp.path / "src").string()) + " oci:" +
              quote((tmp.path / "layout").string() + ":docker.io/library/imp:1") + " 2>&1");
        auto skopeo_digest =
            trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci:" +
                       quote((tmp.path / "layout").string() + ":docker.io/library/imp:1")));
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto report = import_layout(images, tmp.path / "layout");
        REQUIRE(report.tagged.size() == 1);
        CHECK(report.tagged[0].name == "docker.io/library/imp:1");
        CHECK(images.lookup("imp:1").digest.str() == skopeo_digest);
        auto m = parse_manifest(cs.read(images.lookup("imp:1"), max_document_size));
        CHECK(file_in_layer(cs, m.layers.at(0), "hello") == "imported\n");
        std::error_code ec;
        CHECK(images.verify(ec).ok());
    }

    TEST_CASE("peers: skopeo's dir: format is imported with skopeo's digests, one image or all") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        // A one-image dir: as skopeo writes it (skopeo copies into it from an OCI layout).
        auto source = content_store::open(tmp.path / "source");
        image_store source_images(source);
        auto amd64 = oci_test::put_image(source, "amd64 files\n", "amd64");
        auto arm64 = oci_test::put_image(source, "arm64 files\n", "arm64", "v8");
        source_images.tag("one:1", amd64.manifest);
        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        auto with_platform = [](descriptor d, const std::string& arch, const std::string& v) {
            d.platform = platform{};
            d.platform->os = "linux";
            d.platform->architecture = arch;
            d.platform->variant = v;
            return d;
        };
        ix.manifests = {with_platform(amd64.manifest, "amd64", ""),
                        with_platform(arm64.manifest, "arm64", "v8")};
        source_images.tag("all:1", source.put(media_type::oci_index, serialize(ix)));
        auto layout = (tmp.path / "source/content").string();
        auto one = (tmp.path / "one").string(), all = (tmp.path / "all").string();
        sh_ok("skopeo copy -q oci:" + quote(layout + ":one:1") + " dir:" + quote(one));
        sh_ok("skopeo copy -q --all oci:" + quote(layout + ":all:1") + " dir:" + quote(all));

        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto report = import_dir(images, one, "docker.io/library/one:1");
        REQUIRE(report.tagged.size() == 1);
        CHECK(images.lookup("one:1").digest.str() ==
              trim(sh_ok("skopeo inspect --format '{{.Digest}}' dir:" + quote(one))));
        auto m = parse_manifest(cs.read(images.lookup("one:1"), max_document_size));
        CHECK(file_in_layer(cs, m.layers.at(0), "hello") == "amd64 files\n");
        report = import_dir(images, all, "docker.io/library/all:1");
        REQUIRE(report.tagged.size() == 1);
        auto top = images.lookup("all:1");
        CHECK(media_type::is_index(top.media_type));
        platform want;
        want.os = "linux";
        want.architecture = "arm64";
        CHECK(images.resolve(top, want).digest == arm64.manifest.digest);
        std::error_code ec;
        CHECK(images.verify(ec).ok());

        // A blob that is a symlink, one that is missing, one that is not what it is named, a
        // version file of another kind: errors naming the blob, nothing tagged.
        auto bad = [&](const std::string& name, auto&& damage) {
            auto dir = tmp.path / name;
            sh_ok("cp -r " + quote(one) + " " + quote(dir.string()));
            damage(dir);
            auto fresh = content_store::open(tmp.path / ("root-" + name));
            image_store fresh_images(fresh);
            std::string why;
            import_dir(fresh_images, dir, "x:1", ec, &why);
            CHECK_MESSAGE(ec, name);
            CHECK(fresh_images.list(ec).empty());
            return why;
        };
        auto layer_file = [&](const std::filesystem::path& dir) {
            return dir / m.layers.at(0).digest.hex();
        };
        auto why = bad("symlink", [&](const std::filesystem::path& dir) {
            std::filesystem::remove(layer_file(dir));
            std::filesystem::create_symlink("/etc/passwd", layer_file(dir));
        });
        CHECK(why.find("symbolic link") != std::string::npos);
        why = bad("missing", [&](const std::filesystem::path& dir) {
            std::filesystem::remove(layer_file(dir));
        });
        CHECK(why.find(m.layers.at(0).digest.str()) != std::string::npos);
        bad("mismatch", [&](const std::filesystem::path& dir) {
            auto bytes = read_file(layer_file(dir));
            bytes[bytes.size() / 2] ^= 1;
            write_file(layer_file(dir), bytes);
        });
        bad("version", [&](const std::filesystem::path& dir) {
            write_file(dir / "version", "Directory Transport Version: 9.0\n");
        });
    }

    TEST_CASE("peers: skopeo and umoci read what cz stores, with the same digests") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!cz_test::have("umoci")) CZ_SKIP("umoci is not installed");
        temp_dir tmp;
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto img = oci_test::put_image(cs, "hello from cz\n");
        const std::string name = "docker.io/library/from-cz:1";
        images.tag(name, img.manifest);
        auto ref = (tmp.path / "root" / "content").string() + ":" + name;

        CHECK(trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci:" + quote(ref))) ==
              img.manifest.digest.str());
        CHECK(sh_ok("skopeo inspect --raw oci:" + quote(ref)) == img.manifest_bytes);
        auto config =
            nlohmann::json::parse(sh_ok("skopeo inspect --config --raw oci:" + quote(ref)));
        CHECK(config["config"]["Cmd"][1] == "/hello");

        // A copy out keeps the manifest byte for byte.
        sh_ok("skopeo copy -q oci:" + quote(ref) + " dir:" + quote(tmp / "out") + " 2>&1");
        CHECK(read_file(tmp.path / "out" / "manifest.json") == img.manifest_bytes);
        CHECK(read_file(tmp.path / "out" / img.layer.digest.hex()) == cs.read(img.layer, 1 << 20));

        // umoci unpacks it (rootless: no chown needed) and finds the file.
        sh_ok("umoci unpack --rootless --image " + quote(ref) + " " + quote(tmp / "bundle") +
              " 2>&1");
        CHECK(read_file(tmp.path / "bundle" / "rootfs" / "hello") == "hello from cz\n");
        auto bundle_config = nlohmann::json::parse(read_file(tmp.path / "bundle" / "config.json"));
        CHECK(bundle_config["process"]["args"][1] == "/hello");

        // Both left the store as it was.
        std::error_code ec;
        CHECK(images.verify(ec).ok());
        CHECK(images.list().size() == 1);
    }

    TEST_CASE(
        "peers: a multi-platform index cz writes is copied whole by skopeo --all and resolved") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        auto cs = content_store::open(tmp.path / "a");
        auto amd = oci_test::put_image(cs, "amd64\n", "amd64");
        auto arm = oci_test::put_image(cs, "arm64\n", "arm64", "v8");
        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        ix.manifests = {amd.manifest, arm.manifest};
        ix.manifests[0].platform = platform{"linux", "amd64", "", "", {}};
        ix.manifests[1].platform = platform{"linux", "arm64", "v8", "", {}};
        auto index_desc = cs.put(media_type::oci_index, serialize(ix));
        image_store(cs).tag("docker.io/library/multi:1", index_desc);

        auto b = content_store::open(tmp.path / "b");
        // --preserve-digests: skopeo would otherwise gzip cz's uncompressed layers on the way.
        sh_ok("skopeo copy -q --all --preserve-digests oci:" +
              quote((tmp.path / "a/content").string() + ":docker.io/library/multi:1") + " oci:" +
              quote((tmp.path / "b/content").string() + ":docker.io/library/multi:1") + " 2>&1");
        image_store images(b);
        auto top = images.lookup("multi:1");
        CHECK(top.digest == index_desc.digest);
        auto arm_manifest = images.resolve(top, parse_platform("linux/aarch64"));
        CHECK(arm_manifest.digest == arm.manifest.digest);
        auto m = parse_manifest(b.read(arm_manifest, max_document_size));
        CHECK(file_in_layer(b, m.layers.at(0), "hello") == "arm64\n");
        // skopeo chooses the same manifest for arm64 as cz does: a copy without --all takes the
        // one instance it picks.
        sh_ok("skopeo --override-arch arm64 copy -q --preserve-digests oci:" +
              quote((tmp.path / "b/content").string() + ":docker.io/library/multi:1") +
              " dir:" + quote(tmp / "arm-out") + " 2>&1");
        auto chosen =
            describe(media_type::oci_manifest, read_file(tmp.path / "arm-out/manifest.json"));
        CHECK(chosen.digest == arm.manifest.digest);
        std::error_code ec;
        CHECK(images.verify(ec).ok());
    }

    TEST_CASE("peers: an oci-archive skopeo writes is loaded by cz with skopeo's digest") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        oci_test::write_dir_image(tmp.path / "src", "from an oci-archive\n");
        auto archive = tmp / "image.tar";
        sh_ok("skopeo copy -q dir:" + quote((tmp.path / "src").string()) +
              " oci-archive:" + quote(archive + ":docker.io/library/arch:1") + " 2>&1");
        auto skopeo_digest = trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci-archive:" +
                                        quote(archive + ":docker.io/library/arch:1")));
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto report = load_archive(images, std::filesystem::path(archive));
        CHECK(report.format == archive_format::oci);
        REQUIRE(report.tagged.size() == 1);
        CHECK(report.tagged[0].name == "docker.io/library/arch:1");
        CHECK(images.lookup("arch:1").digest.str() == skopeo_digest);
        auto m = parse_manifest(cs.read(images.lookup("arch:1"), max_document_size));
        CHECK(file_in_layer(cs, m.layers.at(0), "hello") == "from an oci-archive\n");
        std::error_code ec;
        CHECK(images.verify(ec).ok());
        // skopeo reads the store the archive went into, with the same digest.
        CHECK(trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci:" +
                         quote((tmp.path / "root/content").string() +
                               ":docker.io/library/arch:1"))) == skopeo_digest);
    }

    TEST_CASE("peers: a docker-archive skopeo writes is loaded by cz with skopeo's digest") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        oci_test::write_dir_image(tmp.path / "src", "from a docker-archive\n");
        auto archive = tmp / "docker.tar";
        // Two tags of one image, and a second image sharing nothing: skopeo writes one
        // manifest.json item per image.
        sh_ok("skopeo copy -q dir:" + quote((tmp.path / "src").string()) +
              " docker-archive:" + quote(archive + ":docker.io/library/dock:1") + " 2>&1");
        auto skopeo_manifest = sh_ok("skopeo inspect --raw docker-archive:" + quote(archive));
        auto skopeo_digest =
            trim(sh_ok("skopeo inspect --format '{{.Digest}}' docker-archive:" + quote(archive)));
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto report = load_archive(images, std::filesystem::path(archive));
        CHECK(report.format == archive_format::docker);
        REQUIRE(report.tagged.size() == 1);
        CHECK(report.tagged[0].name == "docker.io/library/dock:1");
        auto top = images.lookup("dock:1");
        CHECK(top.digest.str() == skopeo_digest);
        CHECK(cs.read(top, max_document_size) == skopeo_manifest);
        auto m = parse_manifest(cs.read(top, max_document_size));
        CHECK(file_in_layer(cs, m.layers.at(0), "hello") == "from a docker-archive\n");
        std::error_code ec;
        CHECK(images.verify(ec).ok());
        // (skopeo's oci: transport lists only index.json entries of OCI media types, so it does
        // not see this Docker schema2 manifest in cz's store: the digest skopeo gives the
        // docker-archive image is the one cz keeps.)
    }

    TEST_CASE("peers: archives cz saves are read by skopeo, with the same digests") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        temp_dir tmp;
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        auto img = oci_test::put_image(cs, "saved by cz\n");
        images.tag("docker.io/library/saved:1", img.manifest);

        save_archive(images, {"saved:1"}, tmp.path / "oci.tar", archive_format::oci);
        auto oci_ref = quote(tmp / "oci.tar" + ":docker.io/library/saved:1");
        CHECK(trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci-archive:" + oci_ref)) ==
              img.manifest.digest.str());
        sh_ok("skopeo copy -q oci-archive:" + oci_ref + " dir:" + quote(tmp / "from-oci") +
              " 2>&1");
        CHECK(read_file(tmp.path / "from-oci" / "manifest.json") == img.manifest_bytes);

        save_archive(images, {"saved:1"}, tmp.path / "docker.tar", archive_format::docker);
        auto docker = quote(tmp / "docker.tar");
        auto config =
            nlohmann::json::parse(sh_ok("skopeo inspect --config --raw docker-archive:" + docker));
        CHECK(config["config"]["Cmd"][1] == "/hello");
        sh_ok("skopeo copy -q docker-archive:" + docker + " dir:" + quote(tmp / "from-docker") +
              " 2>&1");
        CHECK(read_file(tmp.path / "from-docker" / img.layer.digest.hex()) ==
              cs.read(img.layer, 1 << 20));
        // skopeo finds the image under its name, and cz loading the same archive gets skopeo's
        // digest for it.
        auto skopeo_digest = trim(sh_ok("skopeo inspect --format '{{.Digest}}' docker-archive:" +
                                        quote(tmp / "docker.tar" + ":docker.io/library/saved:1")));
        auto back = content_store::open(tmp.path / "back");
        image_store back_images(back);
        load_archive(back_images, tmp.path / "docker.tar");
        CHECK(back_images.lookup("saved:1").digest.str() == skopeo_digest);
    }

    TEST_CASE("peers: an image import_rootfs makes is unpacked by umoci and read by skopeo") {
        if (!cz_test::have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!cz_test::have("umoci")) CZ_SKIP("umoci is not installed");
        if (!cz_test::have("tar")) CZ_SKIP("GNU tar is not installed");
        temp_dir tmp;
        std::filesystem::create_directories(tmp.path / "tree/etc");
        write_file(tmp.path / "tree/etc/motd", "imported\n");
        sh_ok("tar -C " + quote(tmp / "tree") + " -cf " + quote(tmp / "rootfs.tar") + " .");
        auto cs = content_store::open(tmp.path / "root");
        image_store images(cs);
        rootfs_options options;
        options.config.cmd = std::vector<std::string>{"/bin/cat", "/etc/motd"};
        auto top = import_rootfs(images, tmp.path / "rootfs.tar", "imported:1", options);
        auto ref = (tmp.path / "root/content").string() + ":docker.io/library/imported:1";
        CHECK(trim(sh_ok("skopeo inspect --format '{{.Digest}}' oci:" + quote(ref))) ==
              top.digest.str());
        sh_ok("umoci unpack --rootless --image " + quote(ref) + " " + quote(tmp / "bundle") +
              " 2>&1");
        CHECK(read_file(tmp.path / "bundle/rootfs/etc/motd") == "imported\n");
        auto bundle = nlohmann::json::parse(read_file(tmp.path / "bundle/config.json"));
        CHECK(bundle["process"]["args"][1] == "/etc/motd");
    }

} // TEST_SUITE
