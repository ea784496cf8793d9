// cz/container's caches, without a VM: the image's ext4 root filesystem (built once per manifest,
// never half-written), cz-init's initramfs, and where cz-init is found.
#include <cz/container/guest.hpp>
#include <cz/container/rootfs.hpp>

#include <cz/core/stream.hpp>
#include <cz/ext4/reader.hpp>
#include <cz/oci/archive.hpp>
#include <cz/oci/error.hpp>
#include <cz/oci/store.hpp>
#include <cz/tar/writer.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ct = cz::container;
namespace fs = std::filesystem;

namespace {

// A store under `root` with one image, `name`, whose single layer is a tar made by `make_tar`
// from a tree holding `files` (path -> contents).
struct store_with_image {
    explicit store_with_image(const fs::path& root, const std::string& tar_text_file = "hello")
        : content(cz::oci::content_store::open(root)), images(content) {
        auto tree = root / "tree";
        fs::create_directories(tree / "etc");
        cz_test::write_file(tree / "etc" / "greeting", tar_text_file);
        auto tar = root / "layer.tar";
        cz_test::sh_ok("tar -C " + cz_test::quote(tree.string()) + " -cf " +
                       cz_test::quote(tar.string()) + " .");
        manifest_descriptor = cz::oci::import_rootfs(images, tar, "app:1");
        manifest = cz::oci::parse_manifest(content.read(manifest_descriptor, 1 << 20));
    }
    cz::oci::content_store content;
    cz::oci::image_store images;
    cz::oci::descriptor manifest_descriptor;
    cz::oci::manifest manifest;
};

std::string read_from_image(const fs::path& image, const std::string& path) {
    auto r = cz::ext4::reader::open(image.string());
    std::error_code ec;
    auto ino = r.lookup(path, ec);
    REQUIRE_FALSE(ec);
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    r.read_file(ino, sink, ec);
    REQUIRE_FALSE(ec);
    return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

} // namespace

TEST_SUITE("container rootfs") {

    TEST_CASE("the root filesystem is built once per manifest, then comes from the cache") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        std::error_code ec;
        std::string why;
        std::size_t layers_seen = 0;
        ct::rootfs_options opts;
        opts.on_layer = [&](std::size_t i, std::size_t n) {
            CHECK(i == layers_seen);
            CHECK(n == 1);
            ++layers_seen;
        };
        auto r =
            ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts, ec, &why);
        INFO(why);
        REQUIRE_FALSE(ec);
        CHECK(r.built);
        CHECK(layers_seen == 1);
        CHECK(r.path == ct::rootfs_path(root.path, s.manifest_descriptor.digest));
        CHECK(r.path.filename().string() == s.manifest_descriptor.digest.hex() + ".v" +
                                                std::to_string(ct::rootfs_format_version) +
                                                ".ext4");
        CHECK(read_from_image(r.path, "/etc/greeting") == "hello");
        cz_test::sh_ok("e2fsck -fn " + cz_test::quote(r.path.string()) + " >/dev/null 2>&1");

