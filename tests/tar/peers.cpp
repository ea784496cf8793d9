// cz/tar against the real tools: GNU tar (the reference; where the issue is silent cz does what
// it does) and bsdtar (libarchive).
//  - the libarchive corpus in tests/data/tar-corpus: names as `tar -tf` prints them and the tree
//    as GNU tar extracts it; clean failures where both tools fail; where only bsdtar reads an
//    archive, cz either reads what bsdtar lists or fails with one clear line (which one is
//    reported);
//  - old formats' quirks, written here header by header: directories stored as regular files
//    named "dir/" (v7, ustar, pax path, GNU long name), sizes on symlinks, fifos, devices and
//    directories that are not data, vendor typeflags, a GNU dumpdir, an 8 MB pax attribute, a
//    2 MB pax path, blank numeric fields;
//  - archives made here by GNU tar and bsdtar: long names and links, sparse files (posix and gnu
//    formats) of 8 GiB and more, hard links, xattrs, devices, fifos, base-256 ids;
//  - archives made by cz (`cz tar create`), extracted by GNU tar and bsdtar.
#include <cz/tar.hpp>

#include "helpers.hpp"

#include <cz/core/compression.hpp>
#include <cz/core/unique_fd.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

using namespace cz_tar_test;
using namespace cz_test;

