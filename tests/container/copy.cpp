// cz cp's host side without a VM (cz/container/copy.hpp): hostile archives from a container must
// never write outside the destination (climbing names, absolute names, symlinks pointing out and
// then written through, hard links out, sizes the data does not back), set-id bits are dropped,
// and a host tree packed by archive_host_path comes back the same through extract_untrusted,
// renamed as docker's rules rename it. Also the control protocol's copy payloads.
#include <cz/container/copy.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

namespace ct = cz::container;
namespace fs = std::filesystem;

namespace {

struct member {
    std::string name;
    cz::tar::entry_type type = cz::tar::entry_type::regular;
    std::string text{}; // contents, or the link target
    std::uint32_t mode = 0644;
    std::uint64_t claimed_size = 0; // a size header beyond the data (0: the data's)
};

std::string archive(const std::vector<member>& members) {
    cz::byte_buffer bytes;
    cz::buffer_sink sink(bytes);
    cz::tar::writer w(sink);
    for (const auto& m : members) {
        cz::tar::entry e;
        e.name = m.name;
        e.type = m.type;
        e.mode = m.mode;
        switch (m.type) {
        case cz::tar::entry_type::symlink:
            e.typeflag = '2';
            e.linkname = m.text;
            break;
        case cz::tar::entry_type::hard_link:
            e.typeflag = '1';
            e.linkname = m.text;
            break;
        case cz::tar::entry_type::directory:
            e.typeflag = '5';
            break;
        case cz::tar::entry_type::char_device:
            e.typeflag = '3';
            e.devmajor = 1;
            e.devminor = 3;
            break;
        default:
            e.size = m.text.size();
            break;
        }
        w.add(e);
        if (e.size) w.write(cz::as_bytes(m.text));
    }
    if (members.empty() || members.back().claimed_size == 0) w.finish();
    std::string out(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return out;
}

// An archive whose last member's header claims `size` bytes and whose data stops after `data`.
std::string truncated_archive(const std::string& name, std::uint64_t size,
                              const std::string& data) {
    cz::byte_buffer bytes;
    cz::buffer_sink sink(bytes);
    cz::tar::writer w(sink);
    cz::tar::entry e;
    e.name = name;
    e.mode = 0644;
    e.size = size;
    w.add(e);
    std::string out(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return out + data;
}

struct result {
    std::error_code ec;
    std::string detail;
};

result extract(const std::string& tar, const fs::path& dir, ct::copy_rename rn = {}) {
    cz::memory_source src(cz::as_bytes(tar));
    result r;
    ct::extract_untrusted(src, dir, rn, r.ec, &r.detail);
    return r;
}

std::string show(const std::map<std::string, std::string>& m) {
    std::string out;
    for (const auto& [k, v] : m)
        out += k + " = " + v + "\n";
    return out;
}

// A tree as a map: relative path -> "type mode [contents or link target]".
std::map<std::string, std::string> tree_of(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
        struct stat st {};
        REQUIRE(::lstat(it->path().c_str(), &st) == 0);
        auto rel = it->path().lexically_relative(root).string();
        char mode[16];
        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
        if (S_ISLNK(st.st_mode))
            out[rel] = "link " + fs::read_symlink(it->path()).string();
        else if (S_ISDIR(st.st_mode))
            out[rel] = std::string("dir ") + mode;
        else
            out[rel] = std::string("file ") + mode + " " + cz_test::read_file(it->path());
    }
    return out;
}

} // namespace

TEST_SUITE("container") {

    TEST_CASE("cp: hostile archives write nothing outside the destination") {
        cz_test::temp_dir tmp;
        auto dest = tmp.path / "dest";
        auto outside = tmp.path / "outside";
        fs::create_directories(dest);
        fs::create_directories(outside);
        using T = cz::tar::entry_type;

        SUBCASE("a name that climbs out") {
            auto r = extract(archive({{"x/../../escaped", T::regular, "pwned"}}), dest);
            CHECK(r.ec);
            CHECK(r.detail.find("x/../../escaped") != std::string::npos);
            CHECK_FALSE(fs::exists(tmp.path / "escaped"));
        }
        SUBCASE("an absolute name stays inside (and outside what was asked for is refused)") {
            auto r = extract(archive({{"/abs/file", T::regular, "in"}}), dest);
            CHECK_FALSE(r.ec);
            CHECK(cz_test::read_file(dest / "abs/file") == "in");
            r = extract(archive({{"x", T::directory}, {"/etc/passwd", T::regular, "pwned"}}), dest,
                        {"x", "y"});
            CHECK(r.ec == ct::errc::copy_failed);
            CHECK(r.detail.find("'/etc/passwd'") != std::string::npos);
            CHECK_FALSE(fs::exists(dest / "etc"));
        }
        SUBCASE("a symlink pointing out, then written through") {
            for (const auto& target : {outside.string(), std::string("../../outside")}) {
                CAPTURE(target);
                auto r = extract(archive({{"x", T::directory},
                                          {"x/link", T::symlink, target},
                                          {"x/link/evil", T::regular, "pwned"}}),
                                 dest, {"x", "x"});
                CHECK(r.ec);
                CHECK(r.detail.find("x/link/evil") != std::string::npos);
                CHECK(fs::is_empty(outside));
                CHECK(fs::is_symlink(dest / "x/link")); // stored, never followed
                fs::remove_all(dest / "x");
            }
        }
        SUBCASE("a symlink already in the destination is replaced, never written through") {
            fs::create_directories(dest / "x");
            fs::create_symlink(outside / "victim", dest / "x/pre");
            cz_test::write_file(outside / "victim", "safe");
            auto r = extract(archive({{"x/pre", T::regular, "new"}}), dest, {"x", "x"});
            CHECK_FALSE(r.ec);
            CHECK(cz_test::read_file(outside / "victim") == "safe");
            CHECK(cz_test::read_file(dest / "x/pre") == "new");
            fs::create_symlink(outside, dest / "x/outdir");
            r = extract(archive({{"x/outdir/f", T::regular, "pwned"}}), dest, {"x", "x"});
            CHECK(r.ec);
            CHECK_FALSE(fs::exists(outside / "f"));
        }
        SUBCASE("a hard link to a file outside") {
            cz_test::write_file(outside / "secret", "secret");
            auto r = extract(
                archive({{"x", T::directory}, {"x/h", T::hard_link, "x/../../outside/secret"}}),
                dest, {"x", "x"});
            CHECK(r.ec);
            CHECK_FALSE(fs::exists(dest / "x/h"));
            fs::create_symlink(outside, dest / "x/out");
            r = extract(archive({{"x/h", T::hard_link, "x/out/secret"}}), dest, {"x", "x"});
            CHECK(r.ec);
            CHECK_FALSE(fs::exists(dest / "x/h"));
            CHECK(fs::hard_link_count(outside / "secret") == 1);
        }
        SUBCASE("a size the data does not back") {
            auto r = extract(truncated_archive("big", std::uint64_t(1) << 40, "abc"), dest);
            CHECK(r.ec);
            CHECK(r.detail.find("'big'") != std::string::npos);
        }
        SUBCASE("set-id bits are dropped, devices skipped") {
            auto r = extract(
                archive({{"suid", T::regular, "#!/bin/sh\n", 06755}, {"dev", T::char_device, ""}}),
                dest);
            CHECK_FALSE(r.ec);
            struct stat st {};
            REQUIRE(::stat((dest / "suid").c_str(), &st) == 0);
            CHECK((st.st_mode & 07777) == 0755);
            CHECK_FALSE(fs::exists(dest / "dev"));
        }
        SUBCASE("a member that would replace the destination itself") {
            auto r = extract(archive({{"x", T::regular, "file"}}), dest, {"x", ""});
            CHECK(r.ec == ct::errc::copy_failed);
        }
        // Outside: only what the test itself put there.
        for (const auto& e : fs::directory_iterator(outside))
            CHECK((e.path().filename() == "victim" || e.path().filename() == "secret"));
        CHECK_FALSE(fs::exists(tmp.path / "escaped"));
    }

    TEST_CASE("cp: a host tree packed and unpacked comes back the same, renamed") {
        cz_test::temp_dir tmp;
        auto src = tmp.path / "src";
        fs::create_directories(src / "sub dir/empty");
        cz_test::write_file(src / "a file with spaces", "spaces\n");
        cz_test::write_file(src / "sub dir/script", "#!/bin/sh\necho hi\n");
        fs::permissions(src / "sub dir/script", fs::perms(0750));
        cz_test::write_file(src / "ro", "read only");
        fs::permissions(src / "ro", fs::perms(0400));
        fs::create_symlink("sub dir/script", src / "rel-link");
        fs::create_symlink("/etc/hostname", src / "abs-link");
        fs::create_symlink("missing", src / "dangling");
        fs::permissions(src / "sub dir", fs::perms(0705));

        for (const auto& item : std::vector<std::pair<std::string, ct::copy_rename>>{
                 {"src", {"src", "copy"}}, {"", {"", "copy"}}, {"src", {"src", "src"}}}) {
            // Not a structured binding: clang 14 cannot capture one (CAPTURE and INFO do).
            const std::string& name = item.first;
            const ct::copy_rename& rename = item.second;
            CAPTURE(name);
            cz::byte_buffer bytes;
            cz::buffer_sink sink(bytes);
            std::error_code ec;
            std::string why;
            ct::archive_host_path(src, name, sink, {}, ec, &why);
            REQUIRE_MESSAGE(!ec, why);
            auto out = tmp.path / "out";
            fs::create_directories(out);
            cz::memory_source in(bytes);
            ct::extract_untrusted(in, out, rename, ec, &why);
            REQUIRE_MESSAGE(!ec, why);
            INFO(show(tree_of(out / rename.to)), "\nsource:\n", show(tree_of(src)));
            CHECK(tree_of(out / rename.to) == tree_of(src));
            // The archive's members: root's unless keep_owner.
            cz::memory_source again(bytes);
            cz::tar::reader r(again);
            while (const auto* e = r.next())
                CHECK(e->uid == 0);
            fs::remove_all(out);
        }
        // GNU tar reads what archive_host_path writes, and finds the same tree.
        if (!cz_test::have("tar")) CZ_SKIP("GNU tar is not installed");
        {
            cz::byte_buffer bytes;
            cz::buffer_sink sink(bytes);
            ct::host_archive_options keep;
            keep.keep_owner = true;
            std::error_code ec;
            ct::archive_host_path(src, "src", sink, keep, ec);
            REQUIRE_FALSE(ec);
            auto tar_file = tmp.path / "a.tar";
            cz_test::write_file(tar_file, std::string(cz::as_chars(bytes)));
            fs::create_directories(tmp.path / "gnu");
            cz_test::sh_ok("tar -xpf " + cz_test::quote(tar_file.string()) + " -C " +
                           cz_test::quote((tmp.path / "gnu").string()));
            CHECK(tree_of(tmp.path / "gnu/src") == tree_of(src));
        }
    }

    TEST_CASE("cp: a missing host source names it") {
        cz_test::temp_dir tmp;
        cz::byte_buffer bytes;
        cz::buffer_sink sink(bytes);
        std::error_code ec;
        std::string why;
        ct::archive_host_path(tmp.path / "nope", "nope", sink, {}, ec, &why);
        CHECK(ec == std::errc::no_such_file_or_directory);
        CHECK(why.find("nope") != std::string::npos);
    }

    TEST_CASE("cp: control payloads") {
        std::error_code ec;
        CHECK(ct::decode_container_path(cz::as_bytes(std::string_view("/a b")), ec) == "/a b");
        CHECK_FALSE(ec);
        for (std::string bad : {std::string(""), std::string("rel"), std::string("/a\0b", 4),
                                "/" + std::string(4095, 'x')}) {
            ct::decode_container_path(cz::as_bytes(bad), ec);
            CHECK(ec == ct::errc::bad_frame);
        }
        ct::path_info p;
        p.exists = true;
        p.mode = 040755;
        p.size = 4096;
        p.mtime = -5;
        auto back = ct::path_info_from_json(ct::to_json(p), ec);
        REQUIRE_FALSE(ec);
        CHECK(back.exists);
        CHECK(back.is_dir());
        CHECK(back.size == 4096);
        CHECK(back.mtime == -5);
        std::string why;
        for (const char* bad : {"[]", "{\"exists\":true}",
                                "{\"exists\":1,\"mode\":0,\"size\":0,"
                                "\"mtime\":0}",
                                "{\"exists\":true,\"mode\":-1,\"size\":0,\"mtime\":0}",
                                "{\"exists\":true,\"mode\":4294967296,\"size\":0,\"mtime\":0}"}) {
            CAPTURE(bad);
            ct::path_info_from_json(bad, ec, &why);
            CHECK(ec == ct::errc::bad_frame);
            CHECK_FALSE(why.empty());
        }
    }
}
