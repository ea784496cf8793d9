// The layer applier against real peers: the tree `umoci unpack` makes from the same layers, GNU
// tar's extraction of the tar corpus, e2fsck -fn on every image, the kernel's view through a loop
// mount (root only), and hostile layers (a correct image or a clean error, nothing written
// outside the image).
#include <cz/ext4/applier.hpp>

#include "layers.hpp"
#include "tree.hpp"

#include <cz/core/sha256.hpp>
#include <cz/ext4/reader.hpp>
#include <cz/tar/writer.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace cz::ext4;
using cz_test::ent;
using cz_test::temp_dir;

namespace {

void write_file(const std::string& path, cz::bytes_view data) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
    REQUIRE(f.good());
}

// Builds an image from layer files; returns the error (and context) if any.
std::error_code build_image(const std::string& image, const std::vector<std::string>& layers,
                            std::string* context = nullptr, format_options opt = {}) {
    formatter f(cz::unique_fd(::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)), opt);
    layer_applier a(f);
    std::error_code ec;
    for (const auto& l : layers) {
        cz::unique_fd fd(::open(l.c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        cz::fd_source src(fd.get());
        a.apply(src, ec);
        if (ec) {
            if (context) *context = a.error_context();
            return ec;
        }
    }
    f.finish(ec);
    return ec;
}

void check_fsck(const std::string& image) {
    std::string log;
    int rc = cz_test::fsck(image, &log);
    CHECK_MESSAGE(rc == 0, "e2fsck -fn exited ", rc, ":\n", log);
}

// The image's tree as the kernel sees it (root) or as the reader sees it, lost+found left out.
cz_test::tree image_tree(const std::string& image, const std::string& mnt) {
    cz_test::tree t;
    if (cz_test::is_root()) {
        cz_test::loop_mount m(image, mnt);
        REQUIRE(m.mounted);
        t = cz_test::list_host(m.dir);
    } else {
        cz::unique_fd fd;
        std::unique_ptr<fd_image> img;
        auto r = cz_test::open_image(image, fd, img);
        t = cz_test::list_image(r);
    }
    t.erase("lost+found");
    return t;
}

// An OCI image layout with one image, for umoci.
std::string oci_layout(const std::string& dir, const std::vector<cz::byte_buffer>& gz_layers,
                       const std::vector<cz::byte_buffer>& plain_layers) {
    std::filesystem::create_directories(dir + "/blobs/sha256");
    auto blob = [&](cz::bytes_view data) {
        auto d = cz::sha256(data);
        write_file(dir + "/blobs/sha256/" + d.hex(), data);
        return d;
    };
    std::string layers_json, diff_ids;
    for (std::size_t i = 0; i < gz_layers.size(); ++i) {
        auto d = blob(gz_layers[i]);
        layers_json += fmt::format("{}{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                                   "\"digest\":\"{}\",\"size\":{}}}", i ? "," : "", d.str(), gz_layers[i].size());
        diff_ids += fmt::format("{}\"{}\"", i ? "," : "", cz::sha256(plain_layers[i]).str());
    }
    std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diff_ids + "]}}";
    auto cd = blob(cz::as_bytes(config));
    std::string manifest = fmt::format(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},"
        "\"layers\":[{}]}}", cd.str(), config.size(), layers_json);
    auto md = blob(cz::as_bytes(manifest));
    std::string index = fmt::format(
        "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"t\"}}}}]}}",
        md.str(), manifest.size());
    write_file(dir + "/index.json", cz::as_bytes(index));
    write_file(dir + "/oci-layout", cz::as_bytes(std::string("{\"imageLayoutVersion\":\"1.0.0\"}")));
    return dir + ":t";
}

struct layer_case {
    const char* name;
    std::vector<std::vector<ent>> layers;
};

