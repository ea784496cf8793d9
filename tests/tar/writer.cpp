#include <cz/tar/writer.hpp>

#include "helpers.hpp"

#include <cz/tar/parser.hpp>

#include <cstring>

using namespace cz_tar_test;

TEST_SUITE("tar") {

    TEST_CASE("writer -> reader round trip: every field ustar or pax can carry") {
        std::vector<member> in;
        auto f = file_entry("dir/file", 5, 04755);
        f.uid = 1000;
        f.gid = 100;
        f.uname = "alice";
        f.gname = "users";
        f.mtime_ns = 1700000000'250000000; // a fraction: pax mtime
        f.atime_ns = -5;
        f.xattrs = {{"user.b", std::string("\0\1\2", 3)}, {"security.capability", "cap"}};
        in.push_back({f, "hello"});
        auto longname = file_entry(std::string(90, 'a') + "/" + std::string(90, 'b'), 1); // prefix
        in.push_back({longname, "x"});
        auto longer = file_entry(std::string(400, 'c'), 0); // pax path
        longer.uid = 3'000'000'000;                         // base-256 + pax uid
        longer.gid = std::uint64_t(1) << 40;
        longer.uname = std::string(40, 'u'); // pax uname
        in.push_back({longer, ""});
        cz::tar::entry dir;
        dir.type = cz::tar::entry_type::directory;
        dir.name = "dir/";
        dir.mode = 0755;
        in.push_back({dir, ""});
        cz::tar::entry sym;
        sym.type = cz::tar::entry_type::symlink;
        sym.name = "sym";
        sym.linkname = std::string(300, 'l'); // pax linkpath
        in.push_back({sym, ""});
        cz::tar::entry hard;
        hard.type = cz::tar::entry_type::hard_link;
        hard.name = "hard";
        hard.linkname = "dir/file";
        in.push_back({hard, ""});
        cz::tar::entry dev;
        dev.type = cz::tar::entry_type::block_device;
        dev.name = "sda";
        dev.devmajor = 8;
        dev.devminor = 5000000; // too big for octal: base-256 + SCHILY.devminor
        in.push_back({dev, ""});
        cz::tar::entry fifo;
        fifo.type = cz::tar::entry_type::fifo;
        fifo.name = "fifo";
        fifo.mtime_ns = -3'000000000; // before the epoch: base-256 + pax mtime
        in.push_back({fifo, ""});

        auto archive = write_archive(in);
        CHECK(archive.size() % 512 == 0);
        auto r = read_archive(archive);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.members.size() == in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            CAPTURE(i);
            const auto& a = in[i].e;
            const auto& b = r.members[i].e;
            CHECK(b.name == a.name);
            CHECK(b.linkname == a.linkname);
            CHECK(b.type == a.type);
            CHECK(b.mode == a.mode);
            CHECK(b.uid == a.uid);
            CHECK(b.gid == a.gid);
            CHECK(b.uname == a.uname);
            CHECK(b.gname == a.gname);
            CHECK(b.mtime_ns == a.mtime_ns);
            CHECK(b.atime_ns == a.atime_ns);
            CHECK(b.devmajor == a.devmajor);
            CHECK(b.devminor == a.devminor);
            CHECK(b.xattrs == a.xattrs);
            CHECK(b.size == (a.is_file() ? a.size : 0));
            CHECK(r.members[i].content == in[i].content);
        }
    }

    TEST_CASE("deterministic mode: fixed mtime, ids 0, sorted xattrs, same bytes every time") {
        auto f = file_entry("f", 3);
        f.uid = 1234;
        f.gid = 99;
        f.uname = "me";
        f.mtime_ns = 1234567890'123;
        f.atime_ns = 5;
        f.xattrs = {{"user.z", "1"}, {"user.a", "2"}};
        cz::tar::writer_options det{.deterministic = true, .fixed_mtime_ns = 86400'000000000};
        auto a = write_archive({{f, "abc"}}, det);
        f.uid = 1;
        f.mtime_ns = 42;
        f.xattrs = {{"user.a", "2"}, {"user.z", "1"}};
        auto b = write_archive({{f, "abc"}}, det);
        CHECK(a == b);
        auto r = read_archive(a);
        REQUIRE(r.members.size() == 1);
        const auto& e = r.members[0].e;
        CHECK(e.uid == 0);
        CHECK(e.gid == 0);
        CHECK(e.uname.empty());
        CHECK(e.mtime_ns == 86400'000000000);
        CHECK_FALSE(e.atime_ns);
        REQUIRE(e.xattrs.size() == 2);
        CHECK(e.xattrs[0].name == "user.a");
        CHECK(a.find("f/PaxHeaders") == std::string::npos);
        CHECK(a.find("PaxHeaders/f") != std::string::npos);
    }

    TEST_CASE("an 8 GiB entry: base-256 and pax size in the header, all its data streamed") {
        // The writer's output goes straight into a parser: nothing is stored but the headers.
        struct parsing_sink {
            cz::tar::parser p;
            std::vector<std::byte> pattern; // data byte i is pattern[i % pattern.size()]
            std::string headers;            // what came before the entry's data
            std::uint64_t received = 0, data = 0, mismatched = 0, trailing = 0;
            int entries = 0;
            bool ended = false, finished = false;
            std::error_code error;

            void write(cz::bytes_view in, std::error_code& ec) {
                ec.clear();
                received += in.size();
                while (!in.empty() && !error && !ended) {
                    std::error_code perr;
                    auto used = p.feed(in, perr);
                    if (entries == 0) headers += cz::as_chars(in.first(used));
                    in = in.subspan(used);
                    if (perr && perr != cz::tar::errc::need_more) error = perr;
                    if (p.event() == cz::tar::parse_event::entry) ++entries;
                    if (p.event() == cz::tar::parse_event::end) ended = true;
                    if (p.event() == cz::tar::parse_event::data) check(p.data());
                }
                // After the end marker the parser takes nothing: the rest is zero padding.
                if (ended) trailing += in.size();
            }
            void check(cz::bytes_view piece) {
                while (!piece.empty()) {
                    auto at = std::size_t(data % pattern.size());
                    auto n = std::min(piece.size(), pattern.size() - at);
                    if (std::memcmp(piece.data(), pattern.data() + at, n) != 0) ++mismatched;
                    piece = piece.subspan(n);
                    data += n;
                }
            }
            void finish(std::error_code& ec) {
                ec.clear();
                finished = true;
            }
        } sink;
        sink.pattern.resize(std::size_t(1) << 20);
        std::uint32_t x = 1;
        for (auto& b : sink.pattern)
            b = std::byte((x = x * 1103515245 + 12345) >> 24);

        const std::uint64_t size = (std::uint64_t(8) << 30) + 1; // one past what octal holds
        cz::tar::writer w(sink);
        w.add(file_entry("big", size));
        for (std::uint64_t left = size; left > 0;) {
            auto n = std::size_t(std::min<std::uint64_t>(left, sink.pattern.size()));
            w.write(cz::bytes_view(sink.pattern).first(n));
            left -= n;
        }
        w.finish();

        REQUIRE_FALSE(sink.error);
        CHECK(sink.entries == 1);
        CHECK(sink.p.current().name == "big");
        CHECK(sink.p.current().size == size);
        CHECK(sink.data == size);
        CHECK(sink.mismatched == 0);
        CHECK(sink.ended);
        CHECK(sink.trailing == 512); // the second zero block
        CHECK(sink.finished);
        // pax header, its records, the ustar header; the data padded to a block; two zero blocks.
        REQUIRE(sink.headers.size() >= 1536);
        CHECK(sink.received == 1536 + cz::tar::padded(size) + 1024);
        CHECK(w.bytes_written() == sink.received);
        CHECK(sink.headers.substr(0, 1024).find("size=8589934593\n") != std::string::npos);
        // The ustar header holds the size too, in base-256, for readers that skip pax records.
        auto ustar = sink.headers.substr(1024, 512);
        CHECK(static_cast<unsigned char>(ustar[124]) == 0x80);
        CHECK(cz::tar::parse_number(std::string_view(ustar).substr(124, 12)) == std::int64_t(size));
    }

    TEST_CASE("writer misuse and unrepresentable entries are errors") {
        cz::byte_buffer out;
        cz::buffer_sink sink(out);
        cz::tar::writer w(sink);
        std::error_code ec;
        w.write(cz::as_bytes("x"), ec);
        CHECK(ec == cz::tar::errc::unrepresentable); // no entry open: no room for data
        w.add(file_entry(std::string("a\0b", 3), 0), ec);
        CHECK(ec == cz::tar::errc::unrepresentable);
        auto x = file_entry("x", 0);
        x.xattrs = {{"user.a=b", "v"}};
        w.add(x, ec);
        CHECK(ec == cz::tar::errc::unrepresentable);
        w.add(file_entry("f", 4), ec);
        CHECK_FALSE(ec);
        w.write(cz::as_bytes("abcde"), ec);
        CHECK(ec == cz::tar::errc::unrepresentable); // more than the size
        w.write(cz::as_bytes("ab"), ec);
        CHECK_FALSE(ec);
        w.add(file_entry("g", 0), ec);
        CHECK(ec == cz::tar::errc::bad_writer_state); // data incomplete
        w.finish(ec);
        CHECK(ec == cz::tar::errc::bad_writer_state);
        w.write(cz::as_bytes("cd"), ec);
        CHECK_FALSE(ec);
        w.finish(ec);
        CHECK_FALSE(ec);
        w.add(file_entry("h", 0), ec);
        CHECK(ec == cz::tar::errc::bad_writer_state);

        // add(entry, source) checks the source's length.
        cz::byte_buffer out2;
        cz::buffer_sink sink2(out2);
        cz::tar::writer w2(sink2);
        cz::memory_source short_src(cz::as_bytes("ab"));
        w2.add(file_entry("s", 3), short_src, ec);
        CHECK(ec == cz::tar::errc::unrepresentable);
    }

} // TEST_SUITE
