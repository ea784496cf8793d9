// cz/ext4 against real peers: e2fsck -fn checks every image the formatter makes; the Linux kernel
// (loop mount, root only) must see the intended tree; the reader must see mke2fs -d images as the
// kernel does.
#include <cz/ext4/formatter.hpp>

#include "sample.hpp"
#include "tree.hpp"

#include <cz/ext4/export.hpp>
#include <cz/ext4/reader.hpp>

#include <doctest/doctest.h>

using namespace cz::ext4;
using cz_test::temp_dir;

namespace {

cz::unique_fd create(const std::string& path) {
    cz::unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    return fd;
}

void check_fsck(const std::string& image) {
    std::string log;
    int rc = cz_test::fsck(image, &log);
    CHECK_MESSAGE(rc == 0, "e2fsck -fn ", image, " exited ", rc, ":\n", log);
}

constexpr const char* needs_root = "the kernel's view needs a loop mount, which needs root";

} // namespace

TEST_SUITE("ext4") {

    TEST_CASE("formatter: e2fsck accepts the sample image and the kernel sees the intended tree") {
        REQUIRE(cz_test::have("e2fsck"));
        temp_dir tmp;
        auto path = tmp / "sample.img";
        cz_test::tree expected;
        {
            formatter f(create(path));
            cz_test::sample_builder b{f, {}, 1, {}};
            b.build(5000);
            f.finish();
            expected = b.expected;
        }
        check_fsck(path);
        cz::unique_fd fd;
        std::unique_ptr<fd_image> img;
        auto r = cz_test::open_image(path, fd, img);
        auto ours = cz_test::list_image(r);
        CHECK_MESSAGE(cz_test::diff(expected, ours) == "", cz_test::diff(expected, ours));
        // Exported as tar, GNU tar extracts the same tree (tar has no sockets; an empty lost+found
        // is left out of exports).
        {
            cz::unique_fd out(::open((tmp / "export.tar").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
            cz::fd_sink sink(out.get());
            export_tar(r, sink);
            ::mkdir((tmp / "x").c_str(), 0755);
            // GNU tar restores owners, devices and xattrs other than user.* only as root.
            const bool root = cz_test::is_root();
            cz_test::sh_ok(
                fmt::format("tar --numeric-owner --xattrs --xattrs-include={} {} -xpf {} -C {}",
                            root ? "'*'" : "'user.*'",
                            root ? "" : "--exclude=dev/null --exclude=dev/sda --exclude=dev/big",
                            cz_test::quote(tmp / "export.tar"), cz_test::quote(tmp / "x")));
            auto extracted = cz_test::list_host(tmp / "x");
            auto want = expected;
            want.erase("lost+found");
            want.erase("dev/sock");
            if (!root) {
                cz_test::skip("GNU tar restores owners, devices and trusted.* xattrs only as root: "
                              "the export "
                              "was compared on names, types, sizes and contents");
                for (auto* t : {&want, &extracted})
                    for (auto& [p, e] : *t)
                        e.uid = e.gid = 0, e.xattrs.clear(), e.mode = 0;
                want.erase("dev/null"), want.erase("dev/sda"), want.erase("dev/big");
            }
            CHECK_MESSAGE(cz_test::diff(want, extracted) == "", cz_test::diff(want, extracted));
        }
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
        auto kernel = cz_test::kernel_tree(path, tmp / "mnt");
        CHECK_MESSAGE(cz_test::diff(expected, kernel) == "", cz_test::diff(expected, kernel));
    }

    TEST_CASE("formatter: 100k entries in one directory, a file past 4 GiB, a huge sparse file") {
        temp_dir tmp;
        auto path = tmp / "big.img";
        const std::uint64_t far = (std::uint64_t(9) << 29); // 4.5 GiB
        {
            formatter f(create(path));
            std::error_code ec;
            metadata m;
            m.mode = 0644;
            auto d = f.make_directory(f.root, "many", m, ec);
            for (int i = 0; i < 100000; ++i) {
                f.add_file(d, fmt::format("file-with-a-longer-name-{:07}", i), m, ec);
                REQUIRE(!ec);
            }
            auto n = f.add_file(f.root, "past-4g", m, ec);
            std::string head(4096, 'H'), tail(5000, 'T');
            cz::memory_source h(cz::as_bytes(head)), t(cz::as_bytes(tail));
            f.write_file(n, 0, h, head.size(), ec);
            f.write_file(n, far, t, tail.size(), ec);
            REQUIRE(!ec);
            auto s = f.add_file(f.root, "sparse-8t", m, ec);
            f.set_file_size(s, std::uint64_t(8) << 40, ec);
            REQUIRE(!ec);
            f.finish();
        }
        check_fsck(path);
        cz::unique_fd fd;
        std::unique_ptr<fd_image> img;
        auto r = cz_test::open_image(path, fd, img);
        std::error_code ec;
        CHECK(r.read_dir(r.lookup("many", ec), ec).size() == 100000);
        CHECK(r.stat(r.lookup("sparse-8t", ec), ec).size == std::uint64_t(8) << 40);
        std::vector<reader::run> runs;
        r.for_each_run(
            r.lookup("past-4g", ec), [&](const reader::run& x) { return runs.push_back(x), true; },
            ec);
        REQUIRE(runs.size() == 2);
        CHECK(runs[1].logical == far / 4096);
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
        cz_test::loop_mount m(path, tmp / "mnt");
        REQUIRE_MESSAGE(m.mounted, m.log);
        struct stat st {};
        CHECK(::stat((m.dir + "/many/file-with-a-longer-name-0099999").c_str(), &st) == 0);
        CHECK(::stat((m.dir + "/many/file-with-a-longer-name-0050000").c_str(), &st) == 0);
        CHECK(::stat((m.dir + "/many/file-with-a-longer-name-0100000").c_str(), &st) != 0);
        CHECK(::stat((m.dir + "/sparse-8t").c_str(), &st) == 0);
        CHECK(std::uint64_t(st.st_size) == std::uint64_t(8) << 40);
        CHECK(st.st_blocks == 0);
        int f4 = ::open((m.dir + "/past-4g").c_str(), O_RDONLY);
        REQUIRE(f4 >= 0);
        std::string buf(5000, '\0');
        CHECK(::pread(f4, buf.data(), buf.size(), off_t(far)) == 5000);
        CHECK(buf == std::string(5000, 'T'));
        CHECK(::pread(f4, buf.data(), 10, off_t(far - 10)) == 10);
        CHECK(buf.substr(0, 10) == std::string(10, '\0'));
        ::close(f4);
        auto count = cz_test::sh_ok("ls -f " + cz_test::quote(m.dir + "/many") + " | wc -l");
        CHECK(std::stoul(count) == 100002);
    }

    TEST_CASE("reader: mke2fs -d images read as their source tree and as the kernel sees them "
              "(ext4, ext3, ext2)") {
        REQUIRE(cz_test::have("mke2fs"));
        temp_dir tmp;
        // A source tree with what mke2fs -d copies: files, holes, hard links, symlinks, xattrs,
        // a directory big enough for several blocks, and (as root) devices and other owners.
        auto src = tmp / "src";
        std::string script =
            "set -e; mkdir -p " + cz_test::quote(src) + "; cd " + cz_test::quote(src) +
            ";"
            "mkdir -p etc usr/bin big; echo hello > etc/hostname; chmod 640 etc/hostname;"
            "head -c 300000 /dev/urandom > usr/bin/tool; ln usr/bin/tool usr/bin/tool2;"
            "ln -s tool usr/bin/fast; ln -s $(printf 'x%.0s' $(seq 1 150)) usr/bin/slow;"
            "truncate -s 20M sparse; printf data | dd of=sparse bs=1 seek=10000000 conv=notrunc "
            "2>/dev/null;"
            "for i in $(seq 1 1500); do : > big/entry-number-$i; done;"
            "mkfifo fifo;";
        if (cz_test::is_root())
            script +=
                "mknod dev-null c 1 3; chown 1234:5678 usr/bin/tool; chmod 4755 usr/bin/tool;";
        cz_test::sh_ok(script);
        cz_test::sh_ok("touch -h -d '2001-02-03 04:05:06.789' " +
                       cz_test::quote(src + "/etc/hostname"));
        // xattrs: a small one (in the inode where it has room) and a 2000-byte one (in a block).
        // user.* needs a filesystem that has them (tmpfs before Linux 6.6 has not); trusted.* needs
        // root.
        std::string big(2000, 'v');
        bool user_xattrs =
            ::lsetxattr((src + "/etc/hostname").c_str(), "user.color", "blue", 4, 0) == 0;
        if (cz_test::is_root()) {
            REQUIRE(::lsetxattr((src + "/usr/bin/tool").c_str(), "trusted.big", big.data(),
                                big.size(), 0) == 0);
            REQUIRE(::lsetxattr((src + "/usr/bin/fast").c_str(), "trusted.small", "s", 1, 0) == 0);
        }
        auto source = cz_test::list_host(src);
        for (const char* type : {"ext4", "ext3", "ext2"}) {
            CAPTURE(type);
            auto image = tmp / (std::string(type) + ".img");
            cz_test::sh_ok(fmt::format("mke2fs -q -F -b 4096 -I 256 -t {} -d {} {} 64M 2>&1", type,
                                       cz_test::quote(src), cz_test::quote(image)));
            // Index the directories (htree), as e2fsck -D does for large ones.
            cz_test::sh("e2fsck -fyD " + cz_test::quote(image) + " >/dev/null 2>&1");
            check_fsck(image);
            cz::unique_fd fd;
            std::unique_ptr<fd_image> img;
            auto r = cz_test::open_image(image, fd, img);
            auto ours = cz_test::list_image(r);
            std::error_code ec;
            if (std::string(type) != "ext2")
                CHECK((r.stat(r.lookup("big", ec), ec).flags & inode_flag_index) != 0);
            if (std::string(type) == "ext2")
                CHECK((r.stat(r.lookup("usr/bin/tool", ec), ec).flags & inode_flag_extents) == 0);
            // The tree mke2fs copied: mtimes in whole seconds (mke2fs -d copies no nanoseconds),
            // directory mtimes left out (they change as mke2fs fills the directories).
            auto want = source;
            for (auto& [path, e] : want)
                e.mtime_nsec = 0;
            want["lost+found"] = ours["lost+found"];
            CHECK_MESSAGE(cz_test::diff(want, ours, false) == "", cz_test::diff(want, ours, false));
            if (cz_test::is_root()) {
                auto kernel = cz_test::kernel_tree(image, tmp / (std::string("mnt-") + type));
                CHECK_MESSAGE(cz_test::diff(kernel, ours) == "", cz_test::diff(kernel, ours));
            }
        }
        if (!user_xattrs)
            CZ_SKIP("the temporary directory takes no user.* xattrs: mke2fs -d copied none");
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
    }

} // TEST_SUITE
