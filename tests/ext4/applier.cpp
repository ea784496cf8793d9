// cz::ext4::layer_applier: layer semantics checked through the reader (unit; the same cases are
// checked against umoci and the kernel in applier_peers.cpp).
#include <cz/ext4/applier.hpp>

#include "layers.hpp"
#include "tree.hpp"

#include <cz/ext4/export.hpp>
#include <cz/ext4/reader.hpp>
#include <cz/tar/reader.hpp>

#include <doctest/doctest.h>

#include <fstream>

using namespace cz::ext4;
using cz_test::ent;

namespace {

// Applies layers into a fresh image and returns the image's bytes.
struct built {
    cz_test::temp_dir tmp;
    std::string path;
    std::error_code ec;
    std::string context;
    cz::byte_buffer bytes;
};

std::unique_ptr<built> build(const std::vector<cz::byte_buffer>& layers) {
    auto b = std::make_unique<built>();
    b->path = b->tmp / "img";
    formatter f(cz::unique_fd(::open(b->path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644)));
    layer_applier a(f);
    for (const auto& l : layers) {
        cz::memory_source src(l);
        a.apply(src, b->ec);
        if (b->ec) {
            b->context = cz::to_string(a.error_detail());
            return b;
        }
    }
    f.finish(b->ec);
    if (b->ec) return b;
    std::ifstream in(b->path, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    b->bytes = cz::to_buffer(s);
    return b;
}

// "path type [content|target]" lines for the image's tree, lost+found left out.
std::string summary(const cz::byte_buffer& image) {
    reader r(image_ref::memory(image));
    std::string out;
    std::error_code ec;
    r.walk(root_inode, [&](const std::string& path, const dir_entry& e) {
        if (path.rfind("lost+found", 0) == 0) return true;
        auto st = r.stat(e.ino, ec);
        out += path;
        switch (st.type) {
        case file_type::directory: out += "/"; break;
        case file_type::symlink: out += " -> " + r.read_link(e.ino, ec); break;
        case file_type::regular: {
            cz::byte_buffer data;
            cz::buffer_sink s(data);
            r.read_file(e.ino, s, ec);
            out += "=" + std::string(cz::as_chars(data));
            if (st.links > 1) out += fmt::format(" (ino {} x{})", e.ino, st.links);
            break;
        }
        default: out += " special"; break;
        }
        out += "\n";
        return true;
    }, ec);
    REQUIRE(!ec);
    return out;
}

std::string apply_all(const std::vector<std::vector<ent>>& layers) {
    std::vector<cz::byte_buffer> bufs;
    for (const auto& l : layers) bufs.push_back(cz_test::make_layer(l));
    auto b = build(bufs);
    REQUIRE_MESSAGE(!b->ec, b->context, ": ", b->ec.message());
    return summary(b->bytes);
}

} // namespace

TEST_SUITE("ext4") {

TEST_CASE("applier: gzip, zstd and plain layers stack") {
    auto l1 = cz_test::make_layer({{'d', "etc/"}, {'f', "etc/a", "1"}}, cz::compression::gzip);
    auto l2 = cz_test::make_layer({{'f', "etc/b", "2"}}, cz::compression::zstd);
    auto l3 = cz_test::make_layer({{'f', "etc/c", "3"}});
    auto b = build({l1, l2, l3});
    REQUIRE(!b->ec);
    CHECK(summary(b->bytes) == "etc/\netc/a=1\netc/b=2\netc/c=3\n");
}

TEST_CASE("applier: whiteouts remove lower entries only") {
    CHECK(apply_all({{{'f', "d/a", "a"}, {'f', "d/b", "b"}}, {{'f', "d/.wh.a"}}}) == "d/\nd/b=b\n");
    CHECK(apply_all({{{'f', "d/x/y", "y"}}, {{'f', "d/.wh.x"}}}) == "d/\n");
    // Same layer: the whiteout does not remove an entry of its own layer, in either order.
    CHECK(apply_all({{{'f', "f", "old"}}, {{'f', "f", "new"}, {'f', ".wh.f"}}}) == "f=new\n");
    CHECK(apply_all({{{'f', "f", "old"}}, {{'f', ".wh.f"}, {'f', "f", "new"}}}) == "f=new\n");
    // Delete in one layer, re-add in the next.
    CHECK(apply_all({{{'f', "f", "old"}}, {{'f', ".wh.f"}}, {{'f', "f", "new"}}}) == "f=new\n");
    // A whiteout of something absent is nothing; a whiteout never creates its parents.
    CHECK(apply_all({{{'f', "a", "a"}}, {{'f', "no/such/.wh.x"}, {'f', ".wh.zzz"}}}) == "a=a\n");
}

TEST_CASE("applier: opaque directories hide lower layers, whatever the tar order") {
    auto lower = std::vector<ent>{{'f', "d/a", "a"}, {'f', "d/sub/b", "b"}, {'f', "keep", "k"}};
    CHECK(apply_all({lower, {{'f', "d/.wh..wh..opq"}, {'f', "d/c", "c"}}}) == "d/\nd/c=c\nkeep=k\n");
    CHECK(apply_all({lower, {{'f', "d/c", "c"}, {'f', "d/.wh..wh..opq"}}}) == "d/\nd/c=c\nkeep=k\n");
    CHECK(apply_all({lower, {{'f', "d/sub/n", "n"}, {'f', "d/.wh..wh..opq"}}}) == "d/\nd/sub/\nd/sub/n=n\nkeep=k\n");
    CHECK(apply_all({lower, {{'d', "d/"}, {'f', "d/.wh..wh..opq"}}}) == "d/\nkeep=k\n");
    // AUFS metadata is skipped.
    CHECK(apply_all({{{'f', ".wh..wh.plnk/1", "x"}, {'f', "a", "a"}}}) == "a=a\n");
}

TEST_CASE("applier: later entries replace earlier ones") {
    CHECK(apply_all({{{'f', "x", "file"}}, {{'d', "x/"}, {'f', "x/y", "y"}}}) == "x/\nx/y=y\n");
    CHECK(apply_all({{{'f', "x/y", "y"}}, {{'f', "x", "file"}}}) == "x=file\n");
    CHECK(apply_all({{{'f', "x/y", "y"}}, {{'l', "x", "elsewhere"}}}) == "x -> elsewhere\n");
    CHECK(apply_all({{{'d', "d/", "", 0755}, {'f', "d/a", "a"}}, {{'d', "d/", "", 0700}}}) == "d/\nd/a=a\n");
    // Duplicates within one layer: the last one wins.
    CHECK(apply_all({{{'f', "a", "1"}, {'f', "a", "2"}, {'f', "a", "3"}}}) == "a=3\n");
}

TEST_CASE("applier: hard links within and across layers") {
    auto s = apply_all({{{'f', "a", "data"}, {'h', "b", "a"}}, {{'h', "c", "b"}}});
    CHECK(s.find("a=data (ino") != std::string::npos);
    CHECK(s.find(" x3)") != std::string::npos);
    // Replacing one name leaves the other names on the old inode.
    CHECK(apply_all({{{'f', "a", "old"}, {'h', "b", "a"}}, {{'f', "a", "new"}}}) == "a=new\nb=old\n");
    // Missing targets, directories and targets outside the image are errors.
    for (auto bad : {std::vector<ent>{{'h', "x", "missing"}}, std::vector<ent>{{'d', "d/"}, {'h', "x", "d"}},
                     std::vector<ent>{{'f', "a", "a"}, {'h', "x", "/../../etc/passwd"}}}) {
        auto b = build({cz_test::make_layer(bad)});
        CHECK(b->ec == errc::bad_layer_entry);
        CHECK(b->context.find("entry 'x'") != std::string::npos);
    }
}

TEST_CASE("applier: names cannot escape the root") {
    // "..", absolute names, and symlinked parents all land inside the image.
    CHECK(apply_all({{{'f', "../../etc/passwd", "p"}, {'f', "/abs", "a"}}}) == "abs=a\netc/\netc/passwd=p\n");
    CHECK(apply_all({{{'l', "link", "/../../tmp"}, {'f', "link/escaped", "e"}}}) ==
          "link -> /../../tmp\ntmp/\ntmp/escaped=e\n");
    CHECK(apply_all({{{'d', "a/"}, {'l', "a/up", "../../../.."}, {'f', "a/up/x", "x"}}}) ==
          "a/\na/up -> ../../../..\nx=x\n");
    // A symlink loop as a parent is an error, not a hang.
    auto b = build({cz_test::make_layer({{'l', "p", "q"}, {'l', "q", "p"}, {'f', "p/x", "x"}})});
    CHECK(b->ec == errc::bad_layer_entry);
}

TEST_CASE("applier: metadata, xattrs, devices") {
    auto l = cz_test::make_layer({{'f', "suid", "x", 04755, 1000, 2000, {{"security.capability", std::string("\x01\x00\x00\x02", 4)}, {"user.a", "b"}, {"system.posix_acl_access", "zz"}}},
                                  {'c', "null", "1:3", 0666},
                                  {'p', "fifo", "", 0600}});
    auto b = build({l});
    REQUIRE(!b->ec);
    reader r(image_ref::memory(b->bytes));
    std::error_code ec;
    auto st = r.stat(r.lookup("suid", ec), ec);
    CHECK(st.mode == 04755);
    CHECK(st.uid == 1000);
    CHECK(st.gid == 2000);
    CHECK(st.mtime == timestamp{1600000000, 250});
    auto xs = r.read_xattrs(st.ino, ec);
    REQUIRE(xs.size() == 2); // system.* is dropped
    auto dev = r.stat(r.lookup("null", ec), ec);
    CHECK(dev.type == file_type::char_device);
    CHECK(dev.major == 1);
    CHECK(dev.minor == 3);
    CHECK(r.stat(r.lookup("fifo", ec), ec).type == file_type::fifo);
}

TEST_CASE("applier: truncated and corrupt layers fail cleanly") {
    auto l = cz_test::make_layer({{'f', "a", std::string(100000, 'a')}}, cz::compression::gzip);
    auto b = build({cz::byte_buffer(l.begin(), l.begin() + std::ptrdiff_t(l.size() / 2))});
    CHECK(b->ec);
    CHECK(b->context.find("layer 1") == 0);
    auto junk = cz::to_buffer(std::string(1024, 'j'));
    CHECK(build({junk})->ec);
}

TEST_CASE("export: an image exports to a tar that reads back the same") {
    auto l = cz_test::make_layer({{'f', "a", "data", 0640, 5, 6, {{"user.x", "y"}}}, {'h', "b", "a"},
                                  {'l', "s", "a"}, {'d', "d/"}, {'c', "d/null", "1:3"}});
    auto b = build({l});
    REQUIRE(!b->ec);
    reader r(image_ref::memory(b->bytes));
    cz::byte_buffer tar;
    cz::buffer_sink ts(tar);
    export_tar(r, ts);
    cz::memory_source src(tar);
    cz::tar::reader tr(src);
    std::string got;
    while (const auto* e = tr.next()) {
        got += e->name + " " + std::string(cz::tar::to_string(e->type)) + " " + e->linkname;
        if (e->is_file()) {
            cz::byte_buffer data;
            cz::buffer_sink ds(data);
            std::error_code ec;
            cz::copy(tr, ds, ec);
            got += "=" + std::string(cz::as_chars(data));
        }
        got += "\n";
    }
    CHECK(got == "a regular =data\nb hardlink a\nd/ directory \nd/null char \ns symlink a\n");
}

} // TEST_SUITE
