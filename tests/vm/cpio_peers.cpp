// cpio archives from cz, read by the real peer: GNU cpio lists them and extracts them (as root, so
// that it creates device nodes and sets owners), and what it made on disk is compared, entry by
// entry, with what cz was asked to write: type, permission bits (setuid, sticky), owner, mtime,
// device major/minor, file contents and symlink targets.
#include <cz/vm/initramfs.hpp>

#include "support/support.hpp"

#include <cz/vm/cpio.hpp>

#include <cz/core/compression.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace fs = std::filesystem;
using cz::vm::cpio_entry;
using cz::vm::cpio_type;
using cz_test::quote;

namespace {

// What one entry must look like once extracted.
struct expected {
    cpio_entry entry;
    std::string data; // a file's contents or a symlink's target
};

// Why `path` differs from `e` as GNU cpio should have extracted it ("" when it does not).
std::string compare(const fs::path& path, const expected& e, bool check_mtime) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "missing";
    std::ostringstream why;
    auto type = static_cast<std::uint32_t>(e.entry.type);
    if ((st.st_mode & S_IFMT) != type) why << "type " << std::oct << (st.st_mode & S_IFMT) << " ";
    // Symlinks have no permissions of their own on Linux (always 0777).
    if (e.entry.type != cpio_type::symlink && (st.st_mode & 07777) != e.entry.permissions)
        why << "mode " << std::oct << (st.st_mode & 07777) << std::dec << " ";
    if (st.st_uid != e.entry.uid || st.st_gid != e.entry.gid)
        why << "owner " << st.st_uid << ":" << st.st_gid << " ";
    if (check_mtime && e.entry.type != cpio_type::symlink &&
        st.st_mtime != static_cast<time_t>(e.entry.mtime))
        why << "mtime " << st.st_mtime << " ";
    bool device = e.entry.type == cpio_type::char_device || e.entry.type == cpio_type::block_device;
    if (device &&
        (major(st.st_rdev) != e.entry.rdev_major || minor(st.st_rdev) != e.entry.rdev_minor))
        why << "device " << major(st.st_rdev) << ":" << minor(st.st_rdev) << " ";
    if (e.entry.type == cpio_type::regular && cz_test::read_file(path) != e.data)
        why << "contents (" << st.st_size << " bytes) ";
    if (e.entry.type == cpio_type::symlink) {
        std::error_code ec;
        auto target = fs::read_symlink(path, ec).string();
        if (target != e.data) why << "target '" << target << "' ";
    }
    return why.str();
}

// GNU cpio's table of contents of an archive file (one name a line), as a set.
std::set<std::string> listing(const std::string& command) {
    std::istringstream in(cz_test::sh_ok(command));
    std::set<std::string> names;
    for (std::string line; std::getline(in, line);)
        names.insert(line);
    return names;
}

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 2654435761u + seed) >> 11);
    return s;
}

bool need_peer() {
    return cz_test::have("cpio") && cz_test::have("gzip");
}

} // namespace

