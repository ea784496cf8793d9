// cz::ext4::formatter, read back through cz::ext4::reader (no root, no peers: see peers.cpp).
#include <cz/ext4/formatter.hpp>

#include "sample.hpp"
#include "tree.hpp"

#include <cz/ext4/layout.hpp>
#include <cz/ext4/reader.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

using namespace cz::ext4;
using cz_test::temp_dir;

namespace {

cz::unique_fd create(const std::string& path) {
    cz::unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    return fd;
}

// Checks that the block after every inode table is inside the image: Linux's inode-table
// readahead reads it, and a guest whose disk is larger than the image (a VM template's clone)
// would ask its VMM for a block past the file's end.
void check_no_table_ends_the_image(const std::string& path) {
    cz::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    superblock sb{};
    REQUIRE(::pread(fd.get(), &sb, sizeof sb, 1024) == ssize_t(sizeof sb));
    const std::uint64_t bs = std::uint64_t(1024) << sb.log_block_size.get();
    const std::uint64_t blocks = sb.blocks_count_lo.get();
    const std::uint64_t per_group = sb.blocks_per_group.get();
    REQUIRE(per_group > 0);
    const std::uint64_t groups = (blocks + per_group - 1) / per_group;
    const std::uint64_t table_blocks = sb.inodes_per_group.get() * sb.inode_size.get() / bs;
    for (std::uint64_t g = 0; g < groups; ++g) {
        group_desc gd{};
        REQUIRE(::pread(fd.get(), &gd, sizeof gd, off_t(bs + g * sizeof gd)) ==
                ssize_t(sizeof gd));
        const std::uint64_t after = gd.inode_table_lo.get() + table_blocks;
        CHECK_MESSAGE(after < blocks, "group ", g, "'s inode table ends at block ", after, " of ",
                      blocks);
    }
}

} // namespace

