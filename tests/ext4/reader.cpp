// cz::ext4::reader on hostile bytes: truncated and corrupted images give errors, never crashes
// (the fuzz target goes further). Reading real mke2fs images is in peers.cpp.
#include <cz/ext4/reader.hpp>

#include "sample.hpp"
#include "tree.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <random>

using namespace cz::ext4;

namespace {

// A small image made by the formatter, as bytes.
cz::byte_buffer small_image() {
    cz_test::temp_dir tmp;
    auto path = tmp / "small.img";
    {
        formatter f(cz::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644)));
        cz_test::sample_builder b{f, {}, 1, {}};
        std::error_code ec;
        metadata m;
        m.xattrs = {{"user.a", "b"}, {"trusted.t", std::string(500, 't')}};
        b.dir("d", m);
        b.file("d/f", m, "hello");
        b.symlink("d/s", m, std::string(100, 's'));
        for (int i = 0; i < 300; ++i) b.file(fmt::format("d/n{}", i), {}, "");
        auto n = f.add_file(f.root, "frag", {}, ec);
        for (int i = 0; i < 10; ++i) {
            std::string blk(4096, 'x');
            cz::memory_source src(cz::as_bytes(blk));
            f.write_file(n, std::uint64_t(i) * 8192, src, 4096, ec);
        }
        f.finish();
    }
    std::ifstream in(path, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    return cz::to_buffer(s);
}

// Reads everything the reader can reach; returns false on the first error.
bool read_everything(cz::bytes_view image) {
    std::error_code ec;
    reader r(image_ref::memory(image), ec);
    if (ec) return false;
    r.walk(root_inode, [&](const std::string&, const dir_entry& e) {
        auto st = r.stat(e.ino, ec);
        if (ec) return false;
        cz::null_sink sink;
        if (st.type == file_type::regular && st.size < (64 << 20)) r.read_file(e.ino, sink, ec);
        if (!ec && st.type == file_type::symlink) r.read_link(e.ino, ec);
        if (!ec) r.read_xattrs(e.ino, ec);
        return !ec;
    }, ec);
    return !ec;
}

} // namespace

TEST_SUITE("ext4") {

TEST_CASE("reader: a clean image reads completely") {
    auto img = small_image();
    CHECK(read_everything(img));
    std::error_code ec;
    reader r(image_ref::memory(img));
    CHECK(r.read_link(r.lookup("/d/s", ec), ec) == std::string(100, 's'));
    CHECK(r.lookup("d/../d/./f", ec) == r.lookup("d/f", ec));
    r.lookup("nope", ec);
    CHECK(ec == errc::not_found);
}

TEST_CASE("reader: not ext4, truncated, unsupported") {
    std::error_code ec;
    cz::byte_buffer zeros(8192);
    reader r1(image_ref::memory(zeros), ec);
    CHECK(ec == errc::unsupported_image);
    auto img = small_image();
    reader r2(image_ref::memory(cz::bytes_view(img).first(1500)), ec);
    CHECK(ec == errc::corrupt_image);
    auto bad = img;
    cz::store_le<std::uint32_t>(bad.data() + 1024 + 0x60, 0x80000); // an unknown incompat bit
    reader r3(image_ref::memory(bad), ec);
    CHECK(ec == errc::unsupported_image);
}

TEST_CASE("reader: a reader whose constructor failed reads nothing, and never divides by zero") {
    auto img = small_image();
    cz::store_le<std::uint32_t>(img.data() + 1024 + 0x28, 0); // s_inodes_per_group
    std::error_code ec;
    reader r(image_ref::memory(img), ec);
    CHECK(ec == errc::corrupt_image);
    r.stat(root_inode, ec); // the caller ignored the error above
    CHECK(ec == errc::corrupt_image);
    r.lookup("/d/f", ec);
    CHECK(ec);
}

TEST_CASE("reader: random corruption of metadata never crashes") {
    auto img = small_image();
    std::mt19937 rng(7);
    // The metadata lives in block 0-1 and after the data: corrupt bytes there.
    std::size_t errors = 0;
    for (int round = 0; round < 300; ++round) {
        auto bad = img;
        for (int k = 0; k < 8; ++k) {
            std::size_t at = round % 3 == 0 ? 1024 + rng() % 1024 : img.size() / 2 + rng() % (img.size() / 2);
            bad[at] = std::byte(rng());
        }
        if (!read_everything(bad)) ++errors;
    }
    CHECK(errors > 0); // some corruption is detected as such
}

} // TEST_SUITE
