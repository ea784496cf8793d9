#include <cz/tar/writer.hpp>

#include "helpers.hpp"

#include <cz/tar/parser.hpp>

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
    longer.uid = 3'000'000'000; // base-256 + pax uid
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

TEST_CASE("an 8 GiB entry: base-256 and pax size in the header, data streamed") {
    cz::null_sink counter;
    cz::tar::writer w(counter);
    auto big = file_entry("big", (std::uint64_t(8) << 30) + 1);
    cz::byte_buffer headers;
    cz::buffer_sink hs(headers);
    cz::tar::writer hw(hs);
    hw.add(big); // headers only; the data would be 8 GiB
    cz::tar::parser p;
    std::error_code ec;
    auto used = p.feed(headers, ec);
    CHECK(used == headers.size());
    REQUIRE(p.event() == cz::tar::parse_event::entry);
    CHECK(p.current().size == (std::uint64_t(8) << 30) + 1);
    CHECK(cz::as_chars(headers).find("size=8589934593") != std::string_view::npos);
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
