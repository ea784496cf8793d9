// The small programs in examples/, run against the real tools: GNU tar lists archives as
// tar_list does; e2fsck passes what ext4_from_layers builds and debugfs reads the layers' files
// back out of it; ext4_cat prints what the layers hold.
#include "support/support.hpp"

#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

using namespace cz_test;

namespace {

// A program built from examples/, when the build has examples (meson passes CZ_BUILD_ROOT).
std::string example(const char* name) {
    const char* root = std::getenv("CZ_BUILD_ROOT");
    REQUIRE_MESSAGE(root, "CZ_BUILD_ROOT is not set (run the tests through meson test)");
    std::string path = std::string(root) + "/examples/" + name;
    REQUIRE_MESSAGE(::access(path.c_str(), X_OK) == 0, path, " is missing");
    return path;
}

// A tree with what archives and images carry: modes with setuid and sticky bits, a hard link, a
// symlink, a long name, a name with a space, a sparse file, an empty directory.
void make_tree(const std::string& dir) {
    std::string long_name(120, 'n');
    sh_ok("set -e; mkdir -p " + quote(dir) + " && cd " + quote(dir) +
          " && mkdir -p etc bin empty sticky deep/" + long_name +
          " && printf 'box\\n' > etc/hostname && printf 'gone\\n' > etc/gone"
          " && head -c 200000 /dev/urandom > bin/tool && chmod 4755 bin/tool"
          " && ln bin/tool bin/tool-link && ln -s ../etc/hostname bin/host"
          " && chmod 1777 sticky && chmod 0600 etc/gone && printf 'x' > 'with space'"
          " && printf 'deep\\n' > deep/" +
          long_name +
          "/file"
          " && truncate -s 64M sparse && printf 'middle' | dd of=sparse bs=1 seek=10485760"
          " conv=notrunc status=none");
}

} // namespace

TEST_SUITE("examples") {

    TEST_CASE("tar_list lists archives as GNU tar -tvf does") {
        if (!have("tar")) CZ_SKIP("GNU tar is not installed");
        const std::string tar_list = example("tar_list");
        temp_dir tmp;
        make_tree(tmp / "tree");
        std::string tree = quote(tmp / "tree");
        sh_ok("tar --format=gnu --sparse -cf " + quote(tmp / "gnu.tar") + " -C " + tree + " .");
        sh_ok("tar --format=posix --sparse -cf " + quote(tmp / "pax.tar") + " -C " + tree + " .");
        sh_ok("gzip -kn " + quote(tmp / "pax.tar"));
        std::vector<std::string> archives = {"gnu.tar", "pax.tar", "pax.tar.gz"};
        if (have("zstd")) {
            sh_ok("zstd -q " + quote(tmp / "gnu.tar"));
            archives.push_back("gnu.tar.zst");
        }
        for (const auto& name : archives) {
            CAPTURE(name);
            // Same columns, same values; tar pads its columns to other widths.
            auto listing = [&](const std::string& tool) {
                return sh_ok("TZ=UTC " + tool + " " + quote(tmp / name) + " | tr -s ' '");
            };
            std::string theirs = listing("tar -tvf");
            CHECK(theirs.find("with space") != std::string::npos);
            CHECK(listing(tar_list) == theirs);
        }

        // A file that is no archive: both refuse it; tar_list says where.
        write_file(tmp / "junk.tar", std::string(1024, 'j'));
        CHECK(sh("tar -tf " + quote(tmp / "junk.tar") + " >/dev/null 2>&1") != 0);
        std::string err;
        CHECK(sh(tar_list + " " + quote(tmp / "junk.tar") + " 2>&1", &err) == 1);
        CHECK(err.find("offset 0") != std::string::npos);
    }

    TEST_CASE(
        "ext4_from_layers builds an image that e2fsck passes and debugfs reads the layers from; "
        "ext4_cat prints its files") {
        if (!have("tar") || !have("e2fsck") || !have("debugfs"))
            CZ_SKIP("GNU tar, e2fsck or debugfs is not installed");
        const std::string from_layers = example("ext4_from_layers");
        const std::string cat = example("ext4_cat");
        temp_dir tmp;
        // Layer 1: the tree, gzip'd. Layer 2 replaces /etc/hostname, whites out /etc/gone, adds
        // /opt.
        make_tree(tmp / "lower");
        sh_ok("tar --format=posix --sparse -czf " + quote(tmp / "1.tar.gz") + " -C " +
              quote(tmp / "lower") + " .");
        sh_ok("mkdir -p " + quote(tmp / "upper/etc") + " " + quote(tmp / "upper/opt") +
              " && printf 'vm\\n' > " + quote(tmp / "upper/etc/hostname") + " && : > " +
              quote(tmp / "upper/etc/.wh.gone") + " && printf 'new\\n' > " +
              quote(tmp / "upper/opt/new"));
        sh_ok("tar --format=posix -cf " + quote(tmp / "2.tar") + " -C " + quote(tmp / "upper") +
              " .");
        // What the image must hold: the lower tree with the upper one applied.
        sh_ok("cp -a " + quote(tmp / "lower") + " " + quote(tmp / "expected") + " && cp -a " +
              quote(tmp / "upper") + "/. " + quote(tmp / "expected") + " && rm " +
              quote(tmp / "expected/etc/gone") + " " + quote(tmp / "expected/etc/.wh.gone"));

        std::string image = tmp / "rootfs.img";
        std::string out = sh_ok(from_layers + " " + quote(image) + " " + quote(tmp / "1.tar.gz") +
                                " " + quote(tmp / "2.tar"));
        CHECK(out.find("2 layers") != std::string::npos);
        std::string fsck;
        CHECK_MESSAGE(sh("e2fsck -fn " + quote(image) + " 2>&1", &fsck) == 0, fsck);
        sh_ok("mkdir " + quote(tmp / "dumped") + " && debugfs -R 'rdump / " + tmp.str() +
              "/dumped' " + quote(image) + " 2>/dev/null && rmdir " +
              quote(tmp / "dumped/lost+found"));
        std::string diff;
        CHECK_MESSAGE(sh("diff -r --no-dereference " + quote(tmp / "expected") + " " +
                             quote(tmp / "dumped") + " 2>&1",
                         &diff) == 0,
                      diff);

        // ext4_cat prints what the layers hold: the upper layer's hostname, the lower layer's files
        // (the sparse one with its holes as zeros).
        CHECK(sh_ok(cat + " " + quote(image) + " /etc/hostname") == "vm\n");
        for (const char* path : {"bin/tool", "sparse", "with space"})
            CHECK_MESSAGE(sh(cat + " " + quote(image) + " " + quote(path) + " | cmp - " +
                             quote(tmp / ("lower/" + std::string(path)))) == 0,
                          path);
        std::string err;
        CHECK(sh(cat + " " + quote(image) + " /etc/gone 2>&1", &err) == 1);
        CHECK(err.find("/etc/gone") != std::string::npos);
        CHECK(sh(cat + " " + quote(image) + " /etc 2>&1", &err) == 1);
        CHECK(sh(cat + " " + quote(tmp / "absent.img") + " /etc/hostname 2>&1") == 1);

        // A layer that is no tar: an error naming the layer, and no image left behind.
        write_file(tmp / "junk.tar", std::string(1024, 'j'));
        CHECK(
            sh(from_layers + " " + quote(tmp / "bad.img") + " " + quote(tmp / "junk.tar") + " 2>&1",
               &err) == 1);
        CHECK(err.find("junk.tar: layer 1") != std::string::npos);
        CHECK(::access((tmp / "bad.img").c_str(), F_OK) != 0);
    }

} // TEST_SUITE
