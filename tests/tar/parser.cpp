#include <cz/tar/parser.hpp>

#include "helpers.hpp"

#include <cz/tar/reader.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>

using namespace cz_tar_test;

// The largest single allocation since the last reset. A buffered pax value would need one at
// least as large as itself, so this shows whether a value was stored or skipped. Under
// AddressSanitizer its allocator reports every allocation to a hook; otherwise every operator
// new of this program comes here (the array and nothrow forms call this one).
namespace {
std::atomic<std::size_t> largest_allocation{0};

void note_allocation(std::size_t n) {
    auto seen = largest_allocation.load(std::memory_order_relaxed);
    while (n > seen &&
           !largest_allocation.compare_exchange_weak(seen, n, std::memory_order_relaxed))
        ;
}
} // namespace

#if defined(__SANITIZE_ADDRESS__)
#define CZ_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CZ_TEST_ASAN 1
#endif
#endif

#ifdef CZ_TEST_ASAN
// The sanitizer runtime's hook interface (<sanitizer/allocator_interface.h>, which g++ 12 does
// not ship).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*,
                                                                  std::size_t),
                                                         void (*)(const volatile void*));
namespace {
[[maybe_unused]] const int allocation_hook_installed = __sanitizer_install_malloc_and_free_hooks(
    [](const volatile void*, std::size_t n) { note_allocation(n); }, [](const volatile void*) {});
} // namespace
#else
void* operator new(std::size_t n) {
    note_allocation(n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
// g++ cannot tell that these free what the operator new above took from malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

TEST_SUITE("tar") {

    TEST_CASE("ustar, v7 and GNU headers: fields, prefix, types") {
        auto ustar = header("name", '0', 3,
                            [](auto& h) {
                                std::memcpy(h.prefix, "some/prefix", 11);
                                std::memcpy(h.uname, "alice", 5);
                                std::memcpy(h.gname, "staff", 5);
                                std::memcpy(h.linkname, "ignored", 7);
                            }) +
                     padded("abc");
        auto v7 = header("old/file", '\0', 2,
                         [](auto& h) {
                             std::memset(h.magic, 0, 8);
                             std::memcpy(h.uname, "ignored", 7);
                         }) +
                  padded("xy");
        auto gnu = header("gnu", '0', 0, [](auto& h) {
            std::memcpy(h.magic, "ustar ", 6);
            std::memcpy(h.version, " \0", 2);
            cz::tar::format_octal(h.gnu.atime, 12, 1600000000);
            std::memcpy(h.prefix + 30, "xx", 2); // the GNU area is not a prefix
        });
        auto devs =
            header("dev/null", '3', 0,
                   [](auto& h) {
                       cz::tar::format_octal(h.devmajor, 8, 1);
                       cz::tar::format_octal(h.devminor, 8, 3);
                   }) +
            header("dev/sda", '4', 0, [](auto& h) { cz::tar::format_octal(h.devmajor, 8, 8); }) +
            header("fifo", '6', 0) + header("dir/", '5', 4096) // a directory's size is not data
            + header("link", '1', 321, [](auto& h) { std::memcpy(h.linkname, "name", 4); }) +
            header("sym", '2', 0, [](auto& h) { std::memcpy(h.linkname, "../t", 4); }) +
            header("contig", '7', 1) + padded("c") + header("unknown", 'Q', 1) + padded("q");
        auto r = read_archive(ustar + v7 + gnu + devs + end_blocks);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 11);
        auto& m = r.members;
        CHECK(m[0].e.name == "some/prefix/name");
        CHECK(m[0].e.uname == "alice");
        CHECK(m[0].e.gname == "staff");
        CHECK(m[0].e.uid == 1000);
        CHECK(m[0].e.mode == 0644);
        CHECK(m[0].e.mtime_ns == 1700000000'000000000);
        CHECK(m[0].content == "abc");
        CHECK(m[1].e.name == "old/file");
        CHECK(m[1].e.type == cz::tar::entry_type::regular);
        CHECK(m[1].e.uname.empty());
        CHECK(m[1].content == "xy");
        CHECK(m[2].e.name == "gnu");
        CHECK(m[2].e.atime_ns == 1600000000'000000000);
        CHECK(m[3].e.type == cz::tar::entry_type::char_device);
        CHECK(m[3].e.devmajor == 1);
        CHECK(m[3].e.devminor == 3);
        CHECK(m[4].e.type == cz::tar::entry_type::block_device);
        CHECK(m[4].e.devmajor == 8);
        CHECK(m[5].e.type == cz::tar::entry_type::fifo);
        CHECK(m[6].e.type == cz::tar::entry_type::directory);
        CHECK(m[6].e.size == 0);
        // GNU tar: "links 0 size on tape", so the next header follows at once.
        CHECK(m[7].e.type == cz::tar::entry_type::hard_link);
        CHECK(m[7].e.linkname == "name");
        CHECK(m[7].e.size == 0);
        CHECK(m[8].e.linkname == "../t");
        CHECK(m[9].e.type == cz::tar::entry_type::contiguous);
        CHECK(m[9].content == "c");
        CHECK(m[10].e.type == cz::tar::entry_type::regular); // unknown types read as files
        CHECK(m[10].e.typeflag == 'Q');
        CHECK(m[10].content == "q");
    }

    TEST_CASE("old tars' directories (regular typeflag, name ending in '/'); types with no data") {
        // What follows the header of an entry that carries no data is the next header, as GNU
        // tar and libarchive extract it: here, each time, the entry "inner".
        auto inner = file("inner", "hello");
        auto v7 = [](std::string_view name, char type, std::uint64_t size) {
            return header(name, type, size, [](auto& h) { std::memset(h.magic, 0, 8); });
        };
        struct expect {
            std::string name;
            cz::tar::entry_type type;
            std::string content;
        };
        using t = cz::tar::entry_type;
        std::string archive;
        std::vector<expect> want;
        auto add = [&](std::string bytes, std::string name, t type, std::string content = "") {
            archive += bytes;
            want.push_back({std::move(name), type, std::move(content)});
        };
        add(v7("v7-0/", '0', inner.size()) + inner, "v7-0/", t::directory);
        add("", "inner", t::regular, "hello");
        add(v7("v7-nul/", '\0', 0), "v7-nul/", t::directory);
        add(header("ustar-0/", '0', 0), "ustar-0/", t::directory);
        add(header("contig/", '7', inner.size()) + inner, "contig/", t::directory);
        add("", "inner", t::regular, "hello");
        // The name that decides is the final one: pax path or GNU long name; a pax size does
        // not give such an entry data either.
        add(pax(record("path", "pax-dir/") + record("size", std::to_string(inner.size()))) +
                header("p", '0', 0) + inner,
            "pax-dir/", t::directory);
        add("", "inner", t::regular, "hello");
        add(header("././@LongLink", 'L', 10) + padded("long-dir/\0") + header("l", '0', 0),
            "long-dir/", t::directory);
        // Symlinks, devices and fifos: no data, whatever the header's or a pax size says.
        add(header("sym", '2', inner.size()) + inner, "sym", t::symlink);
        add("", "inner", t::regular, "hello");
        add(pax(record("size", std::to_string(inner.size()))) + header("pax-sym", '2', 0) + inner,
            "pax-sym", t::symlink);
        add("", "inner", t::regular, "hello");
        add(header("chr", '3', inner.size()) + inner, "chr", t::char_device);
        add("", "inner", t::regular, "hello");
        add(header("blk", '4', inner.size()) + inner, "blk", t::block_device);
        add("", "inner", t::regular, "hello");
        add(header("fifo", '6', inner.size()) + inner, "fifo", t::fifo);
        add("", "inner", t::regular, "hello");
        // Not for other typeflags: an unknown one is a regular file with its data (GNU tar), a
        // 'name/' or not.
        add(header("vendor/", 'E', 5) + padded("hello"), "vendor/", t::regular, "hello");
        add(header("file", '0', 5) + padded("hello"), "file", t::regular, "hello");
        archive += end_blocks;

        for (std::size_t step : {std::size_t(1), std::size_t(100), std::size_t(1) << 20}) {
            CAPTURE(step);
            trickle_source src{cz::as_bytes(archive), step};
            auto r = read_archive(src);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.members.size() == want.size());
            for (std::size_t i = 0; i < want.size(); ++i) {
                CAPTURE(i);
                const auto& m = r.members[i];
                CHECK(m.e.name == want[i].name);
                CHECK(m.e.type == want[i].type);
                CHECK(m.e.size == want[i].content.size());
                CHECK(m.e.stored_size == want[i].content.size());
                CHECK(m.content == want[i].content);
            }
        }
        // The typeflag byte itself is kept.
        auto r = read_archive(v7("d/", '0', 0) + end_blocks);
        REQUIRE(r.members.size() == 1);
        CHECK(r.members[0].e.typeflag == '0');
    }

    TEST_CASE("pax records: path, linkpath, size, ids, names, times with fractions, xattrs") {
        std::string records = record("path", std::string(300, 'p')) + record("linkpath", "target") +
                              record("uid", "4000000000") + record("gid", "5") +
                              record("uname", std::string(40, 'u')) + record("gname", "g") +
                              record("mtime", "1700000000.123456789123") + record("atime", "-1.5") +
                              record("ctime", "12") + record("comment", "ignored") +
                              record("SCHILY.xattr.user.a", std::string("v\0w", 3)) +
                              record("LIBARCHIVE.xattr.user.%3Db", "aGVsbG8") +
                              record("SCHILY.xattr.user.a", "replaced") + record("size", "5");
        auto archive = pax(records) + header("short", '0', 0) + padded("12345") + end_blocks;
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 1);
        const auto& e = r.members[0].e;
        CHECK(e.name == std::string(300, 'p'));
        CHECK(e.linkname == "target");
        CHECK(e.uid == 4000000000u);
        CHECK(e.gid == 5);
        CHECK(e.uname == std::string(40, 'u'));
        CHECK(e.gname == "g");
        CHECK(e.mtime_ns == 1700000000'123456789);
        CHECK(e.atime_ns == -1'500000000);
        CHECK(e.ctime_ns == 12'000000000);
        CHECK(e.size == 5);
        CHECK(r.members[0].content == "12345");
        CHECK(e.offset == 0);
        CHECK(e.header_offset == archive.size() - 2048); // after the pax header and its records
        REQUIRE(e.xattrs.size() == 2);
        CHECK(e.xattrs[0] == cz::tar::xattr{"user.a", "replaced"});
        CHECK(e.xattrs[1] == cz::tar::xattr{"user.=b", "hello"});
    }

    TEST_CASE("pax size always wins over the header's (no smuggled headers)") {
        // The ustar size says 0; pax says 1024. The 1024 bytes hold what looks like a header: it
        // must be read as data (TARmageddon, CVE-2025-62518).
        auto inner = file("smuggled", "evil");
        auto archive = pax(record("size", "1024")) + header("outer", '0', 0) + inner + end_blocks;
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 1);
        CHECK(r.members[0].e.name == "outer");
        CHECK(r.members[0].content == inner);
    }

    TEST_CASE("GNU long names and links; pax wins over L; state resets after each entry") {
        std::string long_name(250, 'n'), long_link(180, 'k');
        auto archive = header("././@LongLink", 'L', long_name.size() + 1) +
                       padded(long_name + '\0' + "junk after the NUL") + // cut at the first NUL
                       header("././@LongLink", 'K', long_link.size()) + padded(long_link) +
                       header("short", '1', 0) + header("././@LongLink", 'L', 5) + padded("first") +
                       header("././@LongLink", 'L', 6) + padded("second") + // the last one wins
                       pax(record("path", "from-pax")) + header("x", '0', 0) + file("plain", "") +
                       end_blocks;
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 3);
        CHECK(r.members[0].e.name == long_name);
        CHECK(r.members[0].e.linkname == long_link);
        CHECK(r.members[1].e.name == "from-pax");
        CHECK(r.members[2].e.name == "plain");
        CHECK(r.members[2].e.linkname.empty());
    }

    TEST_CASE("global pax headers apply to every later entry; x overrides; empty value unsets") {
        auto archive = pax(record("uname", "global") + record("mtime", "5"), 'g') + file("a", "") +
                       pax(record("uname", "local")) + file("b", "") +
                       pax(record("uname", ""), 'g') + file("c", "") + end_blocks;
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 3);
        CHECK(r.members[0].e.uname == "global");
        CHECK(r.members[0].e.mtime_ns == 5'000000000);
        CHECK(r.members[1].e.uname == "local");
        CHECK(r.members[2].e.uname.empty()); // back to the header's (empty) uname
        CHECK(r.members[2].e.mtime_ns == 5'000000000);
    }

    TEST_CASE("base-256 sizes, ids and negative times") {
        auto archive = header("big", '0', 0,
                              [](auto& h) {
                                  cz::tar::format_base256(h.uid, 8, 3'000'000'000);
                                  cz::tar::format_base256(h.gid, 8, std::int64_t(1) << 40);
                                  cz::tar::format_base256(h.mtime, 12, -100);
                              }) +
                       end_blocks;
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 1);
        CHECK(r.members[0].e.uid == 3'000'000'000u);
        CHECK(r.members[0].e.gid == (std::uint64_t(1) << 40));
        CHECK(r.members[0].e.mtime_ns == -100'000000000);

        // An 8 GiB size in base-256: the header alone is enough to see it.
        cz::tar::parser p;
        std::error_code ec;
        auto h = header("huge", '0', std::uint64_t(8) << 30);
        CHECK(p.feed(cz::as_bytes(h), ec) == 512);
        REQUIRE(p.event() == cz::tar::parse_event::entry);
        CHECK(p.current().size == (std::uint64_t(8) << 30));
        CHECK(p.data_remaining() == (std::uint64_t(8) << 30));
    }

    TEST_CASE("GNU sparse files: old format with extension blocks, pax 0.0, 0.1, 1.0") {
        // Data regions: 3 bytes at 10, 2 bytes at 100; logical size 200 (empty entry at the end).
        auto expected =
            std::string(10, '\0') + "abc" + std::string(87, '\0') + "de" + std::string(98, '\0');
        // Old GNU: two entries in the header, two more in an extension block.
        auto old = header("old", 'S', 5, [](auto& h) {
            std::memcpy(h.magic, "ustar ", 6);
            std::memcpy(h.version, " \0", 2);
            cz::tar::format_octal(h.gnu.sparse[0].offset, 12, 10);
            cz::tar::format_octal(h.gnu.sparse[0].numbytes, 12, 3);
            cz::tar::format_octal(h.gnu.realsize, 12, 200);
            h.gnu.isextended = 1;
        });
        cz::tar::gnu_sparse_extension ext;
        std::memset(&ext, 0, sizeof ext);
        cz::tar::format_octal(ext.sparse[0].offset, 12, 100);
        cz::tar::format_octal(ext.sparse[0].numbytes, 12, 2);
        cz::tar::format_octal(ext.sparse[1].offset, 12, 200);
        cz::tar::format_octal(ext.sparse[1].numbytes, 12, 0);
        old += std::string(reinterpret_cast<const char*>(&ext), sizeof ext) + padded("abcde");

        auto pax00 = pax(record("GNU.sparse.size", "200") + record("GNU.sparse.numblocks", "3") +
                         record("GNU.sparse.offset", "10") + record("GNU.sparse.numbytes", "3") +
                         record("GNU.sparse.offset", "100") + record("GNU.sparse.numbytes", "2") +
                         record("GNU.sparse.offset", "200") + record("GNU.sparse.numbytes", "0")) +
                     file("p00", "abcde");
        auto pax01 =
            pax(record("GNU.sparse.size", "200") + record("GNU.sparse.numblocks", "3") +
                record("GNU.sparse.name", "p01") + record("GNU.sparse.map", "10,3,100,2,200,0")) +
            file("GNUSparseFile.1/p01", "abcde");
        auto map10 = padded("3\n10\n3\n100\n2\n200\n0\n");
        auto pax10 = pax(record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
                         record("GNU.sparse.name", "p10") + record("GNU.sparse.realsize", "200")) +
                     header("GNUSparseFile.2/p10", '0', map10.size() + 5) + map10 + padded("abcde");
        auto archive = old + pax00 + pax01 + pax10 + end_blocks;
        for (std::size_t step : {std::size_t(1), std::size_t(7), std::size_t(1) << 20}) {
            CAPTURE(step);
            trickle_source src{cz::as_bytes(archive), step};
            auto r = read_archive(src);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.members.size() == 4);
            const char* names[] = {"old", "p00", "p01", "p10"};
            cz::tar::sparse_format formats[] = {
                cz::tar::sparse_format::gnu_old, cz::tar::sparse_format::pax_0_0,
                cz::tar::sparse_format::pax_0_1, cz::tar::sparse_format::pax_1_0};
            for (int i = 0; i < 4; ++i) {
                CAPTURE(i);
                const auto& e = r.members[std::size_t(i)].e;
                CHECK(e.name == names[i]);
                CHECK(e.sparse == formats[i]);
                CHECK(e.size == 200);
                CHECK(e.stored_size == 5);
                CHECK(e.sparse_map ==
                      std::vector<cz::tar::sparse_segment>{{10, 3}, {100, 2}, {200, 0}});
                CHECK(r.members[std::size_t(i)].content == expected);
            }
        }
    }

    TEST_CASE("a reader over memory hands out views of the archive itself, holes as zeros") {
        auto map10 = padded("2\n3\n2\n10\n0\n");
        auto archive = file("a", "hello") +
                       pax(record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
                           record("GNU.sparse.realsize", "10")) +
                       header("s", '0', map10.size() + 2) + map10 + padded("xy") + end_blocks;
        cz::tar::reader r(cz::as_bytes(archive));
        std::error_code ec;
        auto* e = r.next(ec);
        REQUIRE(e);
        auto v = r.read_view(100, ec);
        REQUIRE(v.size() == 5);
        CHECK(cz::as_chars(v) == "hello");
        CHECK(v.data() == cz::as_bytes(archive).data() + 512); // no copy
        CHECK(r.read_view(100, ec).empty());
        e = r.next(ec);
        REQUIRE(e);
        CHECK(e->size == 10);
        std::string content;
        std::vector<cz::bytes_view> views;
        for (auto piece = r.read_view(2, ec); !piece.empty(); piece = r.read_view(2, ec))
            views.push_back(piece);
        for (auto piece : views)
            content += cz::as_chars(piece); // earlier views are still valid
        CHECK(content == std::string(3, '\0') + "xy" + std::string(5, '\0'));
        CHECK_FALSE(ec);
        CHECK_FALSE(r.next(ec));
        CHECK_FALSE(ec);
    }

    TEST_CASE("bad sparse maps are errors") {
        auto bad = [](std::string map) {
            auto archive = pax(record("GNU.sparse.size", "100") + record("GNU.sparse.map", map)) +
                           file("s", "abcde") + end_blocks;
            return read_archive(archive).ec;
        };
        CHECK(bad("0,5") == std::error_code());                   // sanity: a good one
        CHECK(bad("10,3,5,2") == cz::tar::errc::bad_sparse_map);  // not sorted
        CHECK(bad("10,3,12,2") == cz::tar::errc::bad_sparse_map); // overlapping
        CHECK(bad("99,2") == cz::tar::errc::bad_sparse_map);      // past the real size
        CHECK(bad("0,6") == cz::tar::errc::bad_sparse_map);       // more data than stored
        CHECK(bad("0,x") == cz::tar::errc::bad_sparse_map);
        CHECK(bad("0") == cz::tar::errc::bad_sparse_map); // odd count
        CHECK(bad("18446744073709551615,1") == cz::tar::errc::bad_sparse_map);
    }

    TEST_CASE("the end of the archive, as GNU tar decides it") {
        auto a = file("a", "1"), b = file("b", "2");
        // Two zero blocks: the end; what follows is not read (GNU tar without -i).
        auto r = read_archive(a + end_blocks + b + end_blocks);
        REQUIRE_FALSE(r.ec);
        CHECK(r.members.size() == 1);
        // One zero block also ends it ("A lone zero block", a warning in GNU tar, exit 0).
        r = read_archive(a + std::string(512, '\0'));
        REQUIRE_FALSE(r.ec);
        CHECK(r.members.size() == 1);
        // No end marker at all: a clean end between entries is accepted, as GNU tar does.
        r = read_archive(a + b);
        REQUIRE_FALSE(r.ec);
        CHECK(r.members.size() == 2);
        // ...unless the caller requires the marker.
        r = read_archive(a + b, {.require_end_marker = true});
        CHECK(r.ec == cz::tar::errc::truncated);
        // Concatenated archives with ignore_zeros (tar -i): both halves.
        r = read_archive(a + end_blocks + b + end_blocks, {.ignore_zeros = true});
        REQUIRE_FALSE(r.ec);
        CHECK(r.members.size() == 2);
        // An empty input is an empty archive.
        r = read_archive(std::string());
        CHECK_FALSE(r.ec);
        CHECK(r.members.empty());
    }

    TEST_CASE("the push parser: need_more is the only non-fatal error, byte by byte") {
        auto archive = pax(record("path", "p")) + file("a", "hello") + end_blocks;
        cz::tar::parser p;
        std::string data;
        int entries = 0;
        bool ended = false;
        for (std::size_t i = 0; i < archive.size() && !ended; ++i) {
            std::error_code ec;
            auto byte = cz::as_bytes(archive).subspan(i, 1);
            auto used = p.feed(byte, ec);
            CHECK(used == 1);
            if (p.event() == cz::tar::parse_event::none)
                CHECK(ec == cz::tar::errc::need_more);
            else
                CHECK_FALSE(ec);
            if (p.event() == cz::tar::parse_event::entry) ++entries;
            if (p.event() == cz::tar::parse_event::data) data += cz::to_string(p.data());
            if (p.event() == cz::tar::parse_event::end) ended = true;
        }
        CHECK(ended);
        CHECK(entries == 1);
        CHECK(data == "hello");
        CHECK(p.current().name == "p");
    }

    TEST_CASE("a parser and a reader move mid-archive and go on where they were") {
        auto archive =
            pax(record("path", "first")) + file("a", "hello") + file("b", "world") + end_blocks;
        cz::tar::parser p;
        std::error_code ec;
        auto used = p.feed(cz::as_bytes(archive), ec);
        REQUIRE(p.event() == cz::tar::parse_event::entry);
        cz::tar::parser moved(std::move(p));
        CHECK(moved.current().name == "first");
        used += moved.feed(cz::as_bytes(archive).subspan(used), ec);
        REQUIRE(moved.event() == cz::tar::parse_event::data);
        CHECK(cz::as_chars(moved.data()) == "hello");
        cz::tar::parser assigned;
        assigned = std::move(moved);
        assigned.feed(cz::as_bytes(archive).subspan(used), ec);
        REQUIRE(assigned.event() == cz::tar::parse_event::entry);
        CHECK(assigned.current().name == "b");

        cz::memory_source src(cz::as_bytes(archive));
        cz::tar::reader r(src);
        REQUIRE(r.next());
        cz::tar::reader r2(std::move(r));
        const auto* e = r2.next();
        REQUIRE(e);
        CHECK(e->name == "b");
        cz::tar::reader r3(cz::as_bytes(std::string_view()));
        r3 = std::move(r2);
        std::array<std::byte, 5> content{};
        CHECK(r3.read_some(content, ec) == 5);
        CHECK(cz::as_chars(content) == "world");
        CHECK_FALSE(r3.next());
    }

    TEST_CASE("errors carry the offset of the bad header") {
        auto a = file("a", "1");
        auto bad = header("b", '0', 0);
        bad[148] = '1'; // break the checksum
        auto r = read_archive(a + bad + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_checksum);
        CHECK(r.error_offset == 1024);
        REQUIRE(r.members.size() == 1);

        auto bad_mode = header("c", '0', 0, [](auto& h) { std::memcpy(h.mode, "0030816", 7); });
        r = read_archive(a + a + bad_mode);
        CHECK(r.ec == cz::tar::errc::bad_number);
        CHECK(r.error_offset == 2048);

        auto two = a + bad;
        cz::memory_source src(cz::as_bytes(two));
        cz::tar::reader reader(src);
        CHECK(reader.next());
        try {
            reader.next();
            FAIL("expected an exception");
        } catch (const cz::system_error& e) {
            CHECK(std::string(e.what()).find("tar header at offset 1024") != std::string::npos);
        }
    }

    TEST_CASE("hostile: truncation anywhere inside a header or data is an error") {
        std::vector<member> members;
        members.push_back({file_entry(std::string(150, 'x') + "/" + std::string(120, 'y'), 700),
                           std::string(700, 'a')});
        members.back().e.xattrs = {{"user.k", "v"}};
        members.push_back({file_entry("small", 3), "abc"});
        cz::tar::entry link;
        link.name = "l";
        link.type = cz::tar::entry_type::symlink;
        link.linkname = std::string(200, 't');
        members.push_back({link, ""});
        members.push_back({file_entry("empty", 0), ""});
        auto archive = write_archive(members);
        auto full = read_archive(archive);
        REQUIRE_FALSE(full.ec);
        REQUIRE(full.members.size() == 4);
        // Where an entry begins (its first header), a cut is a clean end, as GNU tar reads it.
        std::vector<std::size_t> boundaries;
        for (auto& m : full.members)
            boundaries.push_back(std::size_t(m.e.offset));
        auto end_of_entries = archive.size() - 1024;
        for (std::size_t n = 0; n < archive.size(); ++n) {
            CAPTURE(n);
            auto r = read_archive(std::string_view(archive).substr(0, n));
            bool boundary =
                std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end() ||
                n >= end_of_entries;
            if (boundary) {
                CHECK_FALSE(r.ec);
            } else {
                CHECK(r.ec == cz::tar::errc::truncated);
            }
            // Entries read before the cut are the archive's own.
            for (std::size_t i = 0; i < r.members.size(); ++i)
                CHECK(r.members[i].e.name == full.members[i].e.name);
        }
    }

    TEST_CASE("hostile: lying sizes and huge pax lengths end in errors, not allocations") {
        // A header that claims 1 TiB of data in a 1 KiB archive.
        auto r = read_archive(header("liar", '0', std::uint64_t(1) << 40) + std::string(512, 'z'));
        CHECK(r.ec == cz::tar::errc::truncated);
        // A pax header that claims 1 TiB in a small archive: its records stream, then it ends.
        r = read_archive(header("x", 'x', std::uint64_t(1) << 40) + end_blocks);
        CHECK(r.ec == cz::tar::errc::truncated);
        // A record whose length runs past its header.
        r = read_archive(pax("99999999999 path=x\n") + file("a", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        CHECK(r.error_offset == 0);
        // A pax size that is negative or not a number.
        r = read_archive(pax(record("size", "-19769411113659727436")) + file("a", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        r = read_archive(pax(record("uid", "12a")) + file("a", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        // Records without '=' or newline.
        r = read_archive(pax("8 path\n\n") + file("a", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        r = read_archive(pax("10 path=ab") + file("a", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        // A long name beyond the limit.
        r = read_archive(header("././@LongLink", 'L', 100000) + end_blocks);
        CHECK(r.ec == cz::tar::errc::name_too_long);
        // Too many xattrs.
        std::string many;
        for (int i = 0; i < 20; ++i)
            many += record("SCHILY.xattr.user." + std::to_string(i), "v");
        r = read_archive(pax(many) + file("a", "") + end_blocks, {.max_xattrs = 10});
        CHECK(r.ec == cz::tar::errc::too_many_xattrs);
        // A sparse 1.0 map that claims a billion entries.
        auto map = padded("1000000000\n");
        r = read_archive(pax(record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
                             record("GNU.sparse.realsize", "10")) +
                         header("s", '0', map.size()) + map + end_blocks);
        CHECK(r.ec == cz::tar::errc::sparse_map_too_large);
        // A pax 1.0 map that never ends runs into the entry's size.
        auto endless = padded(std::string(511, '1') + "\n");
        r = read_archive(pax(record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
                             record("GNU.sparse.realsize", "10")) +
                         header("s", '0', 512) + endless + end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_sparse_map);
    }

    namespace {
    // A pax header that claims `payload` bytes and holds one record "<payload> <key>=" followed
    // by `fill` repeated: `limit` bytes in all, then the end of the input.
    struct long_record_source {
        std::string head;
        std::uint64_t limit;
        char fill = 'v';
        std::uint64_t produced = 0;
        long_record_source(std::string_view key, std::uint64_t payload, std::uint64_t limit_)
            : limit(limit_) {
            head = header("big", 'x', payload) + std::to_string(payload) + " " + std::string(key) +
                   "=";
        }
        std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
            ec.clear();
            auto n = std::size_t(std::min<std::uint64_t>(buf.size(), limit - produced));
            for (std::size_t i = 0; i < n; ++i)
                buf[i] = std::byte(produced + i < head.size() ? head[produced + i] : fill);
            produced += n;
            return n;
        }
    };
    } // namespace

    TEST_CASE("pax headers of any size stream: unused values skipped, used ones capped") {
        // One 8 MB attribute of a key cz does not use (libarchive's tests carry such a header;
        // GNU tar and libarchive 3.7.5+ read it), between records that are used.
        std::string records =
            record("uid", "7") + record("VENDOR.big", std::string(8'000'000, 'b')) +
            record("path", "renamed") + record("comment", std::string(3'000'000, 'c'));
        auto archive = pax(records) + file("foo", "abc") + end_blocks;
        {
            // The probe sees allocations (a 4 MiB string is one).
            largest_allocation = 0;
            std::string probe(4u << 20, 'x');
            REQUIRE(largest_allocation >= (4u << 20));
        }
        for (std::size_t step : {std::size_t(4096), std::size_t(1) << 20}) {
            CAPTURE(step);
            trickle_source src{cz::as_bytes(archive), step};
            largest_allocation = 0;
            auto r = read_archive(src);
            CHECK(largest_allocation < (1u << 20)); // the reader's 256 KiB buffer, no value
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.members.size() == 1);
            CHECK(r.members[0].e.name == "renamed");
            CHECK(r.members[0].e.uid == 7);
            CHECK(r.members[0].content == "abc");
        }
        {
            largest_allocation = 0;
            cz::tar::reader over_memory(cz::as_bytes(archive));
            const auto* e = over_memory.next();
            CHECK(largest_allocation < (64u << 10));
            REQUIRE(e);
            CHECK(e->name == "renamed");
        }

        // An unused value that never ends: 64 MiB of it go by in bounded memory, then the
        // input ends inside it.
        {
            long_record_source src("VENDOR.endless", std::uint64_t(1) << 40, 64u << 20);
            largest_allocation = 0;
            auto r = read_archive(src);
            CHECK(largest_allocation < (1u << 20));
            CHECK(src.produced == (64u << 20)); // all of it read, none of it kept
            CHECK(r.ec == cz::tar::errc::truncated);
            CHECK(r.error_offset == 0);
        }
        // A value too large for a key cz uses is refused from its length alone, before any of
        // it is read: names, xattrs (raw and base64), numbers.
        struct too_large {
            const char* key;
            cz::tar::errc error;
        } used[] = {
            {"path", cz::tar::errc::name_too_long},
            {"linkpath", cz::tar::errc::name_too_long},
            {"uname", cz::tar::errc::name_too_long},
            {"GNU.sparse.name", cz::tar::errc::name_too_long},
            {"SCHILY.xattr.user.big", cz::tar::errc::too_many_xattrs},
            {"LIBARCHIVE.xattr.user.big", cz::tar::errc::too_many_xattrs},
            {"size", cz::tar::errc::header_too_large},
            {"mtime", cz::tar::errc::header_too_large},
            {"GNU.sparse.offset", cz::tar::errc::header_too_large},
        };
        for (auto& u : used) {
            CAPTURE(u.key);
            long_record_source src(u.key, std::uint64_t(1) << 40, 64u << 20);
            largest_allocation = 0;
            auto r = read_archive(src);
            CHECK(r.ec == u.error);
            CHECK(r.error_offset == 0);
            CHECK(src.produced <= (256u << 10)); // the reader's first read, no more
            CHECK(largest_allocation < (1u << 20));
        }
        // Just within the caps they are read: a 64 KiB path, a 128-byte number.
        auto r = read_archive(pax(record("path", std::string(64 << 10, 'p')) +
                                  record("size", std::string(127, '0') + "3")) +
                              file("x", "abc") + end_blocks);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 1);
        CHECK(r.members[0].e.name == std::string(64 << 10, 'p'));
        CHECK(r.members[0].content == "abc");
        r = read_archive(pax(record("size", std::string(128, '0') + "3")) + file("x", "abc") +
                         end_blocks);
        CHECK(r.ec == cz::tar::errc::header_too_large);

        // Keys: one longer than any cz uses is skipped with its value, unless it names an xattr.
        r = read_archive(pax(record(std::string(10000, 'k'), "v") + record("path", "p")) +
                         file("x", "") + end_blocks);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == 1);
        CHECK(r.members[0].e.name == "p");
        r = read_archive(pax(record("SCHILY.xattr.user." + std::string(5000, 'k'), "v")) +
                         file("x", "") + end_blocks);
        CHECK(r.ec == cz::tar::errc::header_too_large);

        // Record lengths: more digits than fit in 64 bits, longer than the header, too short.
        for (const char* bad : {"99999999999999999999999 path=x\n", "30 path=x\n", "3 =\n", "0 \n",
                                " 9 path=\n", "6 path\n"}) {
            CAPTURE(bad);
            r = read_archive(pax(bad) + file("x", "") + end_blocks);
            CHECK(r.ec == cz::tar::errc::bad_pax_record);
        }
        // NULs after the last record are padding; anything after them is not.
        r = read_archive(pax(record("path", "p") + std::string(10, '\0')) + file("x", "") +
                         end_blocks);
        CHECK_FALSE(r.ec);
        r = read_archive(pax(record("path", "p") + std::string(10, '\0') + "1") + file("x", "") +
                         end_blocks);
        CHECK(r.ec == cz::tar::errc::bad_pax_record);
        // The shortest record: an empty key and value ("4 =\n"), ignored.
        r = read_archive(pax("4 =\n") + file("x", "") + end_blocks);
        CHECK_FALSE(r.ec);
    }

    TEST_CASE("a long GNU.sparse.map is read number by number, across any split") {
        // 3000 data regions of 1 byte, every 10 bytes: about 40 KB of map.
        std::string map, data, expected;
        for (int i = 0; i < 3000; ++i) {
            map += (i ? "," : "") + std::to_string(i * 10) + ",1";
            data += char('a' + i % 26);
            expected += std::string(1, char('a' + i % 26)) + std::string(i < 2999 ? 9 : 0, '\0');
        }
        auto archive = pax(record("GNU.sparse.size", std::to_string(expected.size())) +
                           record("GNU.sparse.map", map)) +
                       file("s", data) + end_blocks;
        for (std::size_t step : {std::size_t(1), std::size_t(333), std::size_t(1) << 20}) {
            CAPTURE(step);
            trickle_source src{cz::as_bytes(archive), step};
            auto r = read_archive(src);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.members.size() == 1);
            CHECK(r.members[0].e.sparse_map.size() == 3000);
            CHECK(r.members[0].content == expected);
        }
        auto r = read_archive(archive, {.max_sparse_entries = 2999});
        CHECK(r.ec == cz::tar::errc::sparse_map_too_large);
        // An empty map is no data regions; a trailing comma or a lone offset is malformed.
        r = read_archive(pax(record("GNU.sparse.size", "4") + record("GNU.sparse.map", "")) +
                         file("s", "") + end_blocks);
        REQUIRE_FALSE(r.ec);
        CHECK(r.members[0].e.sparse_map.empty());
        CHECK(r.members[0].content == std::string(0, '\0')); // the map ends at 0
        for (const char* bad : {"0,1,", "0,1,5", ",0,1", "0,,1", "0,1;"}) {
            CAPTURE(bad);
            r = read_archive(pax(record("GNU.sparse.size", "10") + record("GNU.sparse.map", bad)) +
                             file("s", "x") + end_blocks);
            CHECK(r.ec == cz::tar::errc::bad_sparse_map);
        }
    }

    namespace {
    // An endless stream of one header with its payload, repeated: memory must stay bounded.
    struct endless_source {
        std::string unit;
        std::size_t pos = 0;
        std::uint64_t produced = 0;
        std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
            ec.clear();
            std::size_t n = 0;
            while (n < buf.size()) {
                auto k = std::min(buf.size() - n, unit.size() - pos);
                std::memcpy(buf.data() + n, unit.data() + pos, k);
                n += k;
                pos = (pos + k) % unit.size();
            }
            produced += n;
            return n;
        }
    };
    } // namespace

    TEST_CASE("hostile: endless L, K, x and sparse extension chains stop at max_header_bytes") {
        cz::tar::gnu_sparse_extension ext;
        std::memset(&ext, 0, sizeof ext);
        ext.isextended = 1;
        auto old_sparse = header("s", 'S', 0, [](auto& h) {
            std::memcpy(h.magic, "ustar ", 6);
            std::memcpy(h.version, " \0", 2);
            h.gnu.isextended = 1;
        });
        struct chain {
            std::string unit;
            std::string prefix;
        } chains[] = {
            {header("././@LongLink", 'L', 500) + padded(std::string(500, 'n')), ""},
            {header("././@LongLink", 'K', 500) + padded(std::string(500, 'k')), ""},
            {pax(record("path", std::string(900, 'p'))), ""},
            {std::string(reinterpret_cast<const char*>(&ext), sizeof ext), old_sparse},
        };
        for (auto& c : chains) {
            endless_source src{c.unit};
            cz::memory_source prefix(cz::as_bytes(c.prefix));
            cz::tar::parser_options opt;
            opt.max_header_bytes = 1 << 20;
            // Prefix first (for the sparse chain), then the endless part.
            struct concat {
                cz::memory_source* a;
                endless_source* b;
                std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
                    auto n = a->read_some(buf, ec);
                    return n ? n : b->read_some(buf, ec);
                }
            } both{&prefix, &src};
            auto r = read_archive(both, opt);
            CHECK(r.ec == cz::tar::errc::entry_headers_too_large);
            CHECK(r.members.empty());
            // It stopped soon after the limit: the reader's buffer is 256 KiB.
            CHECK(src.produced <= (1u << 20) + (512u << 10));
        }
    }

    TEST_CASE("require_end_marker and a pax header with nothing after it") {
        auto r = read_archive(pax(record("path", "p")));
        CHECK(r.ec == cz::tar::errc::truncated);
        r = read_archive(pax(record("path", "p")) + end_blocks); // pax state dies at the end marker
        CHECK_FALSE(r.ec);
        CHECK(r.members.empty());
    }

} // TEST_SUITE