namespace {

// The cz tool, when the build has examples.
std::string cz_exe() {
    const char* root = std::getenv("CZ_BUILD_ROOT");
    auto path = std::string(root ? root : "") + "/examples/cz";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

// Runs `fn` with a cz reader over `archive` (plain, gzip or zstd).
void with_reader(const std::string& archive, const std::function<void(cz::tar::reader&)>& fn) {
    cz::unique_fd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE_MESSAGE(fd, archive);
    cz::fd_source file(fd.get());
    cz::decompressing_source plain(file);
    cz::tar::reader r(plain);
    fn(r);
}

// Compares an entry's content, as the cz reader yields it, with a file a tool extracted, reading
// only the file's data regions (SEEK_DATA) so that 8 GiB sparse files stay cheap; the rest of
// cz's content must be zeros.
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

// The node a tool extracted for entry `e` at `root`/`path`: its type, and for regular files
// their content, for symlinks their target, for hard links their inode, for devices their
// numbers. Returns whether a regular file's content was compared.
bool check_node(cz::tar::reader& r, const cz::tar::entry& e, const std::string& root,
                const std::string& path) {
    CAPTURE(path);
    auto full = root + "/" + path;
    struct stat st {};
    REQUIRE_MESSAGE(::lstat(full.c_str(), &st) == 0, "not extracted: ", path);
    auto kind = st.st_mode & S_IFMT;
    using t = cz::tar::entry_type;
    switch (e.type) {
    case t::regular:
    case t::contiguous:
        REQUIRE(kind == S_IFREG);
        check_content(r, e, full);
        return true;
    case t::hard_link: {
        struct stat target {};
        auto to = root + "/" + cz::tar::normalize_path(e.linkname, cz::tar::dotdot_policy::clamp);
        REQUIRE(::lstat(to.c_str(), &target) == 0);
        CHECK(st.st_ino == target.st_ino);
        return false;
    }
    case t::symlink: {
        REQUIRE(kind == S_IFLNK);
        std::string target(std::size_t(st.st_size) + 1, '\0');
        auto n = ::readlink(full.c_str(), target.data(), target.size());
        REQUIRE(n >= 0);
        target.resize(std::size_t(n));
        CHECK(target == e.linkname);
        return false;
    }
    case t::directory:
    case t::gnu_dumpdir: // GNU tar and bsdtar both make it a directory
        CHECK(kind == S_IFDIR);
        return false;
    case t::fifo:
        CHECK(kind == S_IFIFO);
        return false;
    case t::char_device:
    case t::block_device:
        CHECK(kind == (e.type == t::char_device ? S_IFCHR : S_IFBLK));
        CHECK(::major(st.st_rdev) == e.devmajor);
        CHECK(::minor(st.st_rdev) == e.devminor);
        return false;
    case t::gnu_volume: // not extracted (see check_tree)
    case t::gnu_multivol:
        return false;
    }
    return false;
}

// Extracts `archive` with `tool` (tar or bsdtar) and compares the tree with what the cz reader
// reads: every path cz reads is there with the same type (the last entry of a path wins, as on
// disk), and nothing else is, but the parent directories a tool makes on the way. Returns the
// number of regular files whose content was compared.
int check_tree(const std::string& tool, const std::string& archive) {
    CAPTURE(tool);
    CAPTURE(archive);
    temp_dir out("cz-tar-peers");
    std::string log;
    int rc = sh(tool + " -xf " + quote(archive) + " -C " + quote(out.str()) + " 2>&1", &log);
    REQUIRE_MESSAGE(rc == 0, tool, " -xf exited ", rc, ": ", log);
    using t = cz::tar::entry_type;
    // GNU labels and multi-volume continuations are not extracted.
    auto on_disk = [](const cz::tar::entry& e) {
        return e.type != t::gnu_volume && e.type != t::gnu_multivol;
    };
    std::map<std::string, std::size_t> last;
    with_reader(archive, [&](cz::tar::reader& r) {
        std::size_t i = 0;
        for (const cz::tar::entry* e; (e = r.next()); ++i) {
            auto p = cz::tar::normalize_path(e->name, cz::tar::dotdot_policy::clamp);
            if (!p.empty() && on_disk(*e)) last[p] = i;
        }
    });
    int files = 0;
    with_reader(archive, [&](cz::tar::reader& r) {
        std::size_t i = 0;
        for (const cz::tar::entry* e; (e = r.next()); ++i) {
            auto p = cz::tar::normalize_path(e->name, cz::tar::dotdot_policy::clamp);
            auto it = last.find(p);
            if (it != last.end() && it->second == i && check_node(r, *e, out.str(), p)) ++files;
        }
    });
    std::set<std::string> expected;
    for (const auto& [p, i] : last)
        for (std::filesystem::path q = p; !q.empty(); q = q.parent_path())
            expected.insert(q.string());
    for (const auto& d : std::filesystem::recursive_directory_iterator(out.path)) {
        auto rel = d.path().lexically_relative(out.path).string();
        CHECK_MESSAGE(expected.count(rel), tool, " extracted ", rel, ", which cz does not read");
    }
    return files;
}

// `cz tar list` must print byte for byte what `<tool> -tf` prints.
void check_listing(const std::string& cz, const std::string& archive,
                   const std::string& tool = "tar") {
    std::string theirs, mine;
    REQUIRE(sh(tool + " -tf " + quote(archive) + " 2>/dev/null", &theirs) == 0);
    CHECK(sh(cz + " tar list " + quote(archive), &mine) == 0);
    CHECK(mine == theirs);
}

// A failure as cz reports it: the reader stops with a cz.tar error at a header inside the file,
// and `cz tar list` exits 1 with one line "cz: <file>: tar header at offset N: <why>".
// Returns the reason.
std::string check_clean_failure(const std::string& cz, const std::string& archive) {
    std::error_code ec;
    std::uint64_t at = 0;
    with_reader(archive, [&](cz::tar::reader& r) {
        while (r.next(ec)) {
            // Reading the content is part of reading the archive (a truncated one fails here).
            cz::null_sink sink;
            cz::copy(r, sink, ec);
            if (ec) break;
        }
        at = r.error_detail().offset.value_or(~0ull);
    });
    REQUIRE(ec);
    CHECK(ec.category() == cz::tar::tar_category());
    CHECK(at % 512 == 0);
    CHECK(at < std::filesystem::file_size(archive));
    if (!cz.empty()) {
        std::string err;
        CHECK(sh(cz + " tar list " + quote(archive) + " 2>&1 >/dev/null", &err) == 1);
        CHECK(err == "cz: " + archive + ": tar header at offset " + std::to_string(at) + ": " +
                         ec.message() + "\n");
    }
    return ec.message();
}

// What cz makes of an archive that GNU tar rejects and bsdtar reads: it reads exactly what
// bsdtar lists, or it fails cleanly. Returns "read" or "rejected: <why>".
std::string check_only_bsdtar_reads(const std::string& cz, const std::string& archive) {
    std::error_code ec;
    std::string names;
    with_reader(archive, [&](cz::tar::reader& r) {
        while (const auto* e = r.next(ec)) {
            names += e->name + "\n";
            cz::null_sink sink;
            cz::copy(r, sink, ec);
            if (ec) break;
        }
    });
    if (ec) return "rejected: " + check_clean_failure(cz, archive);
    std::string bsd;
    REQUIRE(sh("bsdtar -tf " + quote(archive) + " 2>/dev/null", &bsd) == 0);
    CHECK(names == bsd);
    if (!cz.empty()) CHECK(sh(cz + " tar list " + quote(archive) + " >/dev/null 2>&1") == 0);
    return "read";
}

// Every archive of a set, sorted by what GNU tar and bsdtar make of it.
struct verdicts {
    int listed = 0, files = 0, both_rejected = 0;
    std::vector<std::string> only_bsdtar; // "<name>: read" or "<name>: rejected: <why>"
};

void check_against_both(const std::string& cz, const std::string& path, const std::string& name,
                        verdicts& v) {
    CAPTURE(name);
    int gnu = sh("tar -tf " + quote(path) + " >/dev/null 2>&1");
    int bsd = sh("bsdtar -tf " + quote(path) + " >/dev/null 2>&1");
    if (gnu == 0) {
        if (!cz.empty()) check_listing(cz, path);
        v.files += check_tree("tar", path);
        ++v.listed;
    } else if (bsd != 0) {
        check_clean_failure(cz, path);
        ++v.both_rejected;
    } else {
        v.only_bsdtar.push_back(name + ": " + check_only_bsdtar_reads(cz, path));
    }
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

// Old formats' quirks that GNU tar and bsdtar read alike, written header by header. Every entry
// that carries no data is followed by what a size would cover: an entry named inner-<n>, which
// GNU tar's and bsdtar's extraction (and bsdtar's listing) read as the next header.
std::string quirks_both_read(bool devices) {
    auto v7 = [](std::string_view name, char type, std::uint64_t size) {
        return header(name, type, size, [](auto& h) { std::memset(h.magic, 0, 8); });
    };
    int n = 0;
    auto inner = [&] { return file("inner-" + std::to_string(++n), "hello"); };
    auto sized = [&](std::string head_name, char type, auto make) {
        auto next = inner();
        return make(head_name, type, next.size()) + next;
    };
    auto ustar = [](std::string_view name, char type, std::uint64_t size) {
        return header(name, type, size);
    };
    std::string a;
    // Directories as v7 tars wrote them: a regular typeflag and a name ending in '/', with a
    // size that is not data; entries inside them.
    a += sized("v7-0/", '0', v7) + file("v7-0/f", "in v7-0\n");
    a += v7("v7-nul/", '\0', 0) + file("v7-nul/f", "in v7-nul\n");
    a += sized("ustar-0/", '0', ustar) + sized("contig/", '7', ustar);
    // The name that decides is the final one: a pax path (with a pax size), a GNU long name.
    auto next = inner();
    a += pax(record("path", "pax-dir/") + record("size", std::to_string(next.size()))) +
         header("pax-placeholder", '0', 0) + next;
    a += header("././@LongLink", 'L', 10) + padded(std::string("long-dir/\0", 10)) +
         header("long-placeholder", '0', 0);
    // A directory, a symlink and a fifo with header sizes: none of it is data.
    a += sized("dir", '5', ustar);
    a += sized("sym", '2', [](std::string_view name, char type, std::uint64_t size) {
        return header(name, type, size, [](auto& h) { std::memcpy(h.linkname, "v7-0/f", 6); });
    });
    a += sized("fifo", '6', ustar);
    if (devices) {
        a += sized("chr", '3', [](std::string_view name, char type, std::uint64_t size) {
            return header(name, type, size, [](auto& h) {
                cz::tar::format_octal(h.devmajor, 8, 1);
                cz::tar::format_octal(h.devminor, 8, 3);
            });
        });
        a += sized("blk", '4', [](std::string_view name, char type, std::uint64_t size) {
            return header(name, type, size, [](auto& h) {
                cz::tar::format_octal(h.devmajor, 8, 7);
                cz::tar::format_octal(h.devminor, 8, 0);
            });
        });
    }
    // Vendor typeflags read as regular files, with their data ('N' is old GNU's; 'I', 'Z'
    // nobody's).
    a += file("vendor-N", "N data", 'N') + file("vendor-I", "I data", 'I') +
         file("vendor-Z", "Z data", 'Z');
    // A GNU dumpdir: a directory whose data (the incremental listing) is skipped.
    auto gnu = [](auto& h) {
        std::memcpy(h.magic, "ustar ", 6);
        std::memcpy(h.version, " \0", 2);
    };
    std::string listing("Nold\0Dsub\0\0", 11);
    a += header("dumpdir", 'D', listing.size(), gnu) + padded(listing);
    // Numbers as old tars wrote them: space-terminated, NUL-terminated early, leading spaces,
    // the whole field without a terminator; base-256 ids and a negative base-256 mtime.
    a += header("numbers", '0', 3,
                [](auto& h) {
                    std::memcpy(h.mode, "  644 \0", 8);
                    std::memcpy(h.uid, "1750\0\0\0", 8);
                    std::memcpy(h.size, "000000000003", 12); // twelve digits, no terminator
                    cz::tar::format_base256(h.gid, 8, 3'000'000'000);
                    cz::tar::format_base256(h.mtime, 12, -86400);
                }) +
         padded("abc");
    // A ustar prefix counts only with the POSIX magic (any version); not in v7 or GNU headers.
    a += header("name", '0', 1,
                [](auto& h) {
                    std::memcpy(h.prefix, "ustar-prefix", 12);
                    std::memcpy(h.version, "  ", 2);
                }) +
         padded("p");
    a += header("name-v7", '0', 1,
                [](auto& h) {
                    std::memset(h.magic, 0, 8);
                    std::memcpy(h.prefix, "ignored", 7);
                }) +
         padded("v");
    a += header("name-gnu", '0', 1,
                [&](auto& h) {
                    gnu(h);
                    std::memcpy(h.prefix, "ignored", 7); // GNU's atime field: not a name
                }) +
         padded("g");
    return a + end_blocks;
}

// Where GNU tar and bsdtar 3.6 part ways and cz reads as GNU tar extracts (as libarchive 3.7.5
// and later do too): a pax size on a directory, symlink or fifo is not data either; a vendor
// typeflag on a name ending in '/' is a regular file (libarchive makes it a directory).
std::string quirks_gnu_extracts() {
    int n = 0;
    auto with_pax_size = [&](std::string_view name, char type) {
        auto next = file("inner-" + std::to_string(++n), "hello");
        return pax(record("size", std::to_string(next.size()))) +
               header(name, type, 0, [](auto& h) { std::memcpy(h.linkname, "target", 6); }) + next;
    };
    return file("target", "t") + with_pax_size("dir", '5') + with_pax_size("sym", '2') +
           with_pax_size("fifo", '6') + file("vendor-dir/", "E data", 'E') + end_blocks;
}

// Blank numeric fields: GNU tar rejects them ("Blanks in header where numeric ... value
// expected"), bsdtar reads them as 0.
std::vector<std::pair<std::string, std::string>> blank_fields() {
    struct field {
        const char* name;
        std::size_t offset, width;
    };
    std::vector<std::pair<std::string, std::string>> out;
    for (const field& f : {field{"blank-mode", offsetof(cz::tar::header_block, mode), 8},
                           field{"blank-mtime", offsetof(cz::tar::header_block, mtime), 12},
                           field{"blank-size", offsetof(cz::tar::header_block, size), 12}}) {
        auto h = header("file", '0', 3, [&](auto& b) {
            // SAFETY: offset + width lies inside the 512-byte block (a field of it).
            std::memset(reinterpret_cast<char*>(&b) + f.offset, ' ', f.width);
        });
        out.emplace_back(f.name, h + padded("abc") + file("after", "xy") + end_blocks);
    }
    return out;
}

} // namespace

TEST_SUITE("tar") {

    TEST_CASE("libarchive's corpus: cz lists what GNU tar lists and reads the tree it extracts") {
        if (!have("tar") || !have("bsdtar"))
            CZ_SKIP("GNU tar or bsdtar (libarchive-tools) is not installed");
        auto cz = cz_exe();
        if (cz.empty()) skip("the cz tool is not built (-Dexamples=false): listings not compared");
        auto dir = (data_dir() / "tar-corpus").string();
        verdicts v;
        for (const auto& name : list_dir(dir))
            if (name.ends_with(".tar")) check_against_both(cz, dir + "/" + name, name, v);
        for (const auto& line : v.only_bsdtar)
            MESSAGE("GNU tar rejects, bsdtar reads; cz: " << line);
        MESSAGE(v.listed << " archives listed and extracted identically (" << v.files
                         << " files compared), " << v.both_rejected
                         << " rejected by both tools and by cz, " << v.only_bsdtar.size()
                         << " read by bsdtar only");
        CHECK(v.listed >= 20);
        CHECK(v.both_rejected >= 3);
    }

    TEST_CASE("old formats' quirks: v7 directories, sizes that are not data, vendor typeflags") {
        if (!have("tar") || !have("bsdtar"))
            CZ_SKIP("GNU tar or bsdtar (libarchive-tools) is not installed");
        auto cz = cz_exe();
        if (cz.empty()) skip("the cz tool is not built (-Dexamples=false): listings not compared");
        // Device nodes: only root can extract them.
        if (!is_root()) skip("not root: the device entries are left out (tools cannot mknod)");
        temp_dir tmp("cz-tar-quirks");
        auto both = tmp / "both.tar";
        write_file(both, quirks_both_read(is_root()));
        // bsdtar lists what both tools extract; GNU tar's -t skips the sizes its -x ignores
        // (every inner-N goes missing from its listing), so its listing is not the reference.
        if (!cz.empty()) check_listing(cz, both, "bsdtar");
        CHECK(check_tree("tar", both) >= 12);
        CHECK(check_tree("bsdtar", both) >= 12);
        using t = cz::tar::entry_type;
        std::map<std::string, cz::tar::entry> seen;
        with_reader(both, [&](cz::tar::reader& r) {
            while (const auto* e = r.next())
                seen[e->name] = *e;
        });
        for (const char* d : {"v7-0/", "v7-nul/", "ustar-0/", "contig/", "pax-dir/", "long-dir/"}) {
            CAPTURE(d);
            CHECK(seen[d].type == t::directory);
            CHECK(seen[d].size == 0);
        }
        CHECK(seen["v7-0/"].typeflag == '0');
        CHECK(seen["sym"].type == t::symlink);
        CHECK(seen["sym"].size == 0);
        CHECK(seen["vendor-Z"].type == t::regular);
        CHECK(seen["dumpdir"].type == t::gnu_dumpdir);
        CHECK(seen["numbers"].mode == 0644);
        CHECK(seen["numbers"].uid == 01750);
        CHECK(seen["numbers"].gid == 3'000'000'000u);
        CHECK(seen["numbers"].mtime_ns == -86400'000000000);
        CHECK(seen.count("ustar-prefix/name"));
        CHECK(seen.count("name-v7"));
        CHECK(seen.count("name-gnu"));

        auto gnu_only = tmp / "gnu-extracts.tar";
        write_file(gnu_only, quirks_gnu_extracts());
        CHECK(check_tree("tar", gnu_only) == 5); // target, inner-1..3, vendor-dir/
    }

    TEST_CASE(
        "an 8 MB pax attribute is read (as GNU tar reads it); a 2 MB pax path fails clearly") {
        if (!have("tar")) CZ_SKIP("GNU tar is not installed");
        auto cz = cz_exe();
        if (cz.empty()) skip("the cz tool is not built (-Dexamples=false): listings not compared");
        temp_dir tmp("cz-tar-bigpax");
        // libarchive's tests carry such an archive (test_read_format_tar_pax_large_attr, an
        // unknown 8,000,000-byte attribute); bsdtar 3.6 refuses it ("Special header too large"),
        // libarchive 3.7.5 and later read it.
        auto big = tmp / "big-attribute.tar";
        write_file(big,
                   pax(record("uid", "1234") +
                       record("LIBARCHIVE.unknown", std::string(8'000'000, 'a')) +
                       record("path", "renamed") + record("comment", std::string(300'000, 'c'))) +
                       file("foo", "foo data\n") + file("bar", "bar data\n") + end_blocks);
        if (!cz.empty()) check_listing(cz, big);
        CHECK(check_tree("tar", big) == 2);
        with_reader(big, [](cz::tar::reader& r) {
            const auto* e = r.next();
            REQUIRE(e);
            CHECK(e->name == "renamed");
            CHECK(e->uid == 1234);
        });
        // A path of 2 MB: GNU tar lists it; cz refuses names over parser_options::max_name
        // (64 KiB) from the record's length, in one line.
        auto path = tmp / "big-path.tar";
        write_file(path,
                   pax(record("path", std::string(2'000'000, 'p'))) + file("x", "") + end_blocks);
        CHECK(sh("tar -tf " + quote(path) + " >/dev/null 2>&1") == 0);
        CHECK(check_clean_failure(cz, path) == "name too long");
    }

    TEST_CASE("blank numeric fields: GNU tar rejects, bsdtar reads; cz answers clearly") {
        if (!have("tar") || !have("bsdtar"))
            CZ_SKIP("GNU tar or bsdtar (libarchive-tools) is not installed");
        temp_dir tmp("cz-tar-blank");
        verdicts v;
        for (const auto& [name, bytes] : blank_fields()) {
            auto path = tmp / (name + ".tar");
            write_file(path, bytes);
            check_against_both(cz_exe(), path, name, v);
        }
        // They are here for their verdict: GNU tar rejects each, bsdtar reads each.
        REQUIRE(v.only_bsdtar.size() == 3);
        for (const auto& line : v.only_bsdtar) {
            MESSAGE("GNU tar rejects, bsdtar reads; cz: " << line);
            // cz follows GNU tar: a blank where a number belongs is not a number.
            CHECK(line.ends_with(": rejected: invalid numeric field in header"));
        }
    }

    TEST_CASE("archives written by GNU tar and bsdtar: every format feature") {
        if (!have("tar") || !have("bsdtar"))
            CZ_SKIP("GNU tar or bsdtar (libarchive-tools) is not installed");
        auto cz = cz_exe();
        if (cz.empty()) skip("the cz tool is not built (-Dexamples=false): listings not compared");
        temp_dir tmp("cz-tar-made");
        auto src = tmp / "src";
        bool xattrs = make_tree(src, true);
        if (!xattrs) skip("the file system has no user xattrs: xattr checks left out");
        // Device nodes need root to create; bsdtar builds them from an mtree description instead.
        write_file(tmp / "devices.mtree",
                   "#mtree\n./null type=char mode=0666 uid=0 gid=0 device=native,1,3\n"
                   "./sda1 type=block mode=0660 uid=0 gid=6 device=native,8,1\n"
                   "./fifo type=fifo mode=0600\n");
        struct made {
            std::string name, command;
            bool sparse;
            std::uint64_t uid = 0, gid = 0;
        };
        std::string c = "cd " + quote(src) + " && ";
        std::string out = tmp.str() + "/";
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
             "cd " + quote(tmp.str()) + " && bsdtar -cf " + out +
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
            // GNU tar extracts the same tree: types, contents (sparse ones too), link targets.
            // (The regular files: plain, random.bin, the deep one; the sparse-only archives
            // hold sparse8g and plain; the device archive none.)
            int files = a.name == "bsdtar-devices.tar"                ? 0
                        : a.name.find("sparse0") != std::string::npos ? 2
                                                                      : 3;
            if (a.name == "bsdtar-devices.tar" && !is_root())
                skip("not root: the device archive is not extracted (tools cannot mknod)");
            else
                CHECK(check_tree("tar", path) >= files);

            std::map<std::string, cz::tar::entry> seen;
            with_reader(path, [&](cz::tar::reader& r) {
                while (const auto* e = r.next())
                    seen[cz::tar::normalize_path(e->name)] = *e;
            });
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
        if (!have("tar") || !have("bsdtar"))
            CZ_SKIP("GNU tar or bsdtar (libarchive-tools) is not installed");
        auto cz = cz_exe();
        if (cz.empty()) CZ_SKIP("the cz tool is not built (-Dexamples=false)");
        temp_dir tmp("cz-tar-create");
        auto src = tmp / "src";
        bool xattrs = make_tree(src, false);
        if (!xattrs) skip("the file system has no user xattrs: xattr checks left out");
        auto archive = tmp / "cz.tar";
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
            auto dest = tmp / ("x-" + std::string(tool).substr(0, 3));
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
        if (cz.empty()) CZ_SKIP("the cz tool is not built (-Dexamples=false)");
        if (!have("tar")) CZ_SKIP("GNU tar is not installed");
        temp_dir tmp("cz-tar-list");
        auto dir = tmp.str();
        write_file(tmp / "a", "data");
        REQUIRE(sh("cd " + dir +
                   " && mkfifo f && tar --format=posix -cf t.tar a f && gzip -k t.tar && zstd -q "
                   "t.tar") == 0);
        std::string plain, gz, zs, stdin_out;
        REQUIRE(sh(cz + " tar list " + dir + "/t.tar", &plain) == 0);
        REQUIRE(sh(cz + " tar list " + dir + "/t.tar.gz", &gz) == 0);
        REQUIRE(sh(cz + " tar list " + dir + "/t.tar.zst", &zs) == 0);
        REQUIRE(sh(cz + " tar list - < " + dir + "/t.tar.gz", &stdin_out) == 0);
        CHECK(plain == "a\nf\n");
        CHECK(gz == plain);
        CHECK(zs == plain);
        CHECK(stdin_out == plain);
        std::string json;
        REQUIRE(sh(cz + " tar list --json " + dir + "/t.tar", &json) == 0);
        CHECK(json.find("\"name\":\"a\"") != std::string::npos);
        CHECK(json.find("\"type\":\"fifo\"") != std::string::npos);
        CHECK(json.find("\"size\":4") != std::string::npos);
        CHECK(std::count(json.begin(), json.end(), '\n') == 2);

        // Truncated in the middle of the data: exit 1, one line naming the file and the offset.
        REQUIRE(sh("head -c 1600 " + dir + "/t.tar > " + dir + "/cut.tar") == 0);
        std::string err;
        CHECK(sh(cz + " tar list " + dir + "/cut.tar 2>&1 >/dev/null", &err) == 1);
        CHECK(err.starts_with("cz: " + dir + "/cut.tar: tar header at offset"));
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        CHECK(sh("tar -tf " + dir + "/cut.tar >/dev/null 2>&1") != 0); // GNU tar agrees
    }

} // TEST_SUITE
