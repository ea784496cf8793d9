// cz/oci/archive.hpp: loading OCI archives and docker-save tars (well-formed and hostile).
#include <cz/oci/archive.hpp>

#include "image.hpp"
#include "support/support.hpp"

#include <cz/core/compression.hpp>
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
            CHECK(contains(detail, "no index.json"));
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

} // TEST_SUITE
