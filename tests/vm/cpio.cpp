#include <cz/vm/cpio.hpp>

#include <cz/vm/initramfs.hpp>

#include "support/support.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

using namespace cz::vm;

namespace {

// A minimal newc reader for checking the writer's output field by field.
struct parsed_entry {
    std::uint32_t ino, mode, nlink, size, rdev_major, rdev_minor, namesize;
    std::string name, data;
};

std::uint32_t hex_field(std::string_view h) {
    std::uint32_t v = 0;
    for (char c : h) v = v * 16 + static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
    return v;
}

std::vector<parsed_entry> parse(std::string_view a) {
    std::vector<parsed_entry> out;
    std::size_t pos = 0;
    while (true) {
        REQUIRE(pos % 4 == 0);
        REQUIRE(pos + cpio_header_size <= a.size());
        REQUIRE(a.substr(pos, 6) == "070701");
        auto field = [&](int i) { return hex_field(a.substr(pos + 6 + 8 * static_cast<std::size_t>(i), 8)); };
        parsed_entry e{field(0), field(1), field(4), field(6), field(9), field(10), field(11), {}, {}};
        e.name = std::string(a.substr(pos + cpio_header_size, e.namesize - 1));
        REQUIRE(a[pos + cpio_header_size + e.namesize - 1] == '\0');
        pos += (cpio_header_size + e.namesize + 3) / 4 * 4;
        e.data = std::string(a.substr(pos, e.size));
        pos += (e.size + 3) / 4 * 4;
        out.push_back(e);
        if (e.name == "TRAILER!!!") break;
    }
    CHECK(pos == a.size());
    return out;
}

std::string write_archive(const std::function<void(cpio_writer&)>& f) {
    cz::byte_buffer buf;
    cz::buffer_sink sink(buf);
    cpio_writer w(sink);
    f(w);
    w.finish();
    CHECK(w.bytes_written() == buf.size());
    return cz::to_string(buf);
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("cpio: newc headers, padding, inode numbers and the trailer") {
    auto a = write_archive([](cpio_writer& w) {
        w.add({.path = "dev", .type = cpio_type::directory, .permissions = 0755});
        w.add({.path = "dev/console", .type = cpio_type::char_device, .permissions = 0600,
               .rdev_major = 5, .rdev_minor = 1});
        w.add_file({.path = "/init", .permissions = 0755}, cz::as_bytes(std::string_view("#!/bin/sh\n")));
        w.add_file({.path = "./a/b", .permissions = 0644}, cz::as_bytes(std::string_view("x")));
        w.add_symlink({.path = "bin/sh"}, "busybox");
    });
    CHECK(a.size() % 4 == 0);
    auto e = parse(a);
    REQUIRE(e.size() == 6);
    CHECK(e[0].name == "dev");
    CHECK(e[0].mode == 040755);
    CHECK(e[0].nlink == 2);
    CHECK(e[1].name == "dev/console");
    CHECK(e[1].mode == 020600);
    CHECK(e[1].rdev_major == 5);
    CHECK(e[1].rdev_minor == 1);
    CHECK(e[2].name == "init");
    CHECK(e[2].mode == 0100755);
    CHECK(e[2].data == "#!/bin/sh\n");
    CHECK(e[3].name == "a/b");
    CHECK(e[3].data == "x");
    CHECK(e[4].name == "bin/sh");
    CHECK(e[4].mode == 0120777);
    CHECK(e[4].data == "busybox");
    CHECK(e[5].name == "TRAILER!!!");
    CHECK(e[5].nlink == 1);
    for (std::size_t i = 0; i < 5; ++i) CHECK(e[i].ino == i + 1);
}

TEST_CASE("cpio: every name and data length pads correctly") {
    for (std::size_t name_len = 1; name_len <= 9; ++name_len)
        for (std::size_t data_len = 0; data_len <= 9; ++data_len) {
            std::string name(name_len, 'n'), data(data_len, 'd');
            auto a = write_archive([&](cpio_writer& w) {
                w.add_file({.path = name}, cz::as_bytes(std::string_view(data)));
            });
            auto e = parse(a);
            REQUIRE(e.size() == 2);
            CHECK(e[0].name == name);
            CHECK(e[0].data == data);
        }
}

TEST_CASE("cpio: archive paths are normalised, and escapes are refused") {
    std::error_code ec;
    CHECK(normalize_archive_path("/a//b/./c/", ec) == "a/b/c");
    CHECK(!ec);
    for (std::string_view bad : {std::string_view(""), std::string_view("/"), std::string_view("."), std::string_view("a/../b"), std::string_view(".."), std::string_view("a\0b", 3)}) {
        ec.clear();
        normalize_archive_path(bad, ec);
        CHECK(ec == errc::bad_archive_path);
    }
    cz::byte_buffer buf;
    cz::buffer_sink sink(buf);
    cpio_writer w(sink);
    w.add_file({.path = "../etc/passwd"}, {}, ec);
    CHECK(ec == errc::bad_archive_path);
    ec.clear();
    w.add_symlink({.path = "x"}, "", ec);
    CHECK(ec == errc::bad_archive_path);
    ec.clear();
    w.add({.path = "file"}, ec); // a regular file needs its data
    CHECK(ec == cz::errc::invalid_argument);
    CHECK_THROWS_AS(w.add_file({.path = ".."}, {}), cz::system_error);
}

TEST_CASE("cpio: a source shorter or longer than announced is an error") {
    std::string data = "abcdef";
    std::error_code ec;
    {
        cz::byte_buffer buf;
        cz::buffer_sink sink(buf);
        cpio_writer w(sink);
        cz::memory_source src(cz::as_bytes(std::string_view(data)));
        w.add_file({.path = "f"}, 10, src, ec);
        CHECK(ec == errc::file_changed);
    }
    {
        ec.clear();
        cz::byte_buffer buf;
        cz::buffer_sink sink(buf);
        cpio_writer w(sink);
        cz::memory_source src(cz::as_bytes(std::string_view(data)));
        w.add_file({.path = "f"}, 3, src, ec);
        CHECK(ec == errc::file_changed);
    }
    {
        ec.clear();
        cz::byte_buffer buf;
        cz::buffer_sink sink(buf);
        cpio_writer w(sink);
        cz::memory_source src(cz::as_bytes(std::string_view(data)));
        w.add_file({.path = "f"}, cpio_max_file_size + 1, src, ec);
        CHECK(ec == errc::archive_entry_too_large);
    }
}

TEST_CASE("cpio: sink errors propagate") {
    struct failing_sink {
        int left;
        void write(cz::bytes_view, std::error_code& ec) {
            if (left-- <= 0) ec = std::make_error_code(std::errc::no_space_on_device);
        }
        void finish(std::error_code&) {}
    };
    // Fail the Nth write, for every N the archive makes: each must surface as the error.
    for (int n = 0; n < 8; ++n) {
        failing_sink sink{n};
        cpio_writer w(sink);
        std::error_code ec;
        w.add_file({.path = "a"}, cz::as_bytes(std::string_view("abc")), ec);
        if (!ec) w.add_symlink({.path = "b"}, "a", ec);
        if (!ec) w.finish(ec);
        CHECK(ec == std::errc::no_space_on_device);
    }
}

TEST_CASE("initramfs: parents, the console node, modules and their load order") {
    cz_test::temp_dir tmp("cz-initramfs-test");
    const auto& dir = tmp.path;
    std::ofstream(dir / "b.ko") << "module-b";
    std::ofstream(dir / "a.ko") << "module-a";
    initramfs_builder b;
    b.init_script("#!/bin/sh\necho hi\n");
    b.add_bytes("etc/deep/file.conf", "k=v\n");
    b.add_symlink("bin/sh", "busybox");
    b.add_modules({dir / "b.ko", dir / "a.ko"});
    b.add_bytes("etc/deep/file.conf", "replaced\n");
    cz::byte_buffer buf;
    cz::buffer_sink sink(buf);
    std::error_code ec;
    b.write(sink, ec);
    REQUIRE(!ec);
    std::map<std::string, parsed_entry> by_name;
    std::vector<std::string> order;
    for (auto& e : parse(cz::to_string(buf))) {
        order.push_back(e.name);
        by_name[e.name] = e;
    }
    CHECK(by_name.at("dev/console").mode == 020600);
    CHECK(by_name.at("tmp").mode == 041777);
    CHECK(by_name.at("init").mode == 0100755);
    CHECK(by_name.at("etc").mode == 040755);
    CHECK(by_name.at("etc/deep/file.conf").data == "replaced\n");
    CHECK(by_name.at("lib/modules/b.ko").data == "module-b");
    CHECK(by_name.at("lib/modules/load-order").data == "b.ko\na.ko\n");
    // Every parent comes before its children.
    auto index = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
    CHECK(index("etc") < index("etc/deep"));
    CHECK(index("etc/deep") < index("etc/deep/file.conf"));
    CHECK(index("lib/modules") < index("lib/modules/b.ko"));
    CHECK(std::count(order.begin(), order.end(), "etc/deep/file.conf") == 1);

    initramfs_builder bad;
    bad.add_file("x", dir / "missing");
    cz::byte_buffer buf2;
    cz::buffer_sink sink2(buf2);
    bad.write(sink2, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
}

} // TEST_SUITE