// Multi-layer cases, each checked against umoci's unpack of the same layers.
std::vector<layer_case> layer_cases() {
    return {
        {"whiteout a file", {{{'d', "d/"}, {'f', "d/a", "a"}, {'f', "d/b", "b"}}, {{'f', "d/.wh.a"}}}},
        {"whiteout a directory", {{{'d', "d/"}, {'d', "d/x/"}, {'f', "d/x/y", "y"}}, {{'f', "d/.wh.x"}}}},
        {"opaque marker first", {{{'d', "d/"}, {'f', "d/a", "a"}, {'d', "d/sub/"}, {'f', "d/sub/b", "b"}, {'f', "keep", "k"}},
                                 {{'d', "d/"}, {'f', "d/.wh..wh..opq"}, {'f', "d/c", "c"}}}},
        {"opaque marker last", {{{'d', "d/"}, {'f', "d/a", "a"}, {'f', "keep", "k"}},
                                {{'d', "d/"}, {'f', "d/c", "c"}, {'f', "d/.wh..wh..opq"}}}},
        {"file replaced by directory", {{{'f', "x", "file"}}, {{'d', "x/"}, {'f', "x/y", "y"}}}},
        {"directory replaced by file", {{{'d', "x/"}, {'f', "x/y", "y"}}, {{'f', "x", "file"}}}},
        {"directory replaced by symlink", {{{'d', "x/"}, {'f', "x/y", "y"}}, {{'l', "x", "elsewhere"}}}},
        {"symlink replaced by directory", {{{'l', "x", "elsewhere"}}, {{'d', "x/"}, {'f', "x/z", "z"}}}},
        {"hard links across layers", {{{'f', "a", "data"}, {'h', "b", "a"}}, {{'h', "c", "b"}}, {{'f', "a", "new"}}}},
        {"delete then re-add", {{{'f', "f", "old"}, {'d', "d/"}, {'f', "d/x", "x"}}, {{'f', ".wh.f"}, {'f', ".wh.d"}},
                                {{'f', "f", "new"}, {'d', "d/"}, {'f', "d/y", "y"}}}},
        {"whiteout and re-add in one layer", {{{'d', "d/"}, {'f', "d/a", "a"}}, {{'f', ".wh.d"}, {'d', "d/"}, {'f', "d/b", "b"}}}},
        {"directory metadata replaced", {{{'d', "d/", "", 0755}, {'f', "d/a", "a"}}, {{'d', "d/", "", 0700, 5, 6}}}},
        {"modes, owners, devices, xattrs", {{{'f', "suid", "s", 04755, 1000, 1000}, {'d', "tmp/", "", 01777},
                                              {'c', "null", "1:3", 0666}, {'p', "fifo", "", 0600},
                                              {'f', "caps", "c", 0755, 0, 0, {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20)}}},
                                              {'f', "ux", "u", 0644, 0, 0, {{"user.k", "v"}}}}}},
    };
}

} // namespace

