// cz/ext4 as a program compiled with CZ_SEPARATE_COMPILATION uses it: the out-of-line code of
// cz/core, its compression piece, cz/tar and cz/ext4 comes from ext4_src.cpp and the program
// links with dependency('cz-ext4') alone. Two compressed layers go through the applier (which
// decodes on a second thread), the image is read back with a moved reader and exported as tar.
#include <cz/ext4.hpp>

#include <cz/core/compression.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <fcntl.h>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

// A tar layer compressed with `format`: (name, content) pairs; a name ending in '/' is a
// directory.
cz::byte_buffer layer(const std::vector<std::pair<std::string, std::string>>& members,
                      cz::compression format) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::compressing_sink packed(sink, format);
    cz::tar::writer w(packed, {.deterministic = true});
    for (const auto& [name, content] : members) {
        cz::tar::entry e;
        e.name = name;
        e.type =
            name.ends_with('/') ? cz::tar::entry_type::directory : cz::tar::entry_type::regular;
        e.mode = e.type == cz::tar::entry_type::directory ? 0755 : 0644;
        e.size = e.type == cz::tar::entry_type::directory ? 0 : content.size();
        w.add(e);
        if (e.size) w.write(cz::as_bytes(content));
    }
    w.finish(); // finishes the compressor too
    return out;
}

std::string file_content(const cz::ext4::reader& image, std::string_view path) {
    std::error_code ec;
    auto ino = image.lookup(path, ec);
    REQUIRE(!ec);
    cz::byte_buffer data;
    cz::buffer_sink sink(data);
    image.read_file(ino, sink, ec);
    REQUIRE(!ec);
    return cz::to_string(data);
}

} // namespace

TEST_SUITE("separate compilation: ext4") {

    TEST_CASE("gzip and zstd layers to an image, read back and exported") {
        cz_test::temp_dir tmp;
        const auto path = tmp / "rootfs.img";
        {
            cz::ext4::formatter image(
                cz::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
            cz::ext4::layer_applier applier(image);
            auto lower = layer({{"etc/", ""}, {"etc/hostname", "cz\n"}, {"etc/old", "gone"}},
                               cz::compression::gzip);
            auto upper =
                layer({{"etc/.wh.old", ""}, {"etc/motd", "hello\n"}}, cz::compression::zstd);
            for (const auto* l : {&lower, &upper}) {
                cz::memory_source src(*l);
                std::error_code ec;
                applier.apply(src, ec);
                REQUIRE_MESSAGE(!ec, cz::to_string(applier.error_detail()));
            }
            CHECK(applier.layers() == 2);
            image.finish();
        }

        auto opened = cz::ext4::reader::open(path);
        cz::ext4::reader image(std::move(opened));
        CHECK(file_content(image, "/etc/hostname") == "cz\n");
        CHECK(file_content(image, "etc/motd") == "hello\n");
        std::error_code ec;
        image.lookup("/etc/old", ec);
        CHECK(ec == cz::ext4::errc::not_found);

        cz::byte_buffer exported;
        cz::buffer_sink sink(exported);
        cz::ext4::export_tar(image, sink);
        cz::tar::reader r(cz::bytes_view{exported});
        std::set<std::string> names;
        while (const auto* e = r.next())
            names.insert(e->name);
        CHECK(names.count("etc/hostname") == 1);
        CHECK(names.count("etc/motd") == 1);
        CHECK(names.count("etc/old") == 0);
    }

} // TEST_SUITE
