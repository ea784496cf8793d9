// cz/tar as a program compiled with CZ_SEPARATE_COMPILATION uses it: the out-of-line code comes
// from tar_src.cpp and the program links with dependency('cz-tar') alone — fmt, no codec, no
// libcrypto (tar reads any byte source and decompresses nothing itself). Readers and parsers are
// moved mid-archive, so their out-of-line moves must be compiled there.
#include <cz/tar.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <array>
#include <string>
#include <string_view>

namespace {

// A deterministic pax archive: a file with a name too long for ustar, then a short one.
cz::byte_buffer sample_archive(const std::string& long_name) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::tar::writer w(sink, {.deterministic = true});
    cz::tar::entry e;
    e.name = long_name;
    e.size = 5;
    e.mode = 0644;
    w.add(e);
    w.write(cz::as_bytes("hello"));
    e.name = "b";
    w.add(e);
    w.write(cz::as_bytes("world"));
    w.finish();
    return out;
}

} // namespace

TEST_SUITE("separate compilation: tar") {

    TEST_CASE("a reader moved mid-archive goes on where it was") {
        const std::string long_name = std::string(120, 'd') + "/file";
        auto archive = sample_archive(long_name);
        cz::memory_source src(archive);
        cz::tar::reader r(src);
        const auto* e = r.next();
        REQUIRE(e);
        CHECK(e->name == long_name);
        std::array<std::byte, 2> part{};
        std::error_code ec;
        CHECK(r.read_some(part, ec) == 2);

        cz::tar::reader moved(std::move(r));
        CHECK(moved.current().name == long_name);
        std::array<std::byte, 3> rest{};
        CHECK(cz::read_full(moved, rest, ec) == 3);
        CHECK(cz::to_string(part) + cz::to_string(rest) == "hello");

        cz::tar::reader assigned(cz::bytes_view{});
        assigned = std::move(moved);
        e = assigned.next();
        REQUIRE(e);
        CHECK(e->name == "b");
        CHECK(cz::as_chars(assigned.read_view(100, ec)) == "world");
        CHECK_FALSE(assigned.next(ec));
        CHECK(!ec);
    }

    TEST_CASE("a parser moved between events, and errors with their offset") {
        auto archive = sample_archive("a");
        cz::tar::parser p;
        std::error_code ec;
        auto used = p.feed(archive, ec);
        REQUIRE(p.event() == cz::tar::parse_event::entry);
        cz::tar::parser moved(std::move(p));
        used += moved.feed(cz::bytes_view(archive).subspan(used), ec);
        REQUIRE(moved.event() == cz::tar::parse_event::data);
        CHECK(cz::as_chars(moved.data()) == "hello");

        // Break the checksum of b's header (the block whose name field is "b").
        std::size_t b_header = 0;
        while (b_header < archive.size() &&
               cz::as_chars(archive).substr(b_header, 2) != std::string_view("b\0", 2))
            b_header += 512;
        REQUIRE(b_header < archive.size());
        archive[b_header + 148] ^= std::byte{1};
        cz::tar::reader r(cz::bytes_view{archive});
        REQUIRE(r.next());
        CHECK_THROWS_AS(r.next(), cz::system_error);
        CHECK(r.error_detail().offset == b_header);
    }

    TEST_CASE("paths are normalised or refused") {
        CHECK(cz::tar::normalize_path("./a//b/../c/") == "a/c");
        std::error_code ec;
        cz::tar::normalize_path("../etc/passwd", cz::tar::dotdot_policy::refuse, ec);
        CHECK(ec == cz::tar::errc::path_escapes_root);
        CHECK(cz::tar::normalize_path("../etc", cz::tar::dotdot_policy::clamp) == "etc");
    }

} // TEST_SUITE