TEST_SUITE("ext4") {

TEST_CASE("no inode table is the last thing in an image (the kernel reads the block after it)") {
    temp_dir tmp;
    SUBCASE("one file, no free space") {
        auto path = tmp / "small.img";
        formatter f(create(path));
        std::error_code ec;
        auto n = f.add_file(f.root, "f", {}, ec);
        std::string data(10000, 'x');
        cz::memory_source src(cz::as_bytes(data));
        f.write_file(n, 0, src, data.size(), ec);
        f.finish(ec);
        REQUIRE(!ec);
        check_no_table_ends_the_image(path);
    }
    SUBCASE("the sample tree") {
        auto path = tmp / "sample.img";
        formatter f(create(path));
        cz_test::sample_builder b{f, {}, 1, {}};
        b.build();
        f.finish();
        check_no_table_ends_the_image(path);
    }
}

TEST_CASE("every kind of node reads back as written") {
    temp_dir tmp;
    auto path = tmp / "sample.img";
    {
        formatter f(create(path));
        cz_test::sample_builder b{f, {}, 1, {}};
        b.build();
        f.finish();
        cz::unique_fd fd;
        std::unique_ptr<fd_image> img;
        auto r = cz_test::open_image(path, fd, img);
        auto got = cz_test::list_image(r);
        CHECK_MESSAGE(cz_test::diff(b.expected, got) == "", cz_test::diff(b.expected, got));
        // Link counts: three names for busybox, 2 + subdirectories for directories.
        std::error_code ec;
        CHECK(r.stat(r.lookup("bin/ls", ec), ec).links == 3);
        CHECK(r.stat(r.lookup("usr", ec), ec).links == 3);
        CHECK(r.stat(root_inode, ec).links == 2 + 11);
        // The big directory is an htree; the fragmented file's tree is two levels deep.
        CHECK((r.stat(r.lookup("big", ec), ec).flags & inode_flag_index) != 0);
        std::size_t runs = 0;
        r.for_each_run(r.lookup("fragmented", ec), [&](const reader::run&) { return ++runs, true; }, ec);
        CHECK(runs == 1500);
        // Holes stay holes: the sparse file owns one block.
        std::uint64_t blocks = 0;
        r.for_each_run(r.lookup("sparse", ec), [&](const reader::run& x) { return blocks += x.len, true; }, ec);
        CHECK(blocks == 1);
        CHECK(!ec);
    }
}

TEST_CASE("replacing and removing nodes frees their blocks and fixes link counts") {
    temp_dir tmp;
    auto path = tmp / "replace.img";
    formatter f(create(path));
    std::error_code ec;
    metadata m;
    auto d = f.make_directory(f.root, "d", m, ec);
    auto file = f.add_file(d, "x", m, ec);
    std::string data(100000, 'x');
    cz::memory_source src(cz::as_bytes(data));
    f.write_file(file, 0, src, data.size(), ec);
    REQUIRE(!ec);
    f.add_hard_link(f.root, "x-link", file, ec);
    REQUIRE(!ec);
    CHECK(f.make_directory(f.root, "d", m, ec) == d); // dir over dir keeps the children
    CHECK(f.lookup(d, "x") == file);
    f.add_symlink(f.root, "d", "elsewhere", m, ec); // symlink over directory
    REQUIRE(!ec);
    CHECK(f.type(f.lookup(f.root, "d")) == file_type::symlink);
    f.make_directory(f.root, "x-link", m, ec); // directory over the last name of the file
    REQUIRE(!ec);
    f.add_hard_link(f.root, "bad", f.lookup(f.root, "x-link"), ec);
    CHECK(ec == errc::link_to_directory);
    f.finish(ec);
    REQUIRE(!ec);
    cz::unique_fd fd;
    std::unique_ptr<fd_image> img;
    auto r = cz_test::open_image(path, fd, img);
    auto t = cz_test::list_image(r);
    CHECK(t.size() == 3); // d (symlink), x-link (dir), lost+found
    // The 25 blocks of x are free again.
    CHECK(r.info().free_blocks >= 25);
}

TEST_CASE("bad names, targets and xattrs are refused") {
    temp_dir tmp;
    formatter f(create(tmp / "bad.img"));
    std::error_code ec;
    metadata m;
    for (std::string name : {std::string(), std::string("."), std::string(".."), std::string("a/b"),
                             std::string("a\0b", 3), std::string(256, 'x')}) {
        f.add_file(f.root, name, m, ec);
        CHECK(ec == errc::invalid_name);
    }
    f.add_symlink(f.root, "s", "", m, ec);
    CHECK(ec == errc::invalid_symlink);
    f.add_symlink(f.root, "s", std::string(4096, 'x'), m, ec);
    CHECK(ec == errc::invalid_symlink);
    m.xattrs = {{"bogus.name", "v"}};
    f.add_file(f.root, "x", m, ec);
    CHECK(ec == errc::invalid_xattr);
    m.xattrs = {{"user.a", std::string(3000, 'a')}, {"user.b", std::string(3000, 'b')}};
    f.add_file(f.root, "x", m, ec);
    CHECK(ec == errc::invalid_xattr);
    m.xattrs = {};
    auto n = f.add_file(f.root, "x", m, ec);
    REQUIRE(!ec);
    f.set_file_size(n, std::uint64_t(1) << 45, ec);
    CHECK(ec == errc::file_too_large);
    auto p = f.add_file(f.root, "f", m, ec);
    f.add_file(p, "child", m, ec);
    CHECK(ec == errc::not_a_directory);
}

TEST_CASE("a fixed size that cannot hold the content is no_space") {
    temp_dir tmp;
    format_options o;
    o.size = 1 << 20; // 256 blocks
    formatter f(create(tmp / "small.img"), o);
    std::error_code ec;
    auto n = f.add_file(f.root, "big", {}, ec);
    std::string data(2 << 20, 'x');
    cz::memory_source src(cz::as_bytes(data));
    f.write_file(n, 0, src, data.size(), ec);
    CHECK(ec == errc::no_space);
    f.finish(ec);
    CHECK(ec); // unusable after a failed write
}

TEST_CASE("a fixed size image that fits is exactly that size") {
    temp_dir tmp;
    format_options o;
    o.size = 64 << 20;
    auto path = tmp / "fixed.img";
    formatter f(create(path), o);
    std::error_code ec;
    auto n = f.add_file(f.root, "f", {}, ec);
    std::string data(1 << 20, 'x');
    cz::memory_source src(cz::as_bytes(data));
    f.write_file(n, 0, src, data.size(), ec);
    f.finish(ec);
    REQUIRE(!ec);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(st.st_size == 64 << 20);
}

} // TEST_SUITE
