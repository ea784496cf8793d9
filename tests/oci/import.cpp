// cz/oci/import.hpp: importing OCI image layouts, well-formed (skopeo's) and hostile.
#include <cz/oci/import.hpp>

#include "image.hpp"
#include "support/support.hpp"

#include <nlohmann/json.hpp>

using namespace cz::oci;
using cz_test::read_file;
using cz_test::temp_dir;
using cz_test::write_file;

namespace {

// A second store used as the source layout (its content/ is an OCI image layout).
struct source_layout {
    temp_dir dir{"cz-oci-src"};
    content_store cs = content_store::open(dir.path);
    std::filesystem::path layout() const { return dir.path / "content"; }
    std::filesystem::path blob(const descriptor& d) const { return cs.blob_path(d.digest); }
    void make_writable(const descriptor& d) const {
        std::filesystem::permissions(blob(d), std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add);
    }
};

std::string import_error(const image_store& images, const std::filesystem::path& layout,
                         std::error_code want) {
    std::error_code ec;
    std::string detail;
    import_layout(images, layout, ec, &detail);
    CHECK_MESSAGE(ec == want, ec.message(), ": ", detail);
    return detail;
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("import: an OCI layout's images, tagged by their ref.name, children first") {
        source_layout src;
        auto a = oci_test::put_image(src.cs, "a\n");
        auto b = oci_test::put_image(src.cs, "b\n", "arm64", "v8");
        image_index ix;
        ix.manifests = {a.manifest, b.manifest};
        ix.manifests[0].platform = platform{"linux", "amd64", "", "", {}};
        ix.manifests[1].platform = platform{"linux", "arm64", "v8", "", {}};
        auto multi = src.cs.put(media_type::oci_index, serialize(ix));
        image_store(src.cs).tag("docker.io/library/a:1", a.manifest);
        image_store(src.cs).tag("multi", multi);
        // An entry without a name is imported but not tagged.
        auto loose = oci_test::put_image(src.cs, "loose\n");
        auto index_json = nlohmann::json::parse(read_file(src.layout() / "index.json"));
        index_json["manifests"].push_back(to_json(loose.manifest));
        write_file(src.layout() / "index.json", index_json.dump());

        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto report = import_layout(images, src.layout());
        REQUIRE(report.tagged.size() == 2);
        CHECK(report.tagged[0].name == "docker.io/library/a:1");
        CHECK(report.tagged[1].name == "multi");
        CHECK(report.untagged == 1);
        CHECK(report.blobs == 3 * 3 + 1);
        CHECK(images.lookup("a:1").digest == a.manifest.digest);
        CHECK(images.resolve(images.lookup("multi"), parse_platform("linux/arm64")).digest ==
              b.manifest.digest);
        CHECK(cs.contains(loose.layer.digest));
        std::error_code ec;
        CHECK(images.verify(ec).ok());
        // Importing again changes nothing.
        auto again = import_layout(images, src.layout());
        CHECK(again.tagged.size() == 2);
        CHECK(images.list().size() == 2);
    }

    TEST_CASE("import: hostile layouts end in clear errors, and nothing half-imported is tagged") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);

        SUBCASE("a missing layer") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            image_store(src.cs).tag("x", img.manifest);
            std::filesystem::remove(src.blob(img.layer));
            auto detail = import_error(images, src.layout(), errc::not_found);
            CHECK(detail == "index.json manifests[0] (\"x\") -> layers[0] " +
                                img.layer.digest.str() + ": missing from the layout");
            CHECK(images.list().empty());
            CHECK(
                !cs.contains(img.manifest.digest)); // the parent never goes in before its children
        }
        SUBCASE("a blob whose content does not match its name") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            image_store(src.cs).tag("x", img.manifest);
            src.make_writable(img.layer);
            auto bytes = read_file(src.blob(img.layer));
            bytes[600] ^= 0x20;
            write_file(src.blob(img.layer), bytes);
            auto detail = import_error(images, src.layout(), errc::digest_mismatch);
            CHECK(detail.find("-> layers[0]") != std::string::npos);
            CHECK(images.list().empty());
            CHECK(!cs.contains(img.layer.digest));
            std::error_code ec;
            CHECK(images.verify(ec).ok());
        }
        SUBCASE("a blob that is a symlink to a file outside the layout") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            image_store(src.cs).tag("x", img.manifest);
            // Beside the layout (dir/content), in this test's own directory: never a shared name
            // in /tmp (the separately compiled copy of this test runs at the same time).
            auto outside = src.dir.path / "outside";
            std::filesystem::copy_file(src.blob(img.config), outside);
            std::filesystem::remove(src.blob(img.config));
            std::filesystem::create_symlink(outside, src.blob(img.config));
            auto detail = import_error(images, src.layout(), errc::invalid_layout);
            CHECK(detail.find("-> config") != std::string::npos);
            CHECK(detail.find("symbolic link") != std::string::npos);
            std::filesystem::remove(outside);
        }
        SUBCASE("a manifest over 4 MiB") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            manifest m = parse_manifest(src.cs.read(img.manifest, max_document_size));
            m.annotations["pad"] = std::string(max_document_size, 'p');
            auto big = src.cs.put(media_type::oci_manifest, serialize(m));
            image_store(src.cs).tag("big", big);
            auto detail = import_error(images, src.layout(), errc::document_too_large);
            CHECK(detail.find("more than the 4194304 allowed") != std::string::npos);
        }
        SUBCASE("a descriptor whose size lies") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            auto wrong = img.manifest;
            wrong.size += 1;
            auto index_json = nlohmann::json::parse(read_file(src.layout() / "index.json"));
            index_json["manifests"].push_back(to_json(wrong));
            write_file(src.layout() / "index.json", index_json.dump());
            import_error(images, src.layout(), errc::size_mismatch);
        }
        SUBCASE("indexes nested too deep") {
            source_layout src;
            auto img = oci_test::put_image(src.cs, "x\n");
            auto d = img.manifest;
            for (int i = 0; i < 10; ++i) {
                image_index outer;
                outer.manifests = {d};
                d = src.cs.put(media_type::oci_index, serialize(outer));
            }
            image_store(src.cs).tag("deep", d);
            import_error(images, src.layout(), errc::index_too_deep);
        }
        SUBCASE("not a layout") {
            temp_dir empty;
            std::error_code ec;
            import_layout(images, empty.path, ec);
            CHECK(ec == std::errc::no_such_file_or_directory);
            write_file(empty.path / "oci-layout", R"({"imageLayoutVersion":"9"})");
            import_error(images, empty.path, errc::invalid_layout);
            write_file(empty.path / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
            write_file(empty.path / "index.json",
                       R"({"schemaVersion":2,"manifests":[{"digest":"x"}]})");
            auto detail = import_error(images, empty.path, errc::invalid_field);
            CHECK(detail.find("manifests[0].mediaType: missing") != std::string::npos);
        }
    }

} // TEST_SUITE
