// cz-init's CopyIn and CopyOut file system work (guest/agent/copy.hpp) on the host's kernel:
// hostile archives that try to write outside the target, and what an archive says about owners
// (root: the integration suite). The round trip of a whole tree runs in a VM (agent_vm.cpp).
#include "agent/copy.hpp"

#include "support/support.hpp"

#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace cz::guest;

namespace {

// An archive made by cz::tar::writer from (name, type, link target or contents) triples.
struct member {
    std::string name;
    cz::tar::entry_type type = cz::tar::entry_type::regular;
    std::string text; // contents, or the link target
};

std::string archive(const std::vector<member>& members) {
    cz::byte_buffer bytes;
    cz::buffer_sink sink(bytes);
    cz::tar::writer w(sink);
    for (const auto& m : members) {
        cz::tar::entry e;
        e.name = m.name;
        e.type = m.type;
        e.mode = m.type == cz::tar::entry_type::directory ? 0755 : 0644;
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
        default:
            e.size = m.text.size();
            break;
        }
        w.add(e);
        if (e.size) w.write(cz::as_bytes(m.text));
    }
    w.finish();
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

copy_error extract(const std::string& tar, const std::string& target) {
    cz::memory_source src(cz::as_bytes(tar));
    copy_error err;
    bool ok = extract_tar(src, target, err);
    CHECK(ok == !err);
    return err;
}

copy_error extract_in(const std::string& tar, const std::string& target, const std::string& root) {
    cz::memory_source src(cz::as_bytes(tar));
    copy_error err;
    bool ok = extract_tar(src, target, err, root);
    CHECK(ok == !err);
    return err;
}

} // namespace

