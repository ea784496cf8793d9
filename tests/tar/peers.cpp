// cz/tar against the real tools: GNU tar (the reference; where the issue is silent cz does what
// it does) and bsdtar (libarchive).
//  - the libarchive corpus in tests/data/tar-corpus: names as `tar -tf` prints them,
//    contents as GNU tar extracts them, clean failures where both tools fail;
//  - archives made here by GNU tar and bsdtar: long names and links, sparse files (posix and gnu
//    formats) of 8 GiB and more, hard links, xattrs, devices, fifos, base-256 ids;
//  - archives made by cz (`cz tar create`), extracted by GNU tar and bsdtar.
#include <cz/tar.hpp>

#include "helpers.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/unique_fd.hpp>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <map>
#include <set>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

using namespace cz_tar_test;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

// The cz tool, when the build has examples.
std::string cz_exe() {
    auto path = env("CZ_BUILD_ROOT") + "/examples/cz";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

// Compares an entry's content, as the cz reader yields it, with a file GNU tar extracted,
// reading only the file's data regions (SEEK_DATA) so that 8 GiB sparse files stay cheap; the
// rest of cz's content must be zeros.
void check_content(cz::tar::reader& r, const cz::tar::entry& e, const std::string& path) {
    CAPTURE(path);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    CHECK(std::uint64_t(st.st_size) == e.size);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> regions; // [begin, end)
    off_t pos = 0;
    while (pos < st.st_size) {
        off_t data = ::lseek(fd, pos, SEEK_DATA);
        if (data < 0) break;
        off_t hole = ::lseek(fd, data, SEEK_HOLE);
        if (hole < 0) hole = st.st_size;
        regions.emplace_back(std::uint64_t(data), std::uint64_t(hole));
        pos = hole;
    }
    std::vector<std::byte> mine(1 << 20), theirs(1 << 20);
    std::uint64_t at = 0;
    std::error_code ec;
    bool same = true;
    std::size_t region = 0;
    while (same) {
        auto n = r.read_some(mine, ec);
        REQUIRE_FALSE(ec);
        if (n == 0) break;
        std::uint64_t end = at + n;
        for (std::uint64_t p = at; p < end && same;) {
            while (region < regions.size() && regions[region].second <= p)
                ++region;
            bool in_data = region < regions.size() && regions[region].first <= p;
            auto stop =
                in_data ? std::min(end, regions[region].second)
                        : (region < regions.size() ? std::min(end, regions[region].first) : end);
            auto len = std::size_t(stop - p);
            const std::byte* m = mine.data() + (p - at);
            if (in_data) {
                REQUIRE(::pread(fd, theirs.data(), len, off_t(p)) == ssize_t(len));
                same = std::memcmp(m, theirs.data(), len) == 0;
            } else {
                same = std::all_of(m, m + len, [](std::byte b) { return b == std::byte(0); });
            }
            p = stop;
        }
        at = end;
    }
    ::close(fd);
    CHECK(same);
    CHECK(at == std::uint64_t(st.st_size));
}

// Checks every regular file of `archive` against GNU tar's extraction of it. Names that occur
// more than once are checked at their last occurrence (the one that wins on disk).
int check_contents_against_gnu_tar(const std::string& archive) {
    temp_dir out;
    if (sh("tar -xf " + quote(archive) + " -C " + quote(out.path) + " 2>/dev/null") != 0) return -1;
    std::map<std::string, std::size_t> last;
    {
        cz::unique_fd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
        cz::fd_source file(fd.get());
        cz::decompressing_source plain(file);
        cz::tar::reader r(plain);
        std::size_t i = 0;
        while (const auto* e = r.next()) {
            auto p = cz::tar::normalize_path(e->name, cz::tar::dotdot_policy::clamp);
            if (e->is_file() && !p.empty())
                last[p] = i;
            else
                last.erase(p);
            ++i;
        }
    }
    cz::unique_fd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
    cz::fd_source file(fd.get());
    cz::decompressing_source plain(file);
    cz::tar::reader r(plain);
    std::size_t i = 0;
    int checked = 0;
    while (const auto* e = r.next()) {
        auto p = cz::tar::normalize_path(e->name, cz::tar::dotdot_policy::clamp);
        auto it = last.find(p);
        if (it != last.end() && it->second == i) {
            check_content(r, *e, out.path + "/" + p);
            ++checked;
        }
        ++i;
    }
    return checked;
}

// `cz tar list` must print byte for byte what `tar -tf` prints.
void check_listing(const std::string& cz, const std::string& archive) {
    std::string gnu, mine;
    REQUIRE(sh("tar -tf " + quote(archive) + " 2>/dev/null", &gnu) == 0);
    CHECK(sh(cz + " tar list " + quote(archive), &mine) == 0);
    CHECK(mine == gnu);
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    REQUIRE(d);
    while (auto* e = ::readdir(d.get()))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
    std::sort(names.begin(), names.end());
    return names;
}

bool set_xattr(const std::string& path, const char* name, std::string_view value) {
    return ::lsetxattr(path.c_str(), name, value.data(), value.size(), 0) == 0;
}

std::string get_xattr(const std::string& path, const char* name) {
    char buf[256];
    auto n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
    return n < 0 ? std::string("<none>") : std::string(buf, std::size_t(n));
}

// Builds the tree the generated archives are made from. Returns false when the file system
// has no user xattrs (then none are set).
bool make_tree(const std::string& root, bool with_big_sparse) {
    REQUIRE(sh("mkdir -p " + quote(root)) == 0);
    auto deep = root + "/" + std::string(120, 'd') + "/" + std::string(120, 'e');
    REQUIRE(sh("mkdir -p " + quote(deep)) == 0);
    write_file(deep + "/" + std::string(90, 'f'), "deep content\n");
    write_file(root + "/plain", "plain file\n");
    write_file(root + "/tab\tnewline\nbackslash\\caf\xc3\xa9\x01\xff", "odd name\n");
    std::string random(300000, '\0');
    std::uint32_t x = 12345;
    for (auto& c : random)
        c = char((x = x * 1103515245 + 12345) >> 24);
    write_file(root + "/random.bin", random);
    REQUIRE(::symlink((std::string(200, 'l') + "/target").c_str(), (root + "/longlink").c_str()) ==
            0);
    REQUIRE(::symlink("plain", (root + "/sym").c_str()) == 0);
    REQUIRE(::link((root + "/plain").c_str(), (root + "/hardlink").c_str()) == 0);
    REQUIRE(::mkfifo((root + "/fifo").c_str(), 0640) == 0);
    REQUIRE(::chmod((root + "/random.bin").c_str(), 04750) == 0);
    if (with_big_sparse) {
        // 8 GiB + 1 KiB logical, two small data regions: a few KiB on disk.
        int fd = ::open((root + "/sparse8g").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "start", 5, 4096) == 5);
        REQUIRE(::pwrite(fd, "middle", 6, off_t(5) << 30) == 6);
        REQUIRE(::ftruncate(fd, (off_t(8) << 30) + 1024) == 0);
        ::close(fd);
    }
    return set_xattr(root + "/plain", "user.cz", "xattr value") &&
           set_xattr(root + "/random.bin", "user.bin", std::string("\0\x01\xff", 3));
}

} // namespace