TEST_SUITE("ext4") {

TEST_CASE("applier: multi-layer cases agree with umoci unpack") {
    if (!cz_test::have("umoci")) {
        MESSAGE("skipped: umoci is not installed");
        return;
    }
    for (const auto& c : layer_cases()) {
        CAPTURE(c.name);
        temp_dir tmp;
        std::vector<cz::byte_buffer> gz, plain;
        std::vector<std::string> files;
        for (std::size_t i = 0; i < c.layers.size(); ++i) {
            plain.push_back(cz_test::make_layer(c.layers[i]));
            gz.push_back(cz_test::make_layer(c.layers[i], cz::compression::gzip));
            files.push_back(tmp / fmt::format("layer{}.tar.gz", i));
            write_file(files.back(), gz.back());
        }
        auto image = tmp / "image.ext4";
        std::string ctx;
        auto ec = build_image(image, files, &ctx);
        REQUIRE_MESSAGE(!ec, ctx, ": ", ec.message());
        check_fsck(image);
        auto ours = image_tree(image, tmp / "mnt");

        auto ref = oci_layout(tmp / "oci", gz, plain);
        std::string log;
        bool rootless = !cz_test::is_root();
        int rc = cz_test::sh(fmt::format("umoci unpack {} --image '{}' '{}' 2>&1",
                                         rootless ? "--rootless" : "", ref, tmp / "bundle"), &log);
        REQUIRE_MESSAGE(rc == 0, log);
        auto theirs = cz_test::list_host(tmp / "bundle/rootfs");
        if (rootless) { // umoci --rootless cannot chown or mknod: compare what it can do
            for (auto* t : {&ours, &theirs})
                for (auto& [p, e] : *t) e.uid = e.gid = 0;
        }
        CHECK_MESSAGE(cz_test::diff(theirs, ours, false) == "", cz_test::diff(theirs, ours, false));
    }
}

TEST_CASE("applier: the tar corpus converts as GNU tar extracts it") {
    std::string corpus = std::string(std::getenv("CZ_TESTDATA") ? std::getenv("CZ_TESTDATA") : "tests/data") + "/tar-corpus";
    if (!std::filesystem::exists(corpus)) {
        MESSAGE("skipped: no tar corpus at " << corpus);
        return;
    }
    int converted = 0;
    for (const auto& de : std::filesystem::directory_iterator(corpus)) {
        auto archive = de.path().string();
        if (de.path().extension() != ".tar") continue;
        CAPTURE(archive);
        temp_dir tmp;
        std::filesystem::create_directories(tmp / "gnu");
        // GNU tar's extraction: owners as numbers, xattrs of every namespace, modes as stored.
        int rc = cz_test::sh(fmt::format("tar --numeric-owner --xattrs --xattrs-include='*' -xpf '{}' -C '{}' 2>/dev/null",
                                         archive, tmp / "gnu"));
        if (rc != 0) continue; // GNU tar does not accept it: cz may convert it or fail cleanly
        auto image = tmp / "image.ext4";
        std::string ctx;
        auto ec = build_image(image, {archive}, &ctx);
        CHECK_MESSAGE(!ec, ctx, ": ", ec.message());
        if (ec) continue;
        check_fsck(image);
        auto ours = image_tree(image, tmp / "mnt");
        auto theirs = cz_test::list_host(tmp / "gnu");
        if (de.path().filename() == "test_pax_xattr_header_libarchive.tar") {
            // GNU tar reads only SCHILY.xattr records and drops LIBARCHIVE.xattr ones; cz keeps
            // them (as bsdtar does). Check they are there, then compare everything else.
            CHECK(ours["file"].xattrs == "user.data1=41424344454647;user.data2=58595a;");
            for (auto& [p, e] : ours) e.xattrs.clear();
        }
        CHECK_MESSAGE(cz_test::diff(theirs, ours, false) == "", cz_test::diff(theirs, ours, false));
        ++converted;
    }
    MESSAGE(converted << " corpus archives converted and compared");
    CHECK(converted > 10);
}

TEST_CASE("applier: hostile layers give a correct image or a clean error, nothing outside") {
    temp_dir tmp;
    std::string marker = fmt::format("cz-escape-marker-{}", ::getpid());
    auto layer = [&](const std::string& name, const std::vector<ent>& entries) {
        auto path = tmp / name;
        write_file(path, cz_test::make_layer(entries));
        return path;
    };
    struct hostile {
        const char* name;
        std::vector<ent> entries;
        bool ok;
    };
    std::string long_path;
    while (long_path.size() < 4200) long_path += std::string(200, 'p') + "/";
    std::vector<hostile> cases = {
        {"traversal", {{'f', "../../../../tmp/" + marker, "x"}, {'f', "/tmp/" + marker, "x"}}, true},
        {"symlink escape chain", {{'l', "a", "/"}, {'l', "a2", "a/.."}, {'l', "b", "../../a2/../tmp"},
                                  {'f', "b/" + marker, "x"}, {'f', "a2/tmp/" + marker + "2", "y"}}, true},
        {"hard link outside", {{'h', "h", "/etc/passwd"}}, false},
        {"hard link missing", {{'f', "a", "a"}, {'h', "h", "nothere"}}, false},
        {"duplicates", {{'f', "x", "1"}, {'d', "x/"}, {'f', "x/y", "2"}, {'f', "x", "3"}, {'l', "x", "t"}}, true},
        {"255-byte name", {{'f', std::string(255, 'n'), "x"}}, true},
        {"256-byte name", {{'f', std::string(256, 'n'), "x"}}, false},
        {"4095-byte path", {{'f', long_path.substr(0, 4094) + "f", "x"}}, true},
        {"4096-byte path", {{'f', long_path.substr(0, 4095) + "f", "x"}}, false},
    };
    for (const auto& c : cases) {
        std::string case_name = c.name;
        CAPTURE(case_name);
        auto image = tmp / "hostile.img";
        std::string ctx;
        auto ec = build_image(image, {layer("l.tar", c.entries)}, &ctx);
        CHECK_MESSAGE(bool(ec) == !c.ok, ctx, ": ", ec.message());
        if (!ec) {
            check_fsck(image);
            // Read back through the reader: a 4095-byte path is past what lstat takes under a
            // mount point.
            cz::unique_fd fd;
            std::unique_ptr<fd_image> img;
            auto r = cz_test::open_image(image, fd, img);
            cz_test::list_image(r);
        } else {
            CHECK(!ctx.empty());
        }
        CHECK(!std::filesystem::exists("/tmp/" + marker));
        CHECK(!std::filesystem::exists("/tmp/" + marker + "2"));
        CHECK(!std::filesystem::exists("/" + marker));
    }
    // The escapes landed inside the image.
    auto image = tmp / "escape.img";
    REQUIRE(!build_image(image, {layer("e.tar", cases[1].entries)}));
    cz::unique_fd fd;
    std::unique_ptr<fd_image> img;
    auto r = cz_test::open_image(image, fd, img);
    std::error_code ec;
    CHECK(r.lookup("tmp/" + marker, ec) != 0);
    CHECK(r.lookup("tmp/" + marker + "2", ec) != 0);
}

// A layer generated on the fly: `dirs` directories of `per_dir` files of `size` bytes each.
struct generated_layer {
    generated_layer(std::size_t d, std::size_t p, std::size_t s) : dirs(d), per_dir(p), size(s) {}
    std::size_t dirs, per_dir, size;
    std::size_t next = 0;
    cz::byte_buffer buf;
    std::size_t at = 0;
    cz::buffer_sink sink{buf};
    cz::tar::writer w{sink};
    bool done = false;

    std::size_t read_some(cz::mutable_bytes out, std::error_code& ec) {
        while (at == buf.size() && !done) {
            buf.clear();
            at = 0;
            for (int k = 0; k < 256 && !done; ++k) {
                if (next == dirs * per_dir) {
                    w.finish(ec);
                    done = true;
                    break;
                }
                cz::tar::entry e;
                e.name = fmt::format("d{:04}/f{:07}", next / per_dir, next);
                e.size = size;
                e.mode = 0644;
                w.add(e, ec);
                std::string data(size, 'x');
                w.write(cz::as_bytes(data), ec);
                ++next;
            }
        }
        std::size_t n = std::min(out.size(), buf.size() - at);
        std::memcpy(out.data(), buf.data() + at, n);
        at += n;
        return n;
    }
};

TEST_CASE("applier: 100k files in one directory and 1M empty files") {
    for (auto shape : {std::pair<std::size_t, std::size_t>{1, 100000}, {1000, 1000}}) {
        const std::size_t dirs = shape.first, per_dir = shape.second;
        const std::size_t total = dirs * per_dir;
        CAPTURE(total);
        temp_dir tmp;
        auto image = tmp / "many.img";
        {
            formatter f(cz::unique_fd(::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
            layer_applier a(f);
            generated_layer g(dirs, per_dir, dirs == 1 ? 10u : 0u);
            a.apply(g);
            f.finish();
        }
        check_fsck(image);
        if (!cz_test::is_root()) continue;
        cz_test::loop_mount m(image, tmp / "mnt");
        REQUIRE(m.mounted);
        std::string count;
        cz_test::sh(fmt::format("ls -f '{}/d0000' | wc -l", m.dir), &count);
        CHECK(std::stoul(count) == per_dir + 2);
        struct stat st {};
        std::size_t last = dirs * per_dir - 1;
        CHECK(::stat(fmt::format("{}/d{:04}/f{:07}", m.dir, last / per_dir, last).c_str(), &st) == 0);
    }
}

TEST_CASE("applier: a 1 TiB sparse file in a GNU sparse tar stays a hole") {
    if (!cz_test::have("tar")) return;
    temp_dir tmp;
    REQUIRE(cz_test::sh(fmt::format("cd '{}' && truncate -s 1T huge && printf tail | dd of=huge bs=1 seek=1099511627000 conv=notrunc 2>/dev/null && tar --sparse -cf huge.tar huge && rm huge", tmp.path)) == 0);
    auto image = tmp / "sparse.img";
    std::string ctx;
    auto ec = build_image(image, {tmp / "huge.tar"}, &ctx);
    REQUIRE_MESSAGE(!ec, ctx, ": ", ec.message());
    check_fsck(image);
    struct stat st {};
    REQUIRE(::stat(image.c_str(), &st) == 0);
    CHECK(st.st_blocks * 512 < (16 << 20)); // the image stays small
    if (!cz_test::is_root()) return;
    cz_test::loop_mount m(image, tmp / "mnt");
    REQUIRE(m.mounted);
    REQUIRE(::stat((m.dir + "/huge").c_str(), &st) == 0);
    CHECK(std::uint64_t(st.st_size) == (std::uint64_t(1) << 40));
    int fd = ::open((m.dir + "/huge").c_str(), O_RDONLY);
    char buf[4] = {};
    CHECK(::pread(fd, buf, 4, 1099511627000) == 4);
    CHECK(std::string(buf, 4) == "tail");
    ::close(fd);
}

} // TEST_SUITE
