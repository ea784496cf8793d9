// The formatter and the reader under failing system calls (Beast's fail_count): every image-file
// call goes through cz::sys, so a test can fail the Nth one. For N = 0, 1, 2, ... a run either
// ends with the injected error, or (once N is past the last call) succeeds with a whole image.
#include <cz/core/stream.hpp>
#include <cz/core/syscall.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/ext4/reader.hpp>

#include "support/support.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <vector>

using namespace cz::ext4;
using cz_test::temp_dir;

namespace {

// Fails the Nth system call (counting from 0) with EIO and records the names of all calls seen.
struct fail_count {
    int n;
    std::vector<std::string> calls;
    cz::sys::fault_injector injector() {
        return [this](const char* call) {
            calls.emplace_back(call);
            return int(calls.size()) - 1 == n ? EIO : 0;
        };
    }
    bool fired() const { return int(calls.size()) > n; }
};

std::string pattern(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = char(seed + char(i % 23) + char(i / 4096));
    return s;
}

const std::string big = pattern(3 * 4096 + 100, 'a'); // three blocks and a tail
const std::string small = "box\n";

// Builds the image, going on past errors the way a careless caller would; returns the first
// error any call (finish() included) reported and the error finish() reported.
std::pair<std::error_code, std::error_code> build(const std::string& path) {
    std::error_code first, ec;
    auto note = [&] {
        if (ec && !first) first = ec;
        ec = {};
    };
    formatter f(cz::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
    metadata dir;
    dir.mode = 0755;
    node_id etc = f.make_directory(formatter::root, "etc", dir, ec);
    note();
    node_id host = f.add_file(etc, "hostname", {}, ec);
    note();
    cz::memory_source s1(cz::as_bytes(std::string_view(small)));
    f.write_file(host, 0, s1, small.size(), ec);
    note();
    metadata with_xattr;
    with_xattr.xattrs.push_back({"user.note", std::string(300, 'x')});
    node_id data = f.add_file(formatter::root, "data", with_xattr, ec);
    note();
    // Two writes into one file: the second starts inside the first one's tail block.
    cz::memory_source s2(cz::as_bytes(std::string_view(big).substr(0, 5000)));
    f.write_file(data, 0, s2, 5000, ec);
    note();
    cz::memory_source s3(cz::as_bytes(std::string_view(big).substr(5000)));
    f.write_file(data, 5000, s3, big.size() - 5000, ec);
    note();
    // A directory of more than one block.
    node_id many = f.make_directory(formatter::root, "many", dir, ec);
    note();
    for (int i = 0; i < 150; ++i) {
        f.add_symlink(many, "link-with-a-longish-name-" + std::to_string(i), "../etc/hostname", {},
                      ec);
        note();
    }
    f.finish(ec);
    if (!first) first = ec;
    return {first, ec};
}

std::string read_path(const reader& r, std::string_view path, std::error_code& ec) {
    std::uint32_t ino = r.lookup(path, ec);
    if (ec) return {};
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    r.read_file(ino, sink, ec);
    return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

} // namespace

TEST_SUITE("ext4 faults") {

    TEST_CASE("the formatter fails cleanly on each failing system call") {
        temp_dir tmp;
        const std::string path = tmp / "image";
        bool succeeded = false;
        int n = 0;
        for (; n < 10000 && !succeeded; ++n) {
            CAPTURE(n);
            fail_count fc{n, {}};
            std::pair<std::error_code, std::error_code> r;
            {
                cz::sys::scoped_fault_injector guard(fc.injector());
                r = build(path);
            }
            auto [first, finish_ec] = r;
            if (!fc.fired()) {
                // Past the last call: the run succeeds and the image is whole.
                CHECK_FALSE(first);
                CHECK_FALSE(finish_ec);
                succeeded = true;
                break;
            }
            CAPTURE(fc.calls[std::size_t(n)]);
            // The injected EIO is the first error reported, and finish() never reports success
            // over it.
            CHECK(first == std::errc::io_error);
            CHECK(finish_ec);
        }
        REQUIRE(succeeded);
        // The image system calls go through the seam: truncation, data and metadata writes.
        CHECK(n > 3);
        std::error_code ec;
        reader r = reader::open(path, ec);
        REQUIRE_FALSE(ec);
        CHECK(read_path(r, "/etc/hostname", ec) == small);
        CHECK(read_path(r, "/data", ec) == big);
        CHECK_FALSE(ec);
        std::uint32_t many = r.lookup("/many", ec);
        REQUIRE_FALSE(ec);
        CHECK(r.read_dir(many, ec).size() == 150);
        CHECK_FALSE(ec);
    }

    TEST_CASE("the reader fails cleanly on each failing system call") {
        temp_dir tmp;
        const std::string path = tmp / "image";
        auto built = build(path);
        REQUIRE_FALSE(built.first);
        REQUIRE_FALSE(built.second);
        bool succeeded = false;
        int n = 0;
        for (; n < 10000 && !succeeded; ++n) {
            CAPTURE(n);
            fail_count fc{n, {}};
            std::error_code ec;
            std::string host, data;
            std::size_t entries = 0, xattrs = 0;
            {
                cz::sys::scoped_fault_injector guard(fc.injector());
                reader r = reader::open(path, ec);
                if (!ec) host = read_path(r, "/etc/hostname", ec);
                if (!ec) data = read_path(r, "/data", ec);
                if (!ec) {
                    std::uint32_t ino = r.lookup("/many", ec);
                    if (!ec) entries = r.read_dir(ino, ec).size();
                }
                if (!ec) {
                    std::uint32_t ino = r.lookup("/data", ec);
                    if (!ec) xattrs = r.read_xattrs(ino, ec).size();
                }
            }
            if (!fc.fired()) {
                CHECK_FALSE(ec);
                CHECK(host == small);
                CHECK(data == big);
                CHECK(entries == 150);
                CHECK(xattrs == 1);
                succeeded = true;
                break;
            }
            CAPTURE(fc.calls[std::size_t(n)]);
            CHECK(ec == std::errc::io_error);
        }
        REQUIRE(succeeded);
        CHECK(n > 2); // open, fstat, and the reads
    }

    TEST_CASE("an injected failure of open names the path through reader::open's throw") {
        temp_dir tmp;
        const std::string path = tmp / "image";
        REQUIRE_FALSE(build(path).second);
        cz::sys::scoped_fault_injector guard(cz::sys::fail_nth(0, EIO, "open"));
        try {
            (void)reader::open(path);
            FAIL("reader::open succeeded under a failing open");
        } catch (const cz::system_error& e) {
            CHECK(e.code() == std::errc::io_error);
            CHECK(std::string(e.what()).find(path) != std::string::npos);
        }
    }
}