TEST_SUITE("tar") {

    TEST_CASE("libarchive's corpus: cz lists what GNU tar lists and reads what it extracts") {
        if (!have("tar") || !have("bsdtar")) {
            MESSAGE("skipped: GNU tar or bsdtar (libarchive-tools) is not installed");
            return;
        }
        auto cz = cz_exe();
        if (cz.empty()) MESSAGE("cz tool not built (-Dexamples=false): listings are not compared");
        auto dir = env("CZ_TESTDATA") + "/tar-corpus";
        auto names = list_dir(dir);
        REQUIRE(!names.empty());
        int listed = 0, both_rejected = 0, files_checked = 0;
        for (const auto& name : names) {
            if (!name.ends_with(".tar")) continue;
            auto path = dir + "/" + name;
            CAPTURE(name);
            int gnu = sh("tar -tf " + quote(path) + " >/dev/null 2>&1");
            int bsd = sh("bsdtar -tf " + quote(path) + " >/dev/null 2>&1");
            if (gnu == 0) {
                if (!cz.empty()) check_listing(cz, path);
                auto n = check_contents_against_gnu_tar(path);
                CHECK(n >= 0);
                files_checked += n;
                ++listed;
            } else if (bsd != 0) {
                // Both reject it: cz exits 1 with one line "cz: <file>: tar header at offset N:
                // ...".
                auto r = [&] {
                    cz::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
                    cz::fd_source src(fd.get());
                    return read_archive(src);
                }();
                CHECK(r.ec);
                if (!cz.empty()) {
                    std::string err;
                    CHECK(sh(cz + " tar list " + quote(path) + " 2>&1 >/dev/null", &err) == 1);
                    CHECK(err.starts_with("cz: "));
                    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
                    CHECK(err.find("tar header at offset") != std::string::npos);
                }
                ++both_rejected;
            } else {
                // GNU tar rejects what bsdtar reads: cz follows GNU tar and must not crash; which
                // way it goes is not checked.
                MESSAGE("GNU tar rejects and bsdtar accepts: " << name);
            }
        }
        MESSAGE(listed << " archives listed and extracted identically (" << files_checked
                       << " files), " << both_rejected << " rejected by both tools and by cz");
        CHECK(listed >= 20);
    }

    TEST_CASE("archives written by GNU tar and bsdtar: every format feature") {
        if (!have("tar") || !have("bsdtar")) {
            MESSAGE("skipped: GNU tar or bsdtar (libarchive-tools) is not installed");
            return;
        }
        auto cz = cz_exe();
        temp_dir tmp;
        auto src = tmp.path + "/src";
        bool xattrs = make_tree(src, true);
        if (!xattrs) MESSAGE("the file system has no user xattrs: xattr checks skipped");
        // Device nodes need root to create; bsdtar builds them from an mtree description instead.
        write_file(tmp.path + "/devices.mtree",
                   "#mtree\n./null type=char mode=0666 uid=0 gid=0 device=native,1,3\n"
                   "./sda1 type=block mode=0660 uid=0 gid=6 device=native,8,1\n"
                   "./fifo type=fifo mode=0600\n");
        struct made {
            std::string name, command;
            bool sparse;
            std::uint64_t uid = 0, gid = 0;
        };
        std::string c = "cd " + quote(src) + " && ";
        std::string out = tmp.path + "/";
        std::vector<made> archives = {
            {"gnu-posix.tar",
             c +
                 "tar --format=posix --sparse --xattrs --owner=big:3000000000 "
                 "--group=big:4000000000 -cf " +
                 out + "gnu-posix.tar .",
             true, 3000000000, 4000000000},
            {"gnu-posix-sparse0.0.tar",
             c + "tar --format=posix --sparse --sparse-version=0.0 -cf " + out +
                 "gnu-posix-sparse0.0.tar sparse8g plain",
             true},
            {"gnu-posix-sparse0.1.tar",
             c + "tar --format=posix --sparse --sparse-version=0.1 -cf " + out +
                 "gnu-posix-sparse0.1.tar sparse8g plain",
             true},
            {"gnu-gnu.tar",
             c + "tar --format=gnu --sparse --owner=big:3000000000 --group=big:4000000000 -cf " +
                 out + "gnu-gnu.tar .",
             true, 3000000000, 4000000000},
            {"gnu-oldgnu.tar",
             c + "tar --format=oldgnu --exclude=./sparse8g -cf " + out + "gnu-oldgnu.tar .", false},
            {"gnu-v7.tar",
             c + "tar --format=v7 --exclude=./sparse8g --exclude=./longlink --exclude=./" +
                 std::string(120, 'd') + " -cf " + out + "gnu-v7.tar . 2>/dev/null",
             false},
            {"gnu-posix.tar.gz",
             c + "tar --format=posix --exclude=./sparse8g -czf " + out + "gnu-posix.tar.gz .",
             false},
            {"gnu-posix.tar.zst",
             c + "tar --format=posix --exclude=./sparse8g --zstd -cf " + out +
                 "gnu-posix.tar.zst .",
             false},
            {"bsdtar-pax.tar",
             c + "bsdtar --format=pax --uid 2000000000 --gid 2100000000 -cf " + out +
                 "bsdtar-pax.tar . 2>/dev/null",
             true, 2000000000, 2100000000},
            {"bsdtar-gnutar.tar",
             c + "bsdtar --format=gnutar --exclude ./sparse8g -cf " + out + "bsdtar-gnutar.tar .",
             false},
            {"bsdtar-ustar.tar",
             c + "bsdtar --format=ustar --exclude ./sparse8g --exclude ./longlink -cf " + out +
                 "bsdtar-ustar.tar . 2>/dev/null",
             false},
            {"bsdtar-devices.tar",
             "cd " + quote(tmp.path) + " && bsdtar -cf " + out +
                 "bsdtar-devices.tar @devices.mtree",
             false},
        };
        for (const auto& a : archives) {
            CAPTURE(a.name);
            auto path = out + a.name;
            int rc = sh(a.command);
            if (a.name.starts_with("gnu-v7") || a.name.starts_with("bsdtar-ustar"))
                rc = 0; // warns about what it cannot store
            REQUIRE(rc == 0);
            if (!cz.empty()) check_listing(cz, path);
            if (!cz.empty() && !a.sparse) {
                // `cz tar cat` writes what `tar -xOf` writes: from a mapped file and from a pipe.
                std::string gnu, mapped, piped;
                REQUIRE(sh("tar -xOf " + quote(path), &gnu) == 0);
                CHECK(sh(cz + " tar cat " + quote(path), &mapped) == 0);
                CHECK(sh("cat " + quote(path) + " | " + cz + " tar cat", &piped) == 0);
                CHECK(mapped == gnu);
                CHECK(piped == gnu);
            }
            int files = a.name == "bsdtar-devices.tar"                ? 0
                        : a.name.find("sparse0") != std::string::npos ? 2
                                                                      : 3;
            CHECK(check_contents_against_gnu_tar(path) >= files);

            cz::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            cz::fd_source file(fd.get());
            cz::decompressing_source plain(file);
            cz::tar::reader r(plain);
            std::map<std::string, cz::tar::entry> seen;
            while (const auto* e = r.next())
                seen[cz::tar::normalize_path(e->name)] = *e;
            if (a.name == "bsdtar-devices.tar") {
                REQUIRE(seen.count("null"));
                CHECK(seen["null"].type == cz::tar::entry_type::char_device);
                CHECK(seen["null"].devmajor == 1);
                CHECK(seen["null"].devminor == 3);
                CHECK(seen["sda1"].type == cz::tar::entry_type::block_device);
                CHECK(seen["sda1"].devmajor == 8);
                CHECK(seen["sda1"].devminor == 1);
                CHECK(seen["sda1"].gid == 6);
                CHECK(seen["fifo"].type == cz::tar::entry_type::fifo);
                continue;
            }
            REQUIRE(seen.count("plain"));
            // One of the two names of the hard-linked file holds the data and the xattrs.
            auto& data = seen["plain"].type == cz::tar::entry_type::hard_link ? seen["hardlink"]
                                                                              : seen["plain"];
            CHECK(data.size == 11);
            if (a.name.find("sparse0") != std::string::npos) {
                CHECK(seen["sparse8g"].is_sparse());
                CHECK(seen["sparse8g"].size == (std::uint64_t(8) << 30) + 1024);
                continue;
            }
            if (!a.name.starts_with("gnu-v7")) // v7 has no fifo type
                CHECK(seen["fifo"].type == cz::tar::entry_type::fifo);
            CHECK(seen["sym"].type == cz::tar::entry_type::symlink);
            CHECK(seen["sym"].linkname == "plain");
            CHECK(seen["random.bin"].mode == 04750);
            // One of the two names of the hard-linked file is stored as a link to the other.
            bool linked = (seen["hardlink"].type == cz::tar::entry_type::hard_link &&
                           cz::tar::normalize_path(seen["hardlink"].linkname) == "plain") ||
                          (seen["plain"].type == cz::tar::entry_type::hard_link &&
                           cz::tar::normalize_path(seen["plain"].linkname) == "hardlink");
            CHECK(linked);
            if (a.name.starts_with("gnu-v7") || a.name.starts_with("bsdtar-ustar")) continue;
            CHECK(seen["longlink"].linkname == std::string(200, 'l') + "/target");
            CHECK(seen.count(std::string(120, 'd') + "/" + std::string(120, 'e') + "/" +
                             std::string(90, 'f')));
            if (a.uid) {
                CHECK(data.uid == a.uid);
                CHECK(data.gid == a.gid);
            }
            if (a.sparse) {
                const auto& s = seen["sparse8g"];
                CHECK(s.is_sparse());
                CHECK(s.size == (std::uint64_t(8) << 30) + 1024);
                CHECK(s.stored_size < (1u << 20));
            }
            if (xattrs && (a.name == "gnu-posix.tar" || a.name == "bsdtar-pax.tar")) {
                auto& x = data.xattrs;
                CHECK(std::find(x.begin(), x.end(), cz::tar::xattr{"user.cz", "xattr value"}) !=
                      x.end());
                auto& y = seen["random.bin"].xattrs;
                CHECK(std::find(y.begin(), y.end(),
                                cz::tar::xattr{"user.bin", std::string("\0\x01\xff", 3)}) !=
                      y.end());
            }
        }
    }

    TEST_CASE(
        "cz tar create: GNU tar and bsdtar extract what the tree holds; output is deterministic") {
        if (!have("tar") || !have("bsdtar")) {
            MESSAGE("skipped: GNU tar or bsdtar (libarchive-tools) is not installed");
            return;
        }
        auto cz = cz_exe();
        if (cz.empty()) {
            MESSAGE("skipped: the cz tool is not built (-Dexamples=false)");
            return;
        }
        temp_dir tmp;
        auto src = tmp.path + "/src";
        bool xattrs = make_tree(src, false);
        auto archive = tmp.path + "/cz.tar";
        REQUIRE(sh(cz + " tar create --mtime 1000000000 -o " + archive + " " + quote(src)) == 0);
        std::string again;
        REQUIRE(sh(cz + " tar create --mtime 1000000000 " + quote(src), &again) == 0);
        CHECK(again == read_file(archive)); // deterministic
        std::string zst;
        REQUIRE(
            sh(cz + " tar create --mtime 1000000000 --compress zstd " + quote(src) + " | zstd -dc",
               &zst) == 0);
        CHECK(zst == again);

        // The cz reader reads it back; GNU tar lists it the same.
        check_listing(cz, archive);
        for (const char* tool : {"tar --xattrs --xattrs-include='*'", "bsdtar"}) {
            CAPTURE(tool);
            auto dest = tmp.path + "/x-" + std::string(tool).substr(0, 3);
            REQUIRE(sh("mkdir " + quote(dest) + " && " + tool + " -xf " + archive + " -C " +
                       quote(dest)) == 0);
            // Same names, types, contents, link targets, modes and mtimes as the source tree.
            std::function<void(const std::string&)> compare = [&](const std::string& rel) {
                for (const auto& n : list_dir(src + rel)) {
                    auto a = src + rel + "/" + n, b = dest + rel + "/" + n;
                    CAPTURE(b);
                    struct stat sa {
                    }, sb{};
                    REQUIRE(::lstat(a.c_str(), &sa) == 0);
                    REQUIRE(::lstat(b.c_str(), &sb) == 0);
                    CHECK((sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT));
                    CHECK((sa.st_mode & 0777) == (sb.st_mode & 0777));
                    CHECK(sb.st_mtime == 1000000000);
                    if (S_ISREG(sa.st_mode)) CHECK(read_file(a) == read_file(b));
                    if (S_ISLNK(sa.st_mode)) {
                        char ta[4096], tb[4096];
                        auto la = ::readlink(a.c_str(), ta, sizeof ta),
                             lb = ::readlink(b.c_str(), tb, sizeof tb);
                        CHECK(std::string(ta, std::size_t(la)) == std::string(tb, std::size_t(lb)));
                    }
                    if (S_ISDIR(sa.st_mode)) compare(rel + "/" + n);
                }
            };
            compare("");
            struct stat p {
            }, h{};
            REQUIRE(::stat((dest + "/plain").c_str(), &p) == 0);
            REQUIRE(::stat((dest + "/hardlink").c_str(), &h) == 0);
            CHECK(p.st_ino == h.st_ino); // hard link restored as one
            if (xattrs) {
                CHECK(get_xattr(dest + "/plain", "user.cz") == "xattr value");
                CHECK(get_xattr(dest + "/random.bin", "user.bin") == std::string("\0\x01\xff", 3));
            }
        }
    }

    TEST_CASE(
        "cz tar list: gzip and zstd detected; standard input; --json; failures are one line") {
        auto cz = cz_exe();
        if (cz.empty() || !have("tar")) {
            MESSAGE("skipped: the cz tool is not built, or GNU tar is missing");
            return;
        }
        temp_dir tmp;
        write_file(tmp.path + "/a", "data");
        REQUIRE(sh("cd " + tmp.path +
                   " && mkfifo f && tar --format=posix -cf t.tar a f && gzip -k t.tar && zstd -q "
                   "t.tar") == 0);
        std::string plain, gz, zs, stdin_out;
        REQUIRE(sh(cz + " tar list " + tmp.path + "/t.tar", &plain) == 0);
        REQUIRE(sh(cz + " tar list " + tmp.path + "/t.tar.gz", &gz) == 0);
        REQUIRE(sh(cz + " tar list " + tmp.path + "/t.tar.zst", &zs) == 0);
        REQUIRE(sh(cz + " tar list - < " + tmp.path + "/t.tar.gz", &stdin_out) == 0);
        CHECK(plain == "a\nf\n");
        CHECK(gz == plain);
        CHECK(zs == plain);
        CHECK(stdin_out == plain);
        std::string json;
        REQUIRE(sh(cz + " tar list --json " + tmp.path + "/t.tar", &json) == 0);
        CHECK(json.find("\"name\":\"a\"") != std::string::npos);
        CHECK(json.find("\"type\":\"fifo\"") != std::string::npos);
        CHECK(json.find("\"size\":4") != std::string::npos);
        CHECK(std::count(json.begin(), json.end(), '\n') == 2);

        // Truncated in the middle of the data: exit 1, one line naming the file and the offset.
        REQUIRE(sh("head -c 1600 " + tmp.path + "/t.tar > " + tmp.path + "/cut.tar") == 0);
        std::string err;
        CHECK(sh(cz + " tar list " + tmp.path + "/cut.tar 2>&1 >/dev/null", &err) == 1);
        CHECK(err.starts_with("cz: " + tmp.path + "/cut.tar: tar header at offset"));
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        CHECK(sh("tar -tf " + tmp.path + "/cut.tar >/dev/null 2>&1") != 0); // GNU tar agrees
    }

} // TEST_SUITE
