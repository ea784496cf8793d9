// The layer applier against real peers: the tree `umoci unpack` makes from the same layers, GNU
// tar's extraction of the tar corpus, e2fsck -fn on every image, and the kernel's view of every
// image through a loop mount (root only). Hostile layers must give the tree umoci or GNU tar
// makes of them, or an error where they fail too, and write nothing on the host but the image.
#include <cz/ext4/applier.hpp>

#include "layers.hpp"
#include "tree.hpp"

#include <cz/core/sha256.hpp>
#include <cz/ext4/reader.hpp>
#include <cz/tar/writer.hpp>

#include <doctest/doctest.h>

#include <filesystem>

using namespace cz::ext4;
using cz_test::ent;
using cz_test::temp_dir;

namespace {

void write_bytes(const std::string& path, cz::bytes_view data) {
    cz_test::write_file(path, cz::as_chars(data));
}

// Builds an image from layer files; returns the error (and context) if any.
std::error_code build_image(const std::string& image, const std::vector<std::string>& layers,
                            std::string* context = nullptr, format_options opt = {}) {
    formatter f(cz::unique_fd(::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)),
                opt);
    layer_applier a(f);
    std::error_code ec;
    for (const auto& l : layers) {
        cz::unique_fd fd(::open(l.c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        cz::fd_source src(fd.get());
        a.apply(src, ec);
        if (ec) {
            if (context) *context = cz::to_string(a.error_detail());
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

// The image's tree as the kernel sees it (root only), lost+found left out.
cz_test::tree image_tree(const std::string& image, const std::string& mnt) {
    auto t = cz_test::kernel_tree(image, mnt);
    t.erase("lost+found");
    return t;
}

constexpr const char* needs_root = "the image is read through a loop mount, which needs root";

// An OCI image layout with one image, for umoci.
std::string oci_layout(const std::string& dir, const std::vector<cz::byte_buffer>& gz_layers,
                       const std::vector<cz::byte_buffer>& plain_layers) {
    std::filesystem::create_directories(dir + "/blobs/sha256");
    auto blob = [&](cz::bytes_view data) {
        auto d = cz::sha256(data);
        write_bytes(dir + "/blobs/sha256/" + d.hex(), data);
        return d;
    };
    std::string layers_json, diff_ids;
    for (std::size_t i = 0; i < gz_layers.size(); ++i) {
        auto d = blob(gz_layers[i]);
        layers_json +=
            fmt::format("{}{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                        "\"digest\":\"{}\",\"size\":{}}}",
                        i ? "," : "", d.str(), gz_layers[i].size());
        diff_ids += fmt::format("{}\"{}\"", i ? "," : "", cz::sha256(plain_layers[i]).str());
    }
    std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" +
                         diff_ids + "]}}";
    auto cd = blob(cz::as_bytes(config));
    std::string manifest = fmt::format(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{{\"mediaType\":\"application/"
        "vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},"
        "\"layers\":[{}]}}",
        cd.str(), config.size(), layers_json);
    auto md = blob(cz::as_bytes(manifest));
    std::string index = fmt::format("{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":"
                                    "\"application/vnd.oci.image.manifest.v1+json\","
                                    "\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"org."
                                    "opencontainers.image.ref.name\":\"t\"}}}}]}}",
                                    md.str(), manifest.size());
    cz_test::write_file(dir + "/index.json", index);
    cz_test::write_file(dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    return dir + ":t";
}

struct layer_case {
    const char* name;
    std::vector<std::vector<ent>> layers;
};

// Multi-layer cases, each checked against umoci's unpack of the same layers.
std::vector<layer_case> layer_cases() {
    return {
        {"whiteout a file",
         {{{'d', "d/"}, {'f', "d/a", "a"}, {'f', "d/b", "b"}}, {{'f', "d/.wh.a"}}}},
        {"whiteout a directory",
         {{{'d', "d/"}, {'d', "d/x/"}, {'f', "d/x/y", "y"}}, {{'f', "d/.wh.x"}}}},
        {"opaque marker first",
         {{{'d', "d/"},
           {'f', "d/a", "a"},
           {'d', "d/sub/"},
           {'f', "d/sub/b", "b"},
           {'f', "keep", "k"}},
          {{'d', "d/"}, {'f', "d/.wh..wh..opq"}, {'f', "d/c", "c"}}}},
        {"opaque marker last",
         {{{'d', "d/"}, {'f', "d/a", "a"}, {'f', "keep", "k"}},
          {{'d', "d/"}, {'f', "d/c", "c"}, {'f', "d/.wh..wh..opq"}}}},
        {"file replaced by directory", {{{'f', "x", "file"}}, {{'d', "x/"}, {'f', "x/y", "y"}}}},
        {"directory replaced by file", {{{'d', "x/"}, {'f', "x/y", "y"}}, {{'f', "x", "file"}}}},
        {"directory replaced by symlink",
         {{{'d', "x/"}, {'f', "x/y", "y"}}, {{'l', "x", "elsewhere"}}}},
        {"symlink replaced by directory",
         {{{'l', "x", "elsewhere"}}, {{'d', "x/"}, {'f', "x/z", "z"}}}},
        {"hard links across layers",
         {{{'f', "a", "data"}, {'h', "b", "a"}}, {{'h', "c", "b"}}, {{'f', "a", "new"}}}},
        {"delete then re-add",
         {{{'f', "f", "old"}, {'d', "d/"}, {'f', "d/x", "x"}},
          {{'f', ".wh.f"}, {'f', ".wh.d"}},
          {{'f', "f", "new"}, {'d', "d/"}, {'f', "d/y", "y"}}}},
        {"whiteout and re-add in one layer",
         {{{'d', "d/"}, {'f', "d/a", "a"}}, {{'f', ".wh.d"}, {'d', "d/"}, {'f', "d/b", "b"}}}},
        {"directory metadata replaced",
         {{{'d', "d/", "", 0755}, {'f', "d/a", "a"}}, {{'d', "d/", "", 0700, 5, 6}}}},
        {"modes, owners, devices, xattrs",
         {{{'f', "suid", "s", 04755, 1000, 1000},
           {'d', "tmp/", "", 01777},
           {'c', "null", "1:3", 0666},
           {'p', "fifo", "", 0600},
           {'f',
            "caps",
            "c",
            0755,
            0,
            0,
            {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00"
                                                 "\x00\x00\x00\x00\x00\x00\x00\x00",
                                                 20)}}},
           {'f', "ux", "u", 0644, 0, 0, {{"user.k", "v"}}}}}},
    };
}

// `umoci unpack` of an OCI layout holding these layers into `bundle`: its exit status, with its
// output in `log`.
int umoci_unpack(const std::string& layout_dir, const std::vector<cz::byte_buffer>& gz,
                 const std::vector<cz::byte_buffer>& plain, const std::string& bundle,
                 std::string& log) {
    auto ref = oci_layout(layout_dir, gz, plain);
    return cz_test::sh(
        fmt::format("umoci unpack --image {} {} 2>&1", cz_test::quote(ref), cz_test::quote(bundle)),
        &log);
}

// GNU tar's extraction: owners as numbers, xattrs of every namespace, modes as stored.
int gnu_tar_extract(const std::string& archive, const std::string& dir, std::string& log) {
    std::filesystem::create_directories(dir);
    return cz_test::sh(
        fmt::format("tar --numeric-owner --xattrs --xattrs-include='*' -xpf {} -C {} 2>&1",
                    cz_test::quote(archive), cz_test::quote(dir)),
        &log);
}

// Runs with `dir` as the working directory and goes back to the previous one when destroyed.
struct working_directory {
    cz::unique_fd previous{::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    explicit working_directory(const std::string& dir) {
        REQUIRE(previous);
        REQUIRE(::chdir(dir.c_str()) == 0);
    }
    ~working_directory() {
        if (::fchdir(previous.get()) != 0) std::perror("fchdir");
    }
    working_directory(const working_directory&) = delete;
    working_directory& operator=(const working_directory&) = delete;
};

} // namespace

TEST_SUITE("ext4") {

    TEST_CASE("applier: multi-layer cases agree with umoci unpack") {
        if (!cz_test::have("umoci"))
            CZ_SKIP("umoci is not installed (scripts/install-deps installs it)");
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
        for (const auto& c : layer_cases()) {
            CAPTURE(c.name);
            temp_dir tmp;
            std::vector<cz::byte_buffer> gz, plain;
            std::vector<std::string> files;
            for (std::size_t i = 0; i < c.layers.size(); ++i) {
                plain.push_back(cz_test::make_layer(c.layers[i]));
                gz.push_back(cz_test::make_layer(c.layers[i], cz::compression::gzip));
                files.push_back(tmp / fmt::format("layer{}.tar.gz", i));
                write_bytes(files.back(), gz.back());
            }
            auto image = tmp / "image.ext4";
            std::string ctx;
            auto ec = build_image(image, files, &ctx);
            REQUIRE_MESSAGE(!ec, ctx, ": ", ec.message());
            check_fsck(image);
            auto ours = image_tree(image, tmp / "mnt");

            std::string log;
            REQUIRE_MESSAGE(umoci_unpack(tmp / "oci", gz, plain, tmp / "bundle", log) == 0, log);
            auto theirs = cz_test::list_host(tmp / "bundle/rootfs");
            CHECK_MESSAGE(cz_test::diff(theirs, ours, false) == "",
                          cz_test::diff(theirs, ours, false));
        }
    }

    TEST_CASE("applier: the tar corpus converts as GNU tar extracts it") {
        if (!cz_test::have("bsdtar")) CZ_SKIP("bsdtar (libarchive-tools) is not installed");
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
        auto corpus = cz_test::data_dir() / "tar-corpus";
        REQUIRE_MESSAGE(std::filesystem::is_directory(corpus), corpus.string());
        int converted = 0, refused = 0;
        for (const auto& de : std::filesystem::directory_iterator(corpus)) {
            auto archive = de.path().string();
            if (de.path().extension() != ".tar") continue;
            CAPTURE(archive);
            temp_dir tmp;
            auto image = tmp / "image.ext4";
            std::string ctx;
            auto ec = build_image(image, {archive}, &ctx);
            std::string log;
            if (gnu_tar_extract(archive, tmp / "gnu", log) != 0) {
                // The corpus's damaged archives: bsdtar refuses them too, and so must cz, naming
                // where it stopped.
                ++refused;
                std::filesystem::create_directories(tmp / "bsd");
                CHECK_MESSAGE(
                    cz_test::sh(fmt::format("bsdtar -xpf {} -C {} 2>&1", cz_test::quote(archive),
                                            cz_test::quote(tmp / "bsd")),
                                &log) != 0,
                    "GNU tar refuses it, bsdtar does not: ", log);
                CHECK_MESSAGE(ec, "GNU tar and bsdtar refuse it, cz converted it");
                CHECK(!ctx.empty());
                continue;
            }
            CHECK_MESSAGE(!ec, ctx, ": ", ec.message());
            if (ec) continue;
            check_fsck(image);
            auto ours = image_tree(image, tmp / "mnt");
            auto theirs = cz_test::list_host(tmp / "gnu");
            if (de.path().filename() == "test_pax_xattr_header_libarchive.tar") {
                // GNU tar reads only SCHILY.xattr records and drops LIBARCHIVE.xattr ones; cz keeps
                // them (as bsdtar does). Check they are there, then compare everything else.
                CHECK(ours["file"].xattrs == "user.data1=41424344454647;user.data2=58595a;");
                for (auto& [p, e] : ours)
                    e.xattrs.clear();
            }
            CHECK_MESSAGE(cz_test::diff(theirs, ours, false) == "",
                          cz_test::diff(theirs, ours, false));
            ++converted;
        }
        MESSAGE(converted, " corpus archives converted and compared with GNU tar, ", refused,
                " refused by GNU tar, bsdtar and cz");
        CHECK(converted > 10);
    }

    TEST_CASE("applier: hostile layers: the peer's tree or its error, nothing outside the image") {
        if (!cz_test::have("umoci"))
            CZ_SKIP("umoci is not installed (scripts/install-deps installs it)");
        if (!cz_test::is_root()) CZ_SKIP(needs_root);
        std::string marker = fmt::format("cz-escape-marker-{}", ::getpid());
        // The reference for each layer: umoci, whose unpack follows OCI semantics (names clamped at
        // the root, symlinks resolved inside it), or GNU tar where umoci cannot go (umoci writes
        // through absolute host paths, so a 4095-byte path inside the rootfs is past PATH_MAX; GNU
        // tar works relative to the directory). `ok`: the peer, and cz, accept the layer.
        enum class peer { umoci, gnu_tar };
        struct hostile {
            const char* name;
            std::vector<ent> entries;
            peer reference;
            bool ok;
        };
        std::string long_path;
        while (long_path.size() < 4200)
            long_path += std::string(200, 'p') + "/";
        std::vector<hostile> cases = {
            {"traversal",
             {{'f', "../../../../tmp/" + marker, "x"}, {'f', "/tmp/" + marker, "x"}},
             peer::umoci,
             true},
            {"symlink escape chain",
             {{'l', "a", "/"},
              {'l', "a2", "a/.."},
              {'l', "b", "../../a2/../tmp"},
              {'f', "b/" + marker, "x"},
              {'f', "a2/tmp/" + marker + "2", "y"}},
             peer::umoci,
             true},
            {"hard link outside", {{'h', "h", "/etc/passwd"}}, peer::umoci, false},
            {"hard link missing", {{'f', "a", "a"}, {'h', "h", "nothere"}}, peer::umoci, false},
            {"duplicates",
             {{'f', "x", "1"}, {'d', "x/"}, {'f', "x/y", "2"}, {'f', "x", "3"}, {'l', "x", "t"}},
             peer::umoci,
             true},
            {"255-byte name", {{'f', std::string(255, 'n'), "x"}}, peer::umoci, true},
            {"256-byte name", {{'f', std::string(256, 'n'), "x"}}, peer::umoci, false},
            {"4095-byte path", {{'f', long_path.substr(0, 4094) + "f", "x"}}, peer::gnu_tar, true},
            {"4096-byte path", {{'f', long_path.substr(0, 4095) + "f", "x"}}, peer::gnu_tar, false},
        };
        for (const auto& c : cases) {
            std::string case_name = c.name;
            CAPTURE(case_name);
            temp_dir tmp;
            // work/ holds the layer and the image; canary/deep/er/and/deeper is the working
            // directory while cz applies the layer, so a host write through a relative name would
            // land under canary/, and one through an absolute name in /tmp or /.
            std::filesystem::create_directories(tmp / "work");
            std::filesystem::create_directories(tmp / "canary/deep/er/and/deeper");
            auto layer = tmp / "work/layer.tar";
            auto image = tmp / "work/image.ext4";
            auto plain = cz_test::make_layer(c.entries);
            write_bytes(layer, plain);
            std::string ctx;
            std::error_code ec;
            {
                working_directory in(tmp / "canary/deep/er/and/deeper");
                ec = build_image(image, {layer}, &ctx);
            }
            CHECK_MESSAGE(bool(ec) == !c.ok, ctx, ": ", ec.message());
            if (ec) CHECK(!ctx.empty());

            std::string log;
            int rc;
            std::string peer_root;
            if (c.reference == peer::umoci) {
                rc = umoci_unpack(tmp / "peer/oci",
                                  {cz_test::make_layer(c.entries, cz::compression::gzip)}, {plain},
                                  tmp / "peer/bundle", log);
                peer_root = tmp / "peer/bundle/rootfs";
            } else {
                rc = gnu_tar_extract(layer, tmp / "peer/gnu", log);
                peer_root = tmp / "peer/gnu";
            }
            CHECK_MESSAGE((rc == 0) == c.ok, "the peer exited ", rc, ": ", log);
            if (!ec && rc == 0) {
                check_fsck(image);
                auto ours = image_tree(image, tmp / "mnt");
                auto theirs = cz_test::list_host(peer_root);
                CHECK_MESSAGE(cz_test::diff(theirs, ours, false) == "",
                              cz_test::diff(theirs, ours, false));
            }

            // Nothing on the host but the image: work/ holds the two files, canary/ its empty
            // directories, and no marker is in /tmp or /.
            auto work = cz_test::list_host(tmp / "work");
            CHECK(work.size() == 2);
            CHECK(work.count("layer.tar") == 1);
            CHECK(work.count("image.ext4") == 1);
            auto canary = cz_test::list_host(tmp / "canary");
            CHECK(canary.size() == 4);
            for (const auto& entry : canary) // (clang 14 captures no structured bindings)
                CHECK_MESSAGE(entry.second.type == 'd', entry.first);
            for (const auto& name : {"/tmp/" + marker, "/tmp/" + marker + "2", "/" + marker})
                CHECK_MESSAGE(!std::filesystem::exists(name), name);
        }
    }

    // A layer generated on the fly: `dirs` directories of `per_dir` files of `size` bytes each.
    struct generated_layer {
        generated_layer(std::size_t d, std::size_t p, std::size_t s)
            : dirs(d), per_dir(p), size(s) {}
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
                formatter f(cz::unique_fd(
                    ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
                layer_applier a(f);
                generated_layer g(dirs, per_dir, dirs == 1 ? 10u : 0u);
                a.apply(g);
                f.finish();
            }
            check_fsck(image);
            if (!cz_test::is_root()) {
                cz_test::skip(
                    "the kernel's view of the images needs a loop mount, which needs root");
                continue;
            }
            cz_test::loop_mount m(image, tmp / "mnt");
            REQUIRE_MESSAGE(m.mounted, m.log);
            auto count =
                cz_test::sh_ok(fmt::format("ls -f {} | wc -l", cz_test::quote(m.dir + "/d0000")));
            CHECK(std::stoul(count) == per_dir + 2);
            count = cz_test::sh_ok(fmt::format("find {} -type f | wc -l", cz_test::quote(m.dir)));
            CHECK(std::stoul(count) == total);
            struct stat st {};
            std::size_t last = dirs * per_dir - 1;
            CHECK(::stat(fmt::format("{}/d{:04}/f{:07}", m.dir, last / per_dir, last).c_str(),
                         &st) == 0);
        }
    }

    TEST_CASE("applier: a 1 TiB sparse file in a GNU sparse tar stays a hole") {
        if (!cz_test::have("tar"))
            CZ_SKIP("GNU tar is not installed (it writes the sparse archive)");
        temp_dir tmp;
        cz_test::sh_ok(fmt::format(
            "cd {} && truncate -s 1T huge && printf tail | dd of=huge bs=1 seek=1099511627000 "
            "conv=notrunc 2>/dev/null && tar --sparse -cf huge.tar huge && rm huge",
            cz_test::quote(tmp.str())));
        auto image = tmp / "sparse.img";
        std::string ctx;
        auto ec = build_image(image, {tmp / "huge.tar"}, &ctx);
        REQUIRE_MESSAGE(!ec, ctx, ": ", ec.message());
        check_fsck(image);
        struct stat st {};
        REQUIRE(::stat(image.c_str(), &st) == 0);
        CHECK(st.st_blocks * 512 < (16 << 20)); // the image stays small
        if (!cz_test::is_root())
            CZ_SKIP(
                "reading the file back through the kernel needs a loop mount, which needs root");
        cz_test::loop_mount m(image, tmp / "mnt");
        REQUIRE_MESSAGE(m.mounted, m.log);
        REQUIRE(::stat((m.dir + "/huge").c_str(), &st) == 0);
        CHECK(std::uint64_t(st.st_size) == (std::uint64_t(1) << 40));
        CHECK(st.st_blocks <= 8); // one 4 KiB block of data, the rest a hole
        cz::unique_fd fd(::open((m.dir + "/huge").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        char buf[4] = {};
        CHECK(::pread(fd.get(), buf, 4, 1099511627000) == 4);
        CHECK(std::string(buf, 4) == "tail");
        CHECK(::pread(fd.get(), buf, 4, 1099511627000 - 4) == 4);
        CHECK(std::string(buf, 4) == std::string(4, '\0'));
    }

} // TEST_SUITE
