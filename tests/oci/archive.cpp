// cz/oci/archive.hpp: loading OCI archives and docker-save tars (well-formed and hostile).
#include <cz/oci/archive.hpp>

#include "image.hpp"
#include "support/support.hpp"

#include <cz/core/compression.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <nlohmann/json.hpp>

using namespace cz::oci;
using cz_test::read_file;
using cz_test::temp_dir;
using cz_test::write_file;

namespace {

// One member of a test archive.
struct member {
    member(std::string n, std::string d, cz::tar::entry_type t = cz::tar::entry_type::regular,
           std::string link = {})
        : name(std::move(n)), data(std::move(d)), type(t), linkname(std::move(link)) {}
    std::string name;
    std::string data;
    cz::tar::entry_type type = cz::tar::entry_type::regular;
    std::string linkname;
};

std::string make_tar(const std::vector<member>& members) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::tar::writer w(sink, {.deterministic = true});
    for (const auto& m : members) {
        cz::tar::entry e;
        e.name = m.name;
        e.type = m.type;
        e.linkname = m.linkname;
        e.mode = m.type == cz::tar::entry_type::directory ? 0755 : 0644;
        e.size = m.type == cz::tar::entry_type::regular ? m.data.size() : 0;
        w.add(e);
        if (e.size) w.write(cz::as_bytes(m.data));
    }
    w.finish();
    return cz::to_string(out);
}

// A source store whose layout becomes archive members.
struct source_store {
    temp_dir dir{"cz-oci-src"};
    content_store cs = content_store::open(dir.path);
    image_store images{cs};

    // Every blob as blobs/sha256/<hex>, with oci-layout and index.json first or last.
    std::vector<member> members(bool index_first = false) const {
        std::vector<member> blobs;
        std::error_code ec;
        for (const auto& d : cs.list(ec))
            blobs.push_back({"blobs/sha256/" + d.hex(), read_file(cs.blob_path(d))});
        std::vector<member> top = {
            {"oci-layout", read_file(cs.layout_dir() / "oci-layout")},
            {"index.json", read_file(cs.layout_dir() / "index.json")},
        };
        std::vector<member> out;
        if (index_first) out = top;
        out.push_back({"blobs/", "", cz::tar::entry_type::directory});
        out.push_back({"blobs/sha256/", "", cz::tar::entry_type::directory});
        out.insert(out.end(), blobs.begin(), blobs.end());
        if (!index_first) out.insert(out.end(), top.begin(), top.end());
        return out;
    }
};

struct target_store {
    temp_dir dir{"cz-oci-dst"};
    content_store cs = content_store::open(dir.path);
    image_store images{cs};

    load_report load(const std::string& tar) const {
        cz::memory_source src(cz::as_bytes(tar));
        std::error_code ec;
        std::string detail;
        auto report = load_archive(images, src, "test.tar", ec, &detail);
        REQUIRE_MESSAGE(!ec, ec.message(), ": ", detail);
        return report;
    }

    std::string load_error(const std::string& tar, std::error_code want) const {
        cz::memory_source src(cz::as_bytes(tar));
        std::error_code ec;
        std::string detail;
        load_archive(images, src, "test.tar", ec, &detail);
        CHECK_MESSAGE(ec == want, ec.message(), ": ", detail);
        CHECK(detail.starts_with("test.tar: "));
        return detail;
    }