        layers_seen = 0;
        auto again =
            ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts, ec, &why);
        REQUIRE_FALSE(ec);
        CHECK_FALSE(again.built);
        CHECK(layers_seen == 0);
        CHECK(again.path == r.path);
        // Nothing but the image in the cache directory.
        CHECK(std::distance(fs::directory_iterator(r.path.parent_path()),
                            fs::directory_iterator()) == 1);
    }

    TEST_CASE("a layer missing from the store fails, naming it, and leaves no image") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        const auto& layer = s.manifest.layers.at(0).digest;
        fs::remove(s.content.blob_path(layer));
        std::error_code ec;
        std::string why;
        ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, {}, ec, &why);
        CHECK(ec);
        CHECK(why.find(layer.str()) != std::string::npos);
        CHECK_FALSE(fs::exists(ct::rootfs_path(root.path, s.manifest_descriptor.digest)));
        CHECK(fs::is_empty(root.path / "rootfs"));
    }

    TEST_CASE("a layer that is no tar fails, naming it, and leaves no image") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        // Replace the layer's bytes by garbage of a valid gzip stream: the applier refuses them.
        const auto& layer = s.manifest.layers.at(0).digest;
        auto path = s.content.blob_path(layer);
        fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
        cz_test::sh_ok("head -c 5000 /dev/urandom | gzip > " + cz_test::quote(path.string()));
        std::error_code ec;
        std::string why;
        ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, {}, ec, &why);
        CHECK(ec);
        CHECK(why.find("layer " + layer.str()) != std::string::npos);
        CHECK(fs::is_empty(root.path / "rootfs"));
    }

    TEST_CASE("open_layer: layers come from the reader, confirmed once the image is complete") {
        // A reader that hands the blob over in 1000-byte pieces and records when it is asked to
        // confirm; `refuse` makes the confirmation fail, as a layer the pull gave up on does.
        struct piecewise_reader : ct::layer_reader {
            piecewise_reader(const cz::oci::content_store& c, const cz::digest& d,
                             std::vector<std::string>& log, bool refuse)
                : fd(c.open_blob(d, open_ec)), log(log), refuse(refuse) {
                REQUIRE_FALSE(open_ec);
            }
            std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) override {
                ++reads;
                return cz::fd_source(fd.get()).read_some(
                    buf.first(std::min<std::size_t>(buf.size(), 1000)), ec);
            }
            void confirm(std::error_code& ec) override {
                log.push_back("confirm after " + std::to_string(reads) + " reads");
                ec = refuse ? make_error_code(cz::oci::errc::digest_mismatch) : std::error_code{};
            }
            std::error_code open_ec;
            cz::unique_fd fd;
            std::vector<std::string>& log;
            bool refuse;
            int reads = 0;
        };
        cz_test::temp_dir root;
        store_with_image s(root.path, std::string(100000, 'x'));
        for (bool refuse : {false, true}) {
            CAPTURE(refuse);
            std::vector<std::string> log;
            ct::rootfs_options opts;
            opts.on_layer = [&](std::size_t i, std::size_t) {
                log.push_back("layer " + std::to_string(i));
            };
            opts.open_layer = [&](const cz::oci::descriptor& layer, std::error_code& ec) {
                ec.clear();
                return std::unique_ptr<ct::layer_reader>(
                    new piecewise_reader(s.content, layer.digest, log, refuse));
            };
            std::error_code ec;
            std::string why;
            auto r = ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts,
                                       ec, &why);
            REQUIRE(log.size() == 2);
            CHECK(log[0] == "layer 0");
            CHECK(log[1].find("confirm after ") == 0);
            CHECK(log[1] != "confirm after 0 reads");
            if (!refuse) {
                REQUIRE_FALSE(ec);
                CHECK(read_from_image(r.path, "/etc/greeting") == std::string(100000, 'x'));
                fs::remove(r.path);
            } else {
                CHECK(ec == cz::oci::errc::digest_mismatch);
                CHECK(why.find("layer " + s.manifest.layers[0].digest.str()) == 0);
                // Nothing left behind: the image is not trusted.
                CHECK(fs::is_empty(r.path.parent_path()));
            }
        }
    }

    TEST_CASE("defer_publish: the image is complete under its temporary name until published") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        std::error_code ec;
        std::string why;
        ct::rootfs_options opts;
        opts.defer_publish = true;
        auto r =
            ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts, ec, &why);
        INFO(why);
        REQUIRE_FALSE(ec);
        CHECK(r.built);
        const auto name = ct::rootfs_path(root.path, s.manifest_descriptor.digest);
        CHECK(r.pending_name == name);
        CHECK(r.path != name);
        CHECK(r.path.parent_path() == name.parent_path());
        CHECK_FALSE(fs::exists(name)); // not found by another run yet
        CHECK(read_from_image(r.path, "/etc/greeting") == "hello");

        const auto temporary = r.path;
        ct::publish_rootfs(r, ec);
        REQUIRE_FALSE(ec);
        CHECK(r.path == name);
        CHECK(r.pending_name.empty());
        CHECK_FALSE(fs::exists(temporary));
        CHECK(read_from_image(name, "/etc/greeting") == "hello");
        ct::publish_rootfs(r, ec); // nothing pending: nothing to do
        CHECK_FALSE(ec);
        CHECK(r.path == name);

        // Found in the cache now: nothing pending, nothing built.
        auto again =
            ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts, ec, &why);
        REQUIRE_FALSE(ec);
        CHECK_FALSE(again.built);
        CHECK(again.pending_name.empty());
        CHECK(again.path == name);
    }

    TEST_CASE("defer_publish: a publish that cannot rename removes the temporary image") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        std::error_code ec;
        ct::rootfs_options opts;
        opts.defer_publish = true;
        auto r = ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, opts, ec);
        REQUIRE_FALSE(ec);
        const auto temporary = r.path;
        // The final name is taken by a directory that is not empty: rename(2) refuses.
        fs::create_directories(r.pending_name / "in-the-way");
        ct::publish_rootfs(r, ec);
        CHECK(ec);
        CHECK_FALSE(fs::exists(temporary));
    }

    TEST_CASE("an image a killed run left half-written is removed; one being written is not") {
        cz_test::temp_dir root;
        store_with_image s(root.path);
        fs::create_directories(root.path / "rootfs");
        // No process has pid 2^22 + 1 (above the kernel's pid_max limit); pid 1 always exists.
        auto dead = root.path / "rootfs" / "x.v2.ext4.tmp-4194305-7";
        auto alive = root.path / "rootfs" / "x.v2.ext4.tmp-1-7";
        cz_test::write_file(dead, "partial");
        cz_test::write_file(alive, "partial");
        std::error_code ec;
        ct::ensure_rootfs(s.content, s.manifest, s.manifest_descriptor.digest, {}, ec);
        REQUIRE_FALSE(ec);
        CHECK_FALSE(fs::exists(dead));
        CHECK(fs::exists(alive));
    }
}