TEST_SUITE("vm") {

    TEST_CASE("cpio peers: GNU cpio extracts every entry type cz writes, with its metadata") {
        if (!need_peer()) CZ_SKIP("GNU cpio or gzip not installed");
        if (!cz_test::is_root())
            CZ_SKIP("needs root: GNU cpio creates device nodes and sets owners only as root");
        cz_test::temp_dir dir("cz-cpio-peer");
        const std::uint32_t t = 1700000000;
        std::vector<expected> entries = {
            {{.path = "d",
              .type = cpio_type::directory,
              .permissions = 0750,
              .uid = 1000,
              .gid = 100,
              .mtime = t},
             ""},
            {{.path = "d/sticky",
              .type = cpio_type::directory,
              .permissions = 01777,
              .mtime = t + 1},
             ""},
            {{.path = "d/empty", .permissions = 0600, .uid = 1234, .gid = 5678, .mtime = t + 2},
             ""},
            {{.path = "d/odd", .permissions = 0644, .mtime = t + 3},
             "hello"}, // not a multiple of 4
            {{.path = "d/setuid", .permissions = 04755, .mtime = t + 4}, pattern(1021, 1)},
            {{.path = "d/setgid", .permissions = 02711, .gid = 50, .mtime = t + 5}, pattern(3, 2)},
            {{.path = "d/big", .permissions = 0640, .mtime = t + 6}, pattern(300001, 3)},
            {{.path = "d/rel", .type = cpio_type::symlink, .permissions = 0777, .mtime = t}, "odd"},
            {{.path = "d/abs", .type = cpio_type::symlink, .permissions = 0777, .uid = 7, .gid = 8},
             "/etc/hostname"},
            {{.path = "d/long", .type = cpio_type::symlink, .permissions = 0777},
             std::string(250, 'x') + "/y"},
            {{.path = "d/console",
              .type = cpio_type::char_device,
              .permissions = 0600,
              .mtime = t,
              .rdev_major = 5,
              .rdev_minor = 1},
             ""},
            {{.path = "d/null",
              .type = cpio_type::char_device,
              .permissions = 0666,
              .mtime = t,
              .rdev_major = 1,
              .rdev_minor = 3},
             ""},
            {{.path = "d/sda1",
              .type = cpio_type::block_device,
              .permissions = 0660,
              .gid = 6,
              .mtime = t,
              .rdev_major = 8,
              .rdev_minor = 1},
             ""},
            // Past the 8 bits of the old dev_t encoding: major 12 bits, minor 20 bits.
            {{.path = "d/wide",
              .type = cpio_type::block_device,
              .permissions = 0640,
              .mtime = t,
              .rdev_major = 4095,
              .rdev_minor = 1048575},
             ""},
            {{.path = "d/fifo", .type = cpio_type::fifo, .permissions = 0620, .mtime = t}, ""},
        };
        cz::byte_buffer archive;
        {
            cz::buffer_sink sink(archive);
            cz::vm::cpio_writer w(sink);
            for (const auto& e : entries) {
                if (e.entry.type == cpio_type::regular && e.data.size() > 100000) {
                    // Large files go through the streaming overload, as initramfs_builder's do.
                    cz::memory_source src(cz::as_bytes(std::string_view(e.data)));
                    std::error_code ec;
                    w.add_file(e.entry, e.data.size(), src, ec);
                    REQUIRE_MESSAGE(!ec, e.entry.path, ": ", ec.message());
                } else if (e.entry.type == cpio_type::regular) {
                    w.add_file(e.entry, cz::as_bytes(std::string_view(e.data)));
                } else if (e.entry.type == cpio_type::symlink) {
                    w.add_symlink(e.entry, e.data);
                } else {
                    w.add(e.entry);
                }
            }
            w.finish();
        }
        cz_test::write_file(dir.path / "a.cpio", cz::to_string(archive));

        std::set<std::string> names;
        for (const auto& e : entries)
            names.insert(e.entry.path);
        CHECK(listing("cpio -t --quiet < " + quote(dir / "a.cpio")) == names);

        // -m keeps mtimes; as root, cpio keeps owners and creates the nodes. Nothing on stderr.
        fs::create_directories(dir.path / "out");
        auto out = cz_test::sh_ok("cd " + quote(dir / "out") +
                                  " && cpio -idm --quiet --no-absolute-filenames < " +
                                  quote(dir / "a.cpio") + " 2>&1");
        CHECK_MESSAGE(out.empty(), out);
        for (const auto& e : entries) {
            // GNU cpio sets a directory's mtime when it creates it; the entries extracted into it
            // afterwards change it again (find -depth archives list directories last for that). The
            // kernel needs parents first, so only a directory without entries below keeps its
            // mtime.
            bool has_children = std::any_of(entries.begin(), entries.end(), [&](const expected& o) {
                return o.entry.path.rfind(e.entry.path + "/", 0) == 0;
            });
            auto why = compare(dir.path / "out" / e.entry.path, e, !has_children);
            CHECK_MESSAGE(why.empty(), e.entry.path, ": ", why);
        }
    }

    TEST_CASE("cpio peers: GNU cpio lists and extracts a gzip initramfs written by cz") {
        if (!need_peer()) CZ_SKIP("GNU cpio or gzip not installed");
        if (!cz_test::is_root()) CZ_SKIP("needs root: GNU cpio creates /dev/console only as root");
        cz_test::temp_dir dir("cz-cpio-peer");
        std::string big = pattern(300000, 4);
        cz_test::write_file(dir.path / "big.bin", big);
        ::chmod((dir.path / "big.bin").c_str(), 0600);

        cz::vm::initramfs_builder b;
        b.init_script("#!/bin/sh\nexit 0\n");
        b.add_file("usr/share/big.bin", dir.path / "big.bin", 0640);
        b.add_file("usr/share/same-mode.bin", dir.path / "big.bin");
        b.add_symlink("bin/sh", "busybox");
        b.add_bytes("etc/hostname", "cz\n");
        b.add_directory("var/empty", 0711);
        b.write_gzip(dir.path / "initramfs.cpio.gz");

        // The builder's fixed nodes and mount points, the parents it made, and what was added.
        std::set<std::string> names = {"dev",
                                       "dev/console",
                                       "proc",
                                       "sys",
                                       "tmp",
                                       "run",
                                       "root",
                                       "init",
                                       "usr",
                                       "usr/share",
                                       "usr/share/big.bin",
                                       "usr/share/same-mode.bin",
                                       "bin",
                                       "bin/sh",
                                       "etc",
                                       "etc/hostname",
                                       "var",
                                       "var/empty"};
        CHECK(listing("gzip -dc " + quote(dir / "initramfs.cpio.gz") + " | cpio -t --quiet") ==
              names);

        fs::create_directories(dir.path / "out");
        auto out = cz_test::sh_ok(
            "cd " + quote(dir / "out") +
            " && gzip -dc ../initramfs.cpio.gz | cpio -idm --quiet --no-absolute-filenames 2>&1");
        CHECK_MESSAGE(out.empty(), out);
        std::vector<expected> want = {
            {{.path = "dev/console",
              .type = cpio_type::char_device,
              .permissions = 0600,
              .rdev_major = 5,
              .rdev_minor = 1},
             ""},
            {{.path = "dev", .type = cpio_type::directory, .permissions = 0755}, ""},
            {{.path = "tmp", .type = cpio_type::directory, .permissions = 01777}, ""},
            {{.path = "init", .permissions = 0755}, "#!/bin/sh\nexit 0\n"},
            {{.path = "usr/share/big.bin", .permissions = 0640}, big},
            {{.path = "usr/share/same-mode.bin", .permissions = 0600}, big}, // the host file's mode
            {{.path = "bin/sh", .type = cpio_type::symlink, .permissions = 0777}, "busybox"},
            {{.path = "etc/hostname", .permissions = 0644}, "cz\n"},
            {{.path = "var/empty", .type = cpio_type::directory, .permissions = 0711}, ""},
        };
        for (const auto& e : want) {
            // The builder's mtimes are its own business; owner root, modes and data are the
            // contract.
            auto why = compare(dir.path / "out" / e.entry.path, e, false);
            CHECK_MESSAGE(why.empty(), e.entry.path, ": ", why);
        }
    }

} // TEST_SUITE