    std::size_t ingest_files() const {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(cs.ingest_dir()))
            ++n;
        return n;
    }
};

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("archive: an OCI archive's images are loaded and tagged, in either member order") {
        source_store src;
        auto a = oci_test::put_image(src.cs, "a\n");
        auto b = oci_test::put_image(src.cs, "b\n", "arm64", "v8");
        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        ix.manifests = {a.manifest, b.manifest};
        ix.manifests[0].platform = platform{"linux", "amd64", "", "", {}};
        ix.manifests[1].platform = platform{"linux", "arm64", "v8", "", {}};
        auto multi = src.cs.put(media_type::oci_index, serialize(ix));
        src.images.tag("docker.io/library/a:1", a.manifest);
        src.images.tag("docker.io/library/multi:2", multi);

        for (bool index_first : {false, true}) {
            CAPTURE(index_first);
            target_store dst;
            auto report = dst.load(make_tar(src.members(index_first)));
            CHECK(report.format == archive_format::oci);
            REQUIRE(report.tagged.size() == 2);
            CHECK(report.tagged[0].name == "docker.io/library/a:1");
            CHECK(report.tagged[1].name == "docker.io/library/multi:2");
            CHECK(report.blobs == 7);
            CHECK(dst.images.lookup("a:1").digest == a.manifest.digest);
            CHECK(dst.images.resolve(dst.images.lookup("multi:2"), parse_platform("linux/arm64"))
                      .digest == b.manifest.digest);
            std::error_code ec;
            CHECK(dst.images.verify(ec).ok());
            CHECK(dst.ingest_files() == 0);
            // A second load finds everything stored and changes nothing.
            auto again = dst.load(make_tar(src.members(index_first)));
            CHECK(again.tagged.size() == 2);
            CHECK(dst.images.list().size() == 2);
        }
    }

    TEST_CASE("archive: a large layer streams into the store; a gzip-compressed archive loads") {
        source_store src;
        std::string big(6 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i)
            big[i] = char((i * 7919) >> 5);
        auto layer = src.cs.put(media_type::oci_layer, oci_test::layer_tar("big", big));
        image_config c;
        c.architecture = "amd64";
        c.os = "linux";
        c.diff_ids = {layer.digest};
        manifest m;
        m.media_type = std::string(media_type::oci_manifest);
        m.config = src.cs.put(media_type::oci_config, serialize(c));
        m.layers = {layer};
        auto top = src.cs.put(media_type::oci_manifest, serialize(m));
        src.images.tag("big", top);
        auto tar = make_tar(src.members());

        cz::byte_buffer gz;
        {
            cz::buffer_sink sink(gz);
            cz::compressing_sink enc(sink, cz::compression::gzip);
            std::error_code ec;
            enc.write(cz::as_bytes(tar), ec);
            enc.finish(ec);
            REQUIRE(!ec);
        }
        target_store dst;
        auto report = dst.load(cz::to_string(gz));
        REQUIRE(report.tagged.size() == 1);
        CHECK(dst.cs.contains(layer.digest));
        std::error_code ec;
        CHECK(dst.images.verify(ec).ok());
    }

    TEST_CASE("archive: hostile OCI archives end in clear errors, nothing outside the store") {
        source_store src;
        auto img = oci_test::put_image(src.cs, "x\n");
        src.images.tag("x", img.manifest);
        target_store dst;
        auto outside = dst.dir.path.parent_path() / "cz-archive-escape";
        std::filesystem::remove(outside);

        SUBCASE("a member path with \"..\"") {
            auto members = src.members();
            members.push_back({"../cz-archive-escape", "gotcha"});
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "member \"../cz-archive-escape\" at offset"));
            CHECK(contains(detail, "has a \"..\" component"));
            members.back().name = "blobs/../../cz-archive-escape";
            dst.load_error(make_tar(members), errc::invalid_archive);
        }
        SUBCASE("an absolute member path") {
            auto members = src.members();
            members.insert(members.begin(), {outside.string(), "gotcha"});
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "is an absolute path"));
        }
        SUBCASE("a blob that is a symlink") {
            auto members = src.members();
            for (auto& m : members)
                if (m.name == "blobs/sha256/" + img.layer.digest.hex()) {
                    m.type = cz::tar::entry_type::symlink;
                    m.linkname = "/etc/passwd";
                }
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "is a link; blobs must be regular files"));
        }
        SUBCASE("a link that leads out of the archive") {
            auto members = src.members();
            members.push_back({"a/b", "", cz::tar::entry_type::symlink, "../../etc/passwd"});
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "outside the archive"));
        }
        SUBCASE("a member named twice") {
            auto members = src.members();
            members.push_back({"./index.json", "{}"});
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "\"./index.json\""));
            CHECK(contains(detail, "appears twice"));
            // A file, then a directory of the same name.
            members.pop_back();
            members.insert(members.begin(), member("blobs", "x"));
            detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "\"blobs/\" at offset"));
            CHECK(contains(detail, "appears twice"));
        }
        SUBCASE("a device") {
            auto members = src.members();
            members.push_back({"dev", "", cz::tar::entry_type::char_device});
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "is a char"));
        }
        SUBCASE("a blob whose content does not match its name") {
            auto members = src.members();
            for (auto& m : members)
                if (m.name == "blobs/sha256/" + img.layer.digest.hex()) m.data[600] ^= 1;
            auto detail = dst.load_error(make_tar(members), errc::digest_mismatch);
            CHECK(contains(detail, img.layer.digest.hex()));
            CHECK(!dst.cs.contains(img.layer.digest));
        }
        SUBCASE("a JSON blob whose content does not match its name") {
            auto members = src.members();
            for (auto& m : members)
                if (m.name == "blobs/sha256/" + img.config.digest.hex()) m.data.back() = ' ';
            auto detail = dst.load_error(make_tar(members), errc::digest_mismatch);
            CHECK(contains(detail, "-> config " + img.config.digest.str()));
        }
        SUBCASE("a missing layer: the manifest is not stored, nothing is tagged") {
            auto members = src.members();
            std::erase_if(members, [&](const member& m) {
                return m.name == "blobs/sha256/" + img.layer.digest.hex();
            });
            auto detail = dst.load_error(make_tar(members), errc::not_found);
            CHECK(detail == "test.tar: index.json manifests[0] (\"x\") -> layers[0] " +
                                img.layer.digest.str() + ": missing from the archive");
            CHECK(!dst.cs.contains(img.manifest.digest));
        }
        SUBCASE("a manifest over 4 MiB") {
            src.images.untag("x");
            manifest m = parse_manifest(src.cs.read(img.manifest, max_document_size));
            m.annotations["pad"] = std::string(max_document_size, 'p');
            src.images.tag("big", src.cs.put(media_type::oci_manifest, serialize(m)));
            auto detail = dst.load_error(make_tar(src.members()), errc::document_too_large);
            CHECK(contains(detail, "more than the 4194304 allowed"));
        }
        SUBCASE("indexes nested too deep") {
            src.images.untag("x");
            auto d = img.manifest;
            for (int i = 0; i < 10; ++i) {
                image_index outer;
                outer.manifests = {d};
                d = src.cs.put(media_type::oci_index, serialize(outer));
            }
            src.images.tag("deep", d);
            dst.load_error(make_tar(src.members()), errc::index_too_deep);
        }
        SUBCASE("a blob under another algorithm, a blob badly named") {
            auto members = src.members();
            members.push_back({"blobs/sha512/" + std::string(128, 'a'), "x"});
            dst.load_error(make_tar(members), errc::unsupported_digest_algorithm);
            members.back().name = "blobs/sha256/ABC";
            auto detail = dst.load_error(make_tar(members), errc::invalid_archive);
            CHECK(contains(detail, "64 lowercase hex"));
        }
        SUBCASE("no oci-layout, a layout of another version, no index.json, not a tar") {
            auto members = src.members();
            std::erase_if(members, [](const member& m) { return m.name == "oci-layout"; });
            dst.load_error(make_tar(members), errc::invalid_archive);
            members.push_back({"oci-layout", R"({"imageLayoutVersion":"2.0.0"})"});
            dst.load_error(make_tar(members), errc::invalid_layout);
            auto detail = dst.load_error(make_tar({{"hello", "x"}}), errc::invalid_archive);
            CHECK(contains(detail, "neither index.json (an OCI archive) nor manifest.json"));
            std::string junk(1024, 'j');
            cz::memory_source in(cz::as_bytes(junk));
            std::error_code ec;
            std::string why;
            load_archive(dst.images, in, "junk.tar", ec, &why);
            CHECK(ec == cz::tar::errc::bad_checksum);
            CHECK(contains(why, "junk.tar: "));
        }
        CHECK(!std::filesystem::exists(outside));
        CHECK(dst.images.list().empty());
        CHECK(dst.ingest_files() == 0);
    }

    TEST_CASE("archive: docker save (manifest.json): skopeo's schema2 manifest, tags, links") {
        auto base = oci_test::layer_tar("base", "base\n");
        auto top = oci_test::layer_tar("top", "top\n");
        auto base_id = cz::sha256(cz::as_bytes(base));
        auto top_id = cz::sha256(cz::as_bytes(top));
        image_config c;
        c.architecture = "amd64";
        c.os = "linux";
        c.diff_ids = {base_id, top_id, base_id};
        auto config = serialize(c);
        auto config_id = cz::sha256(cz::as_bytes(config));
        // As docker writes it: <id>/layer.tar, the second use of a layer a symlink to the first.
        std::vector<member> members = {
            {"1111/", "", cz::tar::entry_type::directory},
            {"1111/layer.tar", base},
            {"1111/VERSION", "1.0"},
            {"2222/layer.tar", top},
            {"3333/layer.tar", "", cz::tar::entry_type::symlink, "../1111/layer.tar"},
            {config_id.hex() + ".json", config},
            {"manifest.json",
             R"([{"Config":")" + config_id.hex() +
                 R"(.json","RepoTags":["busybox:1","example.com/a/b:2"],)"
                 R"("Layers":["1111/layer.tar","2222/layer.tar","3333/layer.tar"]}])"},
            {"repositories", "{}"},
        };
        target_store dst;
        auto report = dst.load(make_tar(members));
        CHECK(report.format == archive_format::docker);
        REQUIRE(report.tagged.size() == 2);
        CHECK(report.tagged[0].name == "docker.io/library/busybox:1");
        CHECK(report.tagged[1].name == "example.com/a/b:2");
        auto d = dst.images.lookup("busybox:1");
        CHECK(d.media_type == media_type::docker_manifest);
        auto layer = [](const cz::digest& id, std::size_t size) {
            return fmt::format(R"({{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.)"
                               R"(gzip","size":{},"digest":"{}"}})",
                               size, id.str());
        };
        auto expected = fmt::format(
            R"({{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+)"
            R"(json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json",)"
            R"("size":{},"digest":"{}"}},"layers":[{},{},{}]}})",
            config.size(), config_id.str(), layer(base_id, base.size()), layer(top_id, top.size()),
            layer(base_id, base.size()));
        CHECK(dst.cs.read(d, max_document_size) == expected);
        std::error_code ec;
        CHECK(dst.images.verify(ec).ok());
        CHECK(dst.ingest_files() == 0);
    }

    TEST_CASE("archive: docker save with a gzip layer stores it decompressed, named by diff_id") {
        auto tar = oci_test::layer_tar("f", std::string(100000, 'z'));
        cz::byte_buffer gz;
        {
            cz::buffer_sink sink(gz);
            cz::compressing_sink enc(sink, cz::compression::gzip);
            std::error_code ec;
            enc.write(cz::as_bytes(tar), ec);
            enc.finish(ec);
            REQUIRE(!ec);
        }
        image_config c;
        c.architecture = "amd64";
        c.os = "linux";
        c.diff_ids = {cz::sha256(cz::as_bytes(tar))};
        auto config = serialize(c);
        std::string manifest_json =
            R"([{"Config":"c.json","RepoTags":["gz:1"],"Layers":["l.tar.gz"]}])";
        target_store dst;
        dst.load(make_tar({{"c.json", config},
                           {"l.tar.gz", cz::to_string(gz)},
                           {"manifest.json", manifest_json}}));
        auto m = parse_manifest(dst.cs.read(dst.images.lookup("gz:1"), max_document_size));
        REQUIRE(m.layers.size() == 1);
        CHECK(m.layers[0].digest == c.diff_ids[0]);
        CHECK(m.layers[0].size == std::int64_t(tar.size()));
        CHECK(dst.cs.read(m.layers[0], 1 << 20) == tar);

        // A layer that is neither the diff_id's tar nor compressed is refused.
        c.diff_ids = {cz::sha256(cz::as_bytes(std::string("other")))};
        auto detail = dst.load_error(
            make_tar(
                {{"c.json", serialize(c)}, {"l.tar.gz", tar}, {"manifest.json", manifest_json}}),
            errc::digest_mismatch);
        CHECK(contains(detail, "manifest.json [0].Layers[0] \"l.tar.gz\": the layer hashes to"));
    }

    TEST_CASE(
        "archive: docker 25's save (an OCI layout and manifest.json) keeps docker's digests") {
        source_store src;
        auto img = oci_test::put_image(src.cs, "d25\n");
        // docker writes the full name in io.containerd.image.name and only the tag in ref.name.
        auto entry = img.manifest;
        entry.annotations["io.containerd.image.name"] = "docker.io/library/d25:latest";
        entry.annotations["org.opencontainers.image.ref.name"] = "latest";
        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        ix.manifests = {entry};
        auto members = src.members();
        for (auto& m : members)
            if (m.name == "index.json") m.data = serialize(ix);
        members.push_back(
            {"manifest.json", R"([{"Config":"blobs/sha256/)" + img.config.digest.hex() +
                                  R"(","RepoTags":["d25:latest"],"Layers":["blobs/sha256/)" +
                                  img.layer.digest.hex() + R"("]}])"});
        target_store dst;
        auto report = dst.load(make_tar(members));
        CHECK(report.format == archive_format::docker);
        REQUIRE(report.tagged.size() == 1);
        CHECK(report.tagged[0].name == "docker.io/library/d25:latest");
        CHECK(dst.images.lookup("d25").digest == img.manifest.digest);
    }

    TEST_CASE("archive: hostile docker-save archives end in clear errors") {
        image_config c;
        c.architecture = "amd64";
        c.os = "linux";
        auto tar = oci_test::layer_tar("f", "f\n");
        c.diff_ids = {cz::sha256(cz::as_bytes(tar))};
        auto config = serialize(c);
        auto with_manifest = [&](const std::string& manifest_json) {
            return make_tar({{"c.json", config}, {"l.tar", tar}, {"manifest.json", manifest_json}});
        };
        target_store dst;
        auto outside = dst.dir.path.parent_path() / "cz-docker-escape";
        std::filesystem::remove(outside);

        SUBCASE("a layer outside the archive") {
            auto detail = dst.load_error(
                with_manifest(R"([{"Config":"c.json","Layers":["../cz-docker-escape"]}])"),
                errc::invalid_archive);
            CHECK(contains(detail, "manifest.json [0].Layers[0]: \"../cz-docker-escape\" has a "
                                   "\"..\" component: it names a file outside the archive"));
            detail = dst.load_error(with_manifest(R"([{"Config":"/etc/passwd","Layers":[]}])"),
                                    errc::invalid_archive);
            CHECK(contains(detail, "[0].Config: \"/etc/passwd\" is an absolute path"));
        }
        SUBCASE("a missing file") {
            auto detail =
                dst.load_error(with_manifest(R"([{"Config":"c.json","Layers":["nope.tar"]}])"),
                               errc::invalid_archive);
            CHECK(contains(detail, "[0].Layers[0]: \"nope.tar\" is not a file in the archive"));
        }
        SUBCASE("a symlink to a link, or to nothing") {
            auto detail = dst.load_error(
                make_tar({{"c.json", config},
                          {"a", "", cz::tar::entry_type::symlink, "b"},
                          {"b", "", cz::tar::entry_type::symlink, "l.tar"},
                          {"l.tar", tar},
                          {"manifest.json", R"([{"Config":"c.json","Layers":["a"]}])"}}),
                errc::invalid_archive);
            CHECK(contains(detail, "\"a\" is not a file in the archive"));
        }
        SUBCASE("layers and diff_ids that disagree") {
            auto detail =
                dst.load_error(with_manifest(R"([{"Config":"c.json","Layers":["l.tar","l.tar"]}])"),
                               errc::invalid_archive);
            CHECK(contains(detail, "2 layers, but the config's rootfs.diff_ids has 1"));
        }
        SUBCASE("a bad manifest.json, a bad tag, a bad config") {
            auto detail =
                dst.load_error(with_manifest(R"({"Config":"c.json"})"), errc::invalid_json);
            CHECK(contains(detail, "manifest.json: expected a JSON array"));
            detail = dst.load_error(with_manifest(R"([{"Config":"c.json","Layers":[7]}])"),
                                    errc::invalid_field);
            CHECK(contains(detail, "manifest.json: [0].Layers[0]: must be a string"));
            detail = dst.load_error(
                with_manifest(R"([{"Config":"c.json","RepoTags":["UPPER:1"],"Layers":["l.tar"]}])"),
                errc::invalid_reference);
            CHECK(contains(detail, "[0].RepoTags[0]: \"UPPER:1\""));
            detail = dst.load_error(with_manifest(R"([{"Config":"l.tar","Layers":["l.tar"]}])"),
                                    errc::invalid_json);
            CHECK(contains(detail, "[0].Config: "));
        }
        CHECK(!std::filesystem::exists(outside));
        CHECK(dst.images.list().empty());
        CHECK(dst.ingest_files() == 0);
    }

    TEST_CASE("archive: save writes OCI and docker-save archives that load back the same") {
        source_store src;
        auto a = oci_test::put_image(src.cs, "a\n");
        // A gzip layer: the docker-save archive holds it decompressed.
        auto tar = oci_test::layer_tar("g", "gzipped\n");
        cz::byte_buffer gz;
        {
            cz::buffer_sink sink(gz);
            cz::compressing_sink enc(sink, cz::compression::gzip);
            std::error_code ec;
            enc.write(cz::as_bytes(tar), ec);
            enc.finish(ec);
            REQUIRE(!ec);
        }
        auto layer = src.cs.put(media_type::oci_layer_gzip, cz::to_string(gz));
        image_config c;
        c.architecture = cz::oci::host_platform().architecture;
        c.os = "linux";
        c.diff_ids = {cz::sha256(cz::as_bytes(tar))};
        manifest m;
        m.media_type = std::string(media_type::oci_manifest);
        m.config = src.cs.put(media_type::oci_config, serialize(c));
        m.layers = {layer};
        auto g = src.cs.put(media_type::oci_manifest, serialize(m));
        src.images.tag("docker.io/library/a:1", a.manifest);
        src.images.tag("docker.io/library/a:also", a.manifest);
        src.images.tag("docker.io/library/g:1", g);
        temp_dir out;
        std::vector<std::string> refs = {"a:1", "a:also", "g:1"};

        SUBCASE("OCI") {
            save_archive(src.images, refs, out.path / "oci.tar", archive_format::oci);
            target_store dst;
            auto report = load_archive(dst.images, out.path / "oci.tar");
            CHECK(report.format == archive_format::oci);
            REQUIRE(report.tagged.size() == 3);
            CHECK(dst.images.lookup("a:1").digest == a.manifest.digest);
            CHECK(dst.images.lookup("a:also").digest == a.manifest.digest);
            CHECK(dst.images.lookup("g:1").digest == g.digest);
            CHECK(dst.cs.read(layer, 1 << 20) == cz::to_string(gz));
            std::error_code ec;
            CHECK(dst.images.verify(ec).ok());
        }
        SUBCASE("docker") {
            save_archive(src.images, refs, out.path / "docker.tar", archive_format::docker);
            // One item per image, the image's two names together, layers as plain tars.
            std::string manifest_json;
            auto bytes = read_file(out.path / "docker.tar");
            cz::tar::reader r(cz::as_bytes(bytes));
            std::vector<std::string> names;
            while (const auto* e = r.next()) {
                names.push_back(e->name);
                if (e->name == "manifest.json") {
                    cz::byte_buffer buf;
                    cz::buffer_sink sink(buf);
                    std::error_code ec;
                    cz::copy(r, sink, ec);
                    manifest_json = cz::to_string(buf);
                }
            }
            CHECK(names.back() == "manifest.json");
            CHECK(std::count(names.begin(), names.end(), c.diff_ids[0].hex() + ".tar") == 1);
            std::error_code pec;
            auto items = parse_docker_manifest(manifest_json, pec);
            REQUIRE(!pec);
            REQUIRE(items.size() == 2);
            CHECK(items[0].repo_tags == std::vector<std::string>{"a:1", "a:also"});
            CHECK(items[1].repo_tags == std::vector<std::string>{"g:1"});
            CHECK(items[1].layers == std::vector<std::string>{c.diff_ids[0].hex() + ".tar"});

            target_store dst;
            auto report = load_archive(dst.images, out.path / "docker.tar");
            CHECK(report.format == archive_format::docker);
            REQUIRE(report.tagged.size() == 3);
            auto loaded = parse_manifest(dst.cs.read(dst.images.lookup("g:1"), max_document_size));
            REQUIRE(loaded.layers.size() == 1);
            CHECK(loaded.layers[0].digest == c.diff_ids[0]);
            CHECK(dst.cs.read(loaded.layers[0], 1 << 20) == tar);
            CHECK(dst.images.lookup("a:1").digest == dst.images.lookup("a:also").digest);
        }
        SUBCASE("an unknown reference, a damaged blob: an error, and no file") {
            std::error_code ec;
            std::string detail;
            save_archive(src.images, {"a:1", "nope:1"}, out.path / "x.tar", archive_format::oci, {},
                         ec, &detail);
            CHECK(ec == errc::not_found);
            CHECK(contains(detail, "nope:1"));
            std::filesystem::permissions(src.cs.blob_path(a.layer.digest),
                                         std::filesystem::perms::owner_write,
                                         std::filesystem::perm_options::add);
            auto bytes = read_file(src.cs.blob_path(a.layer.digest));
            bytes[600] ^= 1;
            write_file(src.cs.blob_path(a.layer.digest), bytes);
            for (auto format : {archive_format::oci, archive_format::docker}) {
                save_archive(src.images, {"a:1"}, out.path / "x.tar", format, {}, ec, &detail);
                CHECK(ec == errc::digest_mismatch);
                CHECK(contains(detail, a.layer.digest.str()));
            }
            CHECK(std::filesystem::is_empty(out.path));
        }
    }

    TEST_CASE("archive: import_rootfs makes a one-layer gzip image from a root filesystem tar") {
        auto rootfs = make_tar({{"bin/", "", cz::tar::entry_type::directory},
                                {"bin/sh", "#!/bin/true\n"},
                                {"etc/hostname", "cz\n"},
                                {"bin/ash", "", cz::tar::entry_type::symlink, "sh"}});
        target_store dst;
        rootfs_options options;
        options.image_platform = parse_platform("linux/arm64");
        options.created = "2026-01-02T03:04:05Z";
        options.config.cmd = std::vector<std::string>{"/bin/sh"};
        cz::memory_source src(cz::as_bytes(rootfs));
        auto top = import_rootfs(dst.images, src, "myroot:1", options);
        CHECK(dst.images.lookup("docker.io/library/myroot:1").digest == top.digest);
        auto m = parse_manifest(dst.cs.read(top, max_document_size));
        CHECK(m.media_type == media_type::oci_manifest);
        REQUIRE(m.layers.size() == 1);
        CHECK(m.layers[0].media_type == media_type::oci_layer_gzip);
        auto blob = dst.cs.read(m.layers[0], 1 << 20);
        CHECK(cz::detect_compression(cz::as_bytes(blob)) == cz::compression::gzip);
        cz::memory_source packed(cz::as_bytes(blob));
        cz::decompressing_source unpacked(packed);
        std::error_code ec;
        CHECK(cz::to_string(cz::read_all(unpacked, 1 << 20, ec)) == rootfs);
        auto c = parse_image_config(dst.cs.read(m.config, max_document_size));
        CHECK(c.architecture == "arm64");
        CHECK(c.variant == "v8");
        CHECK(c.created == "2026-01-02T03:04:05Z");
        CHECK(c.diff_ids == std::vector<cz::digest>{cz::sha256(cz::as_bytes(rootfs))});
        REQUIRE(c.history.size() == 1);
        CHECK(c.history[0].created_by == "cz image import");
        REQUIRE(c.config.cmd);
        CHECK(*c.config.cmd == std::vector<std::string>{"/bin/sh"});
        CHECK(dst.images.verify(ec).ok());

        SUBCASE("a gzip-compressed rootfs is read through, the same image comes out") {
            cz::byte_buffer gz;
            cz::buffer_sink sink(gz);
            cz::compressing_sink enc(sink, cz::compression::gzip);
            enc.write(cz::as_bytes(rootfs), ec);
            enc.finish(ec);
            cz::memory_source gz_src(gz);
            CHECK(import_rootfs(dst.images, gz_src, "myroot:2", options).digest == top.digest);
        }
        SUBCASE("not a tar, a bad name: errors, nothing tagged, no ingest left") {
            std::string junk(2048, 'j');
            cz::memory_source junk_src(cz::as_bytes(junk));
            std::string detail;
            import_rootfs(dst.images, junk_src, "junk:1", options, ec, &detail);
            CHECK(ec == cz::tar::errc::bad_checksum);
            CHECK(contains(detail, "rootfs: tar header at offset 0"));
            cz::memory_source again(cz::as_bytes(rootfs));
            import_rootfs(dst.images, again, "Bad Name", options, ec, &detail);
            CHECK(ec == errc::invalid_reference);
            CHECK(dst.images.list().size() == 1);
            CHECK(dst.ingest_files() == 0);
        }
    }

} // TEST_SUITE
