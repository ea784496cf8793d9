// `cz run -v` end to end (suite vm): host folders in containers, through virtio-fs (virtiofsd,
// as root) and through virtio-9p (forced with CZ_VOLUME_TRANSPORT=9p, on the minimal kernel, as
// Debian's cloud kernel has no 9p). Several volumes share one VM where the cases stay
// independent: both directions of data, owners and modes on the host, a read-only volume, and
// symlinks that point out of the folder. Then two containers at once, and what a run leaves
// (no virtiofsd) when it ends and when cz is killed.
#include "../vm/support.hpp"
#include "busybox_root.hpp"

#include <cz/vm/shared_dir.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

// The cz root of these tests (busybox_root.hpp), with Debian's kernel's virtio-fs modules.
const fs::path& volumes_root() {
    static const fs::path root =
        make_busybox_root("cz-volumes-root", {"overlay.ko", "virtio_blk.ko", "virtio_console.ko",
                                              "fuse.ko", "virtiofs.ko"});
    return root;
}

struct outcome {
    int rc = -1;
    std::string out;
    std::string err;
};

// `ENV cz --root ROOT run ARGS` with stdout and stderr apart.
outcome cz_run(const std::string& args, const std::string& env = "") {
    cz_test::temp_dir tmp;
    outcome o;
    auto err = tmp / "stderr";
    o.rc = cz_test::sh(env + " " + cz_test::quote(cz_tool()) + " --root " +
                           cz_test::quote(volumes_root().string()) + " run " + args +
                           " </dev/null 2>" + cz_test::quote(err),
                       &o.out);
    o.err = cz_test::read_file(err);
    return o;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

int virtiofsd_serving(const fs::path& dir) {
    return cz::vm::test::processes_with_arg("source=" + fs::canonical(dir).string());
}

// The container's script for the shared cases, over three volumes: /rw (the host put
// from-host there, and symlinks that point out of it), /ro (read-only), /other (a second rw
// volume, untouched by the script but for one file, so the two do not mix). Each result is a
// line the host checks.
constexpr const char* volume_script =
    "cat /rw/from-host; "
    "echo written-in-guest > /rw/from-guest; "
    "mkdir -p /rw/dir/sub && echo deep > /rw/dir/sub/file; "
    "echo owned > /rw/owned && chown 1234:5678 /rw/owned && chmod 640 /rw/owned; "
    "echo other > /other/mine; "
    "if echo x 2>/dev/null > /ro/new; then echo ro-write-ok; else echo ro-write-refused; fi; "
    "touch /ro/existing 2>&1 | grep -q 'Read-only file system' && echo ro-erofs; "
    "cat /ro/existing; "
    "cat /rw/abs-out 2>/dev/null || echo abs-out-unreadable; "
    "cat /rw/rel-out 2>/dev/null || echo rel-out-unreadable; "
    "echo pwned 2>/dev/null > /rw/abs-out || echo abs-out-unwritable; "
    "echo alice-$(grep -c alice /rw/guest-passwd); "
    "ls /rw/dir-out/ 2>/dev/null | grep -q secret && echo dir-out-listed || echo dir-out-hidden; "
    "awk '$2 == \"/rw\" { print \"type \" $3 }' /proc/mounts";

// The host side of the shared cases: prepares `base` (rw/, ro/, other/, and a secret beside
// them, outside every volume), returns the -v options.
std::string prepare_volumes(const fs::path& base) {
    fs::create_directories(base / "rw");
    fs::create_directories(base / "ro");
    fs::create_directories(base / "other");
    fs::create_directories(base / "secret-dir");
    cz_test::write_file(base / "secret", "host secret\n");
    cz_test::write_file(base / "secret-dir" / "secret", "host secret\n");
    cz_test::write_file(base / "rw" / "from-host", "written-on-host\n");
    cz_test::write_file(base / "ro" / "existing", "ro-content\n");
    // Out of the folder on the host: absolute, relative, a directory; and a link the guest
    // resolves to its own /etc/passwd (which has alice), not the host's.
    fs::create_symlink(base / "secret", base / "rw" / "abs-out");
    fs::create_symlink("../secret", base / "rw" / "rel-out");
    fs::create_directory_symlink(base / "secret-dir", base / "rw" / "dir-out");
    fs::create_symlink("/etc/passwd", base / "rw" / "guest-passwd");
    return "-v " + cz_test::quote((base / "rw").string() + ":/rw") + " -v " +
           cz_test::quote((base / "ro").string() + ":/ro:ro") + " -v " +
           cz_test::quote((base / "other").string() + ":/other");
}

// What the shared cases expect, on the container's output and on the host.
void check_volumes(const outcome& o, const fs::path& base, const std::string& type, bool owners) {
    INFO(o.err);
    REQUIRE(o.rc == 0);
    INFO(o.out);
    CHECK(contains(o.out, "written-on-host\n"));
    CHECK(cz_test::read_file(base / "rw" / "from-guest") == "written-in-guest\n");
    CHECK(cz_test::read_file(base / "rw" / "dir" / "sub" / "file") == "deep\n");
    CHECK(cz_test::read_file(base / "other" / "mine") == "other\n");
    CHECK_FALSE(fs::exists(base / "rw" / "mine"));
    CHECK_FALSE(fs::exists(base / "other" / "from-guest"));
    struct stat st {};
    REQUIRE(::stat((base / "rw" / "owned").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
    if (owners) {
        // Root in the container writes root's files, and a chown reaches the host: docker's -v.
        CHECK(st.st_uid == 1234);
        CHECK(st.st_gid == 5678);
        REQUIRE(::stat((base / "rw" / "from-guest").c_str(), &st) == 0);
        CHECK(st.st_uid == 0);
        CHECK(st.st_gid == 0);
    }
    CHECK(contains(o.out, "ro-write-refused\n"));
    CHECK_FALSE(contains(o.out, "ro-write-ok"));
    CHECK(contains(o.out, "ro-erofs\n"));
    CHECK(contains(o.out, "ro-content\n"));
    CHECK_FALSE(fs::exists(base / "ro" / "new"));
    CHECK(contains(o.out, "abs-out-unreadable\n"));
    CHECK(contains(o.out, "rel-out-unreadable\n"));
    CHECK(contains(o.out, "abs-out-unwritable\n"));
    CHECK(contains(o.out, "dir-out-hidden\n"));
    CHECK_FALSE(contains(o.out, "host secret"));
    CHECK(cz_test::read_file(base / "secret") == "host secret\n");
    CHECK(contains(o.out, "alice-1\n")); // the guest's passwd, not the host's
    CHECK(contains(o.out, "type " + type + "\n"));
}

} // namespace

TEST_SUITE("cz run volumes") {

    TEST_CASE("virtio-fs: both directions, owners and modes, read-only, symlinks out of it") {
        if (!cz_test::is_root()) CZ_SKIP("virtio-fs volumes need root (virtiofsd)");
        if (cz::vm::find_virtiofsd().empty()) CZ_SKIP("no virtiofsd (qemu-system-common)");
        cz_test::temp_dir tmp;
        auto v = prepare_volumes(tmp.path);
        auto o = cz_run("--net none " + v + " busybox sh -c " + cz_test::quote(volume_script),
                        "CZ_VOLUME_TRANSPORT=virtiofs");
        check_volumes(o, tmp.path, "virtiofs", true);
        CHECK(virtiofsd_serving(tmp.path / "rw") == 0);
        CHECK(virtiofsd_serving(tmp.path / "ro") == 0);
    }

    TEST_CASE("virtio-9p (CZ_VOLUME_TRANSPORT=9p, minimal kernel): the same cases") {
        const auto& minimal = cz::vm::test::minimal_kernel();
        cz_test::temp_dir tmp;
        auto v = prepare_volumes(tmp.path);
        auto o = cz_run("--net none --kernel " + cz_test::quote(minimal.image.string()) + " " + v +
                            " busybox sh -c " + cz_test::quote(volume_script),
                        "CZ_VOLUME_TRANSPORT=9p");
        check_volumes(o, tmp.path, "9p", cz_test::is_root());
    }

    TEST_CASE("the errors (125): HOSTDIR missing or not a directory, GUESTDIR relative, no 9p") {
        cz_test::temp_dir tmp;
        cz_test::write_file(tmp / "file", "x");
        auto o = cz_run("-v " + cz_test::quote(tmp / "missing") + ":/m busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "does not exist"));
        o = cz_run("-v " + cz_test::quote(tmp / "file") + ":/m busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "not a directory"));
        o = cz_run("-v " + cz_test::quote(tmp.str()) + ":m busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "not absolute"));
        // Debian's cloud kernel has no 9p: said before any VM starts.
        o = cz_run("-v " + cz_test::quote(tmp.str() + ":/m") + " busybox true",
                   "CZ_VOLUME_TRANSPORT=9p");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "no 9p module"));
        o = cz_run("-v " + cz_test::quote(tmp.str() + ":/m") + " busybox true",
                   "CZ_VOLUME_TRANSPORT=nfs");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "CZ_VOLUME_TRANSPORT"));
    }

    TEST_CASE("two containers at once, each with its own volume") {
        if (!cz_test::is_root()) CZ_SKIP("virtio-fs volumes need root (virtiofsd)");
        if (cz::vm::find_virtiofsd().empty()) CZ_SKIP("no virtiofsd (qemu-system-common)");
        cz_test::temp_dir a, b;
        auto run = [](const cz_test::temp_dir& dir, const std::string& name, outcome& o) {
            o = cz_run("--net none -v " + cz_test::quote(dir.str() + ":/v") + " busybox sh -c " +
                       cz_test::quote("ls /v; echo " + name + " > /v/" + name));
        };
        outcome oa, ob;
        std::thread ta([&] { run(a, "first", oa); });
        std::thread tb([&] { run(b, "second", ob); });
        ta.join();
        tb.join();
        INFO(oa.err, ob.err);
        CHECK(oa.rc == 0);
        CHECK(ob.rc == 0);
        CHECK(oa.out.empty()); // each saw an empty folder: not the other's
        CHECK(ob.out.empty());
        CHECK(cz_test::read_file(a / "first") == "first\n");
        CHECK(cz_test::read_file(b / "second") == "second\n");
        CHECK_FALSE(fs::exists(a / "second"));
        CHECK_FALSE(fs::exists(b / "first"));
        CHECK(virtiofsd_serving(a.path) == 0);
        CHECK(virtiofsd_serving(b.path) == 0);
    }

    TEST_CASE("kill -9 of cz during a run with a volume: no virtiofsd is left") {
        if (!cz_test::is_root()) CZ_SKIP("virtio-fs volumes need root (virtiofsd)");
        if (cz::vm::find_virtiofsd().empty()) CZ_SKIP("no virtiofsd (qemu-system-common)");
        cz_test::temp_dir tmp, dir;
        auto out = tmp / "out";
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::string cmd = "CZ_VOLUME_TRANSPORT=virtiofs exec " + cz_test::quote(cz_tool()) +
                              " --root " + cz_test::quote(volumes_root().string()) + " run -v " +
                              cz_test::quote(dir.str() + ":/v") +
                              " --net none busybox sh -c 'echo ready > /v/ready; echo ready; "
                              "sleep 600' >" +
                              cz_test::quote(out) + " 2>&1";
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            ::_exit(127);
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
        while (!contains(cz_test::read_file(out), "ready") &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        INFO(cz_test::read_file(out));
        REQUIRE(fs::exists(dir / "ready"));
        CHECK(virtiofsd_serving(dir.path) > 0); // with its sandboxed child
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        // virtiofsd dies with cz (PR_SET_PDEATHSIG), as QEMU does.
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (virtiofsd_serving(dir.path) != 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(virtiofsd_serving(dir.path) == 0);
        // The next run sweeps the killed one's VM directory (its socket and log with it).
        auto o = cz_run("--net none busybox true");
        CHECK(o.rc == 0);
        std::size_t vm_dirs = 0;
        std::error_code ec;
        for (auto it = fs::directory_iterator(volumes_root() / "vms", ec); !ec && it != fs::end(it);
             it.increment(ec))
            ++vm_dirs;
        CHECK(vm_dirs == 0);
    }

} // TEST_SUITE