TEST_SUITE("guest") {
    TEST_CASE("copy: nothing an archive says lands outside the target") {
        if (!cz_test::is_root()) CZ_SKIP("needs root (extraction sets owners)");
        cz_test::temp_dir dir("cz-guest-copy");
        const std::string target = dir / "target", outside = dir / "outside";
        cz_test::sh_ok("mkdir -p " + cz_test::quote(outside));

        SUBCASE("a '..' that climbs out is refused, naming the member") {
            auto err =
                extract(archive({{"ok.txt", {}, "ok"}, {"a/../../escaped", {}, "x"}}), target);
            CHECK(err.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT);
            CHECK(err.message.find("'a/../../escaped'") != std::string::npos);
            CHECK(!std::filesystem::exists(dir / "escaped"));
            CHECK(cz_test::read_file(target + "/ok.txt") == "ok"); // what came before stays
        }
        SUBCASE("a '..' that stays inside is fine") {
            CHECK(!extract(archive({{"a/b/../c.txt", {}, "c"}}), target));
            CHECK(cz_test::read_file(target + "/a/c.txt") == "c");
        }
        SUBCASE("absolute names land under the target") {
            CHECK(!extract(archive({{"/etc/cz-abs", {}, "abs"}}), target));
            CHECK(cz_test::read_file(target + "/etc/cz-abs") == "abs");
            CHECK(!std::filesystem::exists("/etc/cz-abs"));
        }
        SUBCASE("a symlink out of the target, then members through it") {
            auto err = extract(archive({{"up", cz::tar::entry_type::symlink, outside},
                                        {"rel", cz::tar::entry_type::symlink, "../../../../.."},
                                        {"up/through-abs", {}, "1"},
                                        {"rel/through-rel", {}, "2"}}),
                               target);
            // "up" resolves to <target><outside>, which does not exist: an error, not a write.
            CHECK(err.code == cz_agent_ErrorCode_ERROR_NOT_FOUND);
            CHECK(std::filesystem::is_empty(outside));
            CHECK(!extract(archive({{"rel", cz::tar::entry_type::symlink, "../../../../.."},
                                    {"rel/through-rel", {}, "2"}}),
                           target));
            CHECK(cz_test::read_file(target + "/through-rel") == "2");
            CHECK(std::filesystem::is_empty(outside));
        }
        SUBCASE("a symlink already in the target is replaced, not written through") {
            cz_test::sh_ok("mkdir -p " + cz_test::quote(target) + " && echo keep > " +
                           cz_test::quote(outside + "/victim") + " && ln -s " +
                           cz_test::quote(outside + "/victim") + " " +
                           cz_test::quote(target + "/victim"));
            CHECK(!extract(archive({{"victim", {}, "new"}}), target));
            CHECK(cz_test::read_file(outside + "/victim") == "keep\n");
            CHECK(!std::filesystem::is_symlink(target + "/victim"));
            CHECK(cz_test::read_file(target + "/victim") == "new");
        }
        SUBCASE("a hard link to a name outside the target is refused") {
            auto err =
                extract(archive({{"h", cz::tar::entry_type::hard_link, "../outside/x"}}), target);
            CHECK(err.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT);
            CHECK(err.message.find("'../outside/x'") != std::string::npos);
        }
        SUBCASE("a truncated archive is an error that says where") {
            auto tar = archive({{"f", {}, std::string(2000, 'x')}});
            auto err = extract(tar.substr(0, 1024), target);
            CHECK(err.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT);
            CHECK(err.message.find("tar stream") == 0);
        }
    }

    TEST_CASE("copy: a container's paths resolve inside its root") {
        if (!cz_test::is_root()) CZ_SKIP("needs root (extraction sets owners)");
        cz_test::temp_dir dir("cz-guest-copy");
        // A container root whose symlinks point at absolute paths and climb above it.
        const std::string root = dir / "root", outside = dir / "outside";
        cz_test::sh_ok("mkdir -p " + cz_test::quote(root + "/etc") + " " + cz_test::quote(outside) +
                       " && echo inside > " + cz_test::quote(root + "/etc/hostname") +
                       " && ln -s /etc " + cz_test::quote(root + "/abs") +
                       " && ln -s ../../../../.. " + cz_test::quote(root + "/up") + " && ln -s " +
                       cz_test::quote(outside) + " " + cz_test::quote(root + "/out"));

        // In: "/abs/new" is <root>/etc/new, "/up/x" is <root>/x, and "/out/y" would be
        // <root><outside>/y, which is not there: an error, nothing outside.
        CHECK(!extract_in(archive({{"f", {}, "1"}}), "/abs/new", root));
        CHECK(cz_test::read_file(root + "/etc/new/f") == "1");
        CHECK(!extract_in(archive({{"f", {}, "2"}}), "/up/x", root));
        CHECK(cz_test::read_file(root + "/x/f") == "2");
        CHECK(extract_in(archive({{"f", {}, "3"}}), "/out/y", root));
        CHECK(std::filesystem::is_empty(outside));

        // Out: the archive of "/up/abs/hostname" is the root's /etc/hostname.
        cz::byte_buffer bytes;
        cz::buffer_sink sink(bytes);
        copy_error err;
        REQUIRE(archive_path("/up/abs/hostname", sink, err, root));
        cz::memory_source src(bytes);
        cz::tar::reader r(src);
        const auto* e = r.next();
        REQUIRE(e);
        CHECK(e->name == "hostname");
        std::vector<std::byte> text(e->size);
        std::error_code ec;
        CHECK(r.read_some(text, ec) == 7);
        CHECK(std::string(cz::as_chars(text)) == "inside\n");

        // Stat: symlinks followed inside the root, or not at all.
        struct ::stat st {};
        REQUIRE(stat_path("/up/abs/hostname", true, root, st, err));
        CHECK(S_ISREG(st.st_mode));
        REQUIRE(stat_path("/abs", false, root, st, err));
        CHECK(S_ISLNK(st.st_mode));
        CHECK_FALSE(stat_path("/nosuch", true, root, st, err));
        CHECK(err.code == cz_agent_ErrorCode_ERROR_NOT_FOUND);
    }

    TEST_CASE("copy: archive_path packs what extract_tar unpacks") {
        if (!cz_test::is_root()) CZ_SKIP("needs root (extraction sets owners)");
        cz_test::temp_dir dir("cz-guest-copy");
        const std::string src = dir / "src";
        cz_test::sh_ok("mkdir -p " + cz_test::quote(src + "/d/e") + " && echo hi > " +
                       cz_test::quote(src + "/d/f") + " && chmod 0600 " +
                       cz_test::quote(src + "/d/f") + " && chown 42:43 " +
                       cz_test::quote(src + "/d/f") + " && ln -s f " +
                       cz_test::quote(src + "/d/l") + " && mkfifo " + cz_test::quote(src + "/p"));
        cz::byte_buffer bytes;
        cz::buffer_sink sink(bytes);
        copy_error err;
        REQUIRE_MESSAGE(archive_path(src, sink, err), err.message);
        cz::memory_source in(bytes);
        REQUIRE_MESSAGE(extract_tar(in, dir / "dst", err), err.message);
        auto listing = [](const std::string& d) {
            return cz_test::sh_ok("cd " + cz_test::quote(d) +
                                  " && find . -printf '%P %y %m %U:%G %s %l\\n' | sort");
        };
        CHECK(listing(src) == listing(dir / "dst/src"));

        cz::byte_buffer none;
        cz::buffer_sink none_sink(none);
        CHECK(!archive_path(dir / "missing", none_sink, err));
        CHECK(err.code == cz_agent_ErrorCode_ERROR_NOT_FOUND);
        CHECK(err.message.find("missing") != std::string::npos);
    }
}
