// The small programs in examples/, run against the real tools: GNU tar lists archives as
// tar_list does; e2fsck passes what ext4_from_layers builds and debugfs reads the layers' files
// back out of it; ext4_cat prints what the layers hold; netlink_veth's pair, made in a fresh
// network namespace, is what iproute2 shows.
#include "support/support.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <set>
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

    TEST_CASE("netlink_veth makes a pair that ip -j addr shows, in a fresh network namespace") {
        if (!is_root()) CZ_SKIP("not root: unshare -n needs CAP_SYS_ADMIN");
        if (!have("unshare") || !have("ip")) CZ_SKIP("unshare or iproute2's ip is not installed");
        const std::string veth = quote(example("netlink_veth"));
        temp_dir tmp;
        // unshare -n: the namespace lives as long as the shell, so nothing is left to delete and
        // the host's own network is never touched. The second run's prefix is invalid after the
        // pair exists: it must fail and remove the pair it made.
        std::string script = veth + " czv0 10.77.0.1/24 czv1 10.77.0.2/24 > " + quote(tmp / "out") +
                             " && ip -j addr > " + quote(tmp / "addr.json") + " && { " + veth +
                             " czv2 10.77.1.1/40 czv3 10.77.1.2/24 2> " + quote(tmp / "err") +
                             "; echo $? > " + quote(tmp / "rc");
        script += "; }; ip -j link > " + quote(tmp / "link.json");
        sh_ok("unshare -n sh -c " + quote(script));
        CHECK(read_file(tmp / "out") == "czv0 10.77.0.1/24 up\nczv1 10.77.0.2/24 up\n");

        auto addrs = nlohmann::json::parse(read_file(tmp / "addr.json"));
        std::map<std::string, std::string> seen; // name -> "flags-has-UP inet local/prefixlen"
        for (const auto& link : addrs) {
            std::string name = link.value("ifname", "");
            bool up = false;
            for (const auto& f : link.value("flags", nlohmann::json::array()))
                up = up || f == "UP";
            std::string v4;
            for (const auto& a : link.value("addr_info", nlohmann::json::array()))
                if (a.value("family", "") == "inet")
                    v4 += a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0));
            seen[name] = std::string(up ? "up " : "down ") + v4;
        }
        CHECK(seen["czv0"] == "up 10.77.0.1/24");
        CHECK(seen["czv1"] == "up 10.77.0.2/24");
        CHECK(seen.size() == 3); // lo, czv0, czv1: nothing else in the new namespace

        CHECK(read_file(tmp / "rc") == "1\n");
        std::string err = read_file(tmp / "err");
        CHECK_MESSAGE(err.find("10.77.1.1/40: bad prefix length") != std::string::npos, err);
        auto links = nlohmann::json::parse(read_file(tmp / "link.json"));
        std::set<std::string> names; // czv2 and czv3 are gone again
        for (const auto& link : links)
            names.insert(link.value("ifname", ""));
        CHECK(names == std::set<std::string>{"czv0", "czv1", "lo"});

        std::string usage;
        CHECK(sh(veth + " 2>&1", &usage) == 2);
        CHECK(usage.find("usage: netlink_veth") != std::string::npos);
        CHECK(sh(veth + " czv0 10.77.0.300/24 czv1 10.77.0.2/24 2>&1", &err) == 1);
        CHECK(err.find("10.77.0.300/24") != std::string::npos);
    }

} // TEST_SUITE
