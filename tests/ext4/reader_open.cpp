// cz::ext4::reader::open: one call opens an image by path, and the reader owns the file.
#include <cz/ext4/reader.hpp>

#include <cz/core/stream.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/ext4/layout.hpp>

#include "support/support.hpp"

#include <fcntl.h>
#include <filesystem>
#include <optional>

using namespace cz::ext4;
using cz_test::temp_dir;

namespace {

// Writes an image holding /etc/hostname with `content`.
void make_image(const std::string& path, std::string_view content) {
    formatter f(cz::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
    std::error_code ec;
    node_id etc = f.make_directory(formatter::root, "etc", {}, ec);
    REQUIRE_FALSE(ec);
    node_id file = f.add_file(etc, "hostname", {}, ec);
    REQUIRE_FALSE(ec);
    cz::memory_source src(cz::as_bytes(content));
    f.write_file(file, 0, src, content.size(), ec);
    REQUIRE_FALSE(ec);
    f.finish();
}

std::string read_path(const reader& r, std::string_view path) {
    std::error_code ec;
    std::uint32_t ino = r.lookup(path, ec);
    REQUIRE_FALSE(ec);
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    r.read_file(ino, sink, ec);
    REQUIRE_FALSE(ec);
    return {reinterpret_cast<const char*>(out.data()), out.size()};
}

std::size_t open_fds() {
    return std::size_t(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                     std::filesystem::directory_iterator()));
}

} // namespace

TEST_SUITE("ext4") {

    TEST_CASE("reader::open reads an image in one call and owns its file") {
        temp_dir tmp;
        auto path = tmp / "one.img";
        make_image(path, "box\n");
        const std::size_t fds_before = open_fds();
        std::error_code ec;
        std::optional<reader> r = reader::open(path, ec);
        REQUIRE_FALSE(ec);
        CHECK(open_fds() == fds_before + 1);
        CHECK(r->info().block_size == block_size);
        CHECK(read_path(*r, "/etc/hostname") == "box\n");

        // Copies share the file; it closes when the last one goes.
        reader copy = *r;
        r.reset();
        CHECK(open_fds() == fds_before + 1);
        CHECK(read_path(copy, "etc/hostname") == "box\n");
        reader moved = std::move(copy);
        CHECK(read_path(moved, "etc/hostname") == "box\n");
        { reader gone = std::move(moved); }
        CHECK(open_fds() == fds_before);

        // The throwing overload.
        reader thrown = reader::open(path);
        CHECK(read_path(thrown, "/etc/hostname") == "box\n");
    }

    TEST_CASE(
        "reader::open: a missing file or one that is no ext4 image is an error, never a crash") {
        temp_dir tmp;
        const std::size_t fds_before = open_fds();
        std::error_code ec;
        reader missing = reader::open(tmp / "absent.img", ec);
        CHECK(ec == std::errc::no_such_file_or_directory);
        try {
            (void)reader::open(tmp / "absent.img");
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()).find("absent.img") != std::string::npos);
            CHECK(e.code() == std::errc::no_such_file_or_directory);
        }

        cz_test::write_file(tmp / "zeros.img", std::string(8192, '\0'));
        reader zeros = reader::open(tmp / "zeros.img", ec);
        CHECK(ec == errc::unsupported_image);
        cz_test::write_file(tmp / "short.img", "not an image");
        reader short_file = reader::open(tmp / "short.img", ec);
        CHECK(ec == errc::corrupt_image);
        reader dir = reader::open(tmp.str(), ec); // EISDIR or EINVAL, as the file system says
        CHECK(ec);
        CHECK(open_fds() == fds_before); // nothing left open after a failure

        // A reader that failed to open reads nothing, whatever the caller asks.
        for (const reader* r : {&missing, &zeros, &short_file, &dir}) {
            r->stat(root_inode, ec);
            CHECK(ec == errc::corrupt_image);
            r->lookup("/etc", ec);
            CHECK(ec);
            cz::null_sink sink;
            r->read_file(root_inode, sink, ec);
            CHECK(ec);
        }
    }

} // TEST_SUITE