TEST_SUITE("container guest files") {

    TEST_CASE("cz-init: the path given, else $CZ_INIT; not an executable file is an error") {
        cz_test::temp_dir dir;
        auto init = dir.path / "my-init";
        cz_test::write_file(init, "#!/bin/sh\n");
        std::error_code ec;
        ct::find_init(init, ec);
        CHECK(ec == ct::errc::init_not_found); // not executable yet
        ::chmod(init.c_str(), 0755);
        CHECK(ct::find_init(init, ec) == init);
        CHECK_FALSE(ec);
        ::setenv("CZ_INIT", init.c_str(), 1);
        CHECK(ct::find_init({}, ec) == init);
        ::setenv("CZ_INIT", (dir.path / "missing").c_str(), 1);
        ct::find_init({}, ec);
        CHECK(ec == ct::errc::init_not_found);
        ::unsetenv("CZ_INIT");
    }

    TEST_CASE("the initramfs is cached by cz-init's content and the kernel") {
        cz_test::temp_dir root;
        auto init = root.path / "init";
        cz_test::write_file(init, "#!/bin/sh\necho one\n");
        ::chmod(init.c_str(), 0755);
        cz::vm::kernel_info kernel;
        kernel.version = "6.1.0-test";
        std::error_code ec;
        auto first = ct::ensure_initramfs(root.path, init, kernel, ec);
        REQUIRE_FALSE(ec);
        CHECK(fs::is_regular_file(first));
        CHECK(first.parent_path() == root.path / "initramfs");
        // An uncompressed newc archive (it boots faster under TCG), only the file itself there.
        CHECK(cz_test::read_file(first).substr(0, 6) == "070701");
        CHECK(std::distance(fs::directory_iterator(first.parent_path()),
                            fs::directory_iterator()) == 1);
        auto written = fs::last_write_time(first);
        CHECK(ct::ensure_initramfs(root.path, init, kernel, ec) == first);
        CHECK(fs::last_write_time(first) == written); // not rebuilt

        kernel.version = "6.1.0-other";
        auto other_kernel = ct::ensure_initramfs(root.path, init, kernel, ec);
        CHECK(other_kernel != first);
        cz_test::write_file(init, "#!/bin/sh\necho two\n");
        auto other_init = ct::ensure_initramfs(root.path, init, kernel, ec);
        CHECK(other_init != other_kernel);
        CHECK(fs::is_regular_file(other_init));

        ct::ensure_initramfs(root.path, root.path / "missing", kernel, ec);
        CHECK(ec);
    }

    TEST_CASE("the kernel: a file given, a cached flavour, or an error saying what is missing") {
        cz_test::temp_dir root;
        std::error_code ec;
        ct::find_container_kernel(root.path, "", ec);
        CHECK(ec == cz::vm::errc::kernel_not_found);
        ct::find_container_kernel(root.path, "minimal", ec);
        CHECK(ec == cz::vm::errc::kernel_not_found);
        ct::find_container_kernel(root.path, (root.path / "nothing").string(), ec);
        CHECK(ec == cz::vm::errc::kernel_not_found);
        auto file = root.path / "bzImage";
        cz_test::write_file(file, "not really a kernel");
        auto k = ct::find_container_kernel(root.path, file.string(), ec);
        CHECK_FALSE(ec);
        CHECK(k.image == file);
    }
}
