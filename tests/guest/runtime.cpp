// cz-init's container runtime against the real kernel, without a VM: a busybox root filesystem
// in a temporary directory, containers started with spawn() and exec(), their output and exit
// status checked. Needs root (namespaces, mounts, mknod).
#include "runtime/container.hpp"

#include "runtime/cgroup.hpp"
#include "runtime/process.hpp"
#include "runtime/terminal.hpp"

#include "support/support.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace cz::guest;
using json = nlohmann::json;

namespace {

// A busybox root filesystem: /bin/busybox and a link per applet, /etc/passwd and /etc/group,
// a file that is not executable, and a few directories the tests mask or make read-only.
struct busybox_root {
    cz_test::temp_dir dir{"cz-guest-root"};
    std::string path = dir.str();

    busybox_root() {
        cz_test::sh_ok("mkdir -p " + dir / "bin" + " " + dir / "etc" + " " + dir / "tmp" + " " +
                       dir / "home/alice" + " " + dir / "data" + " " + dir / "secretdir");
        cz_test::sh_ok("cp /bin/busybox " + dir / "bin/busybox");
        std::string applets = cz_test::sh_ok("/bin/busybox --list");
        std::size_t i = 0;
        while (i < applets.size()) {
            auto nl = applets.find('\n', i);
            auto name = applets.substr(i, nl - i);
            i = nl == std::string::npos ? applets.size() : nl + 1;
            if (!name.empty() && name != "busybox")
                REQUIRE(::symlink("busybox", (dir / ("bin/" + name)).c_str()) == 0);
        }
        cz_test::write_file(dir / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                                                "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n");
        cz_test::write_file(dir / "etc/group", "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\n"
                                               "staff:x:50:\n");
        cz_test::write_file(dir / "notexec", "#!/bin/sh\necho no\n");
        ::chmod((dir / "notexec").c_str(), 0644);
        cz_test::write_file(dir / "secret", "the secret\n");
        cz_test::write_file(dir / "secretdir/hiddenfile", "hidden\n");
        cz_test::write_file(dir / "data/file", "data\n");
        // mkdtemp made it 0700; an image's root directory is world-readable.
        ::chmod(path.c_str(), 0755);
    }
};

// The spec `runc spec` writes, pointed at `root`, running `args`.
// Where a cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a v2 host, else the hybrid layout's
// /sys/fs/cgroup/unified; "" on a cgroup v1 host.
std::string cgroup2_mount() {
    for (const char* c : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        error e;
        if (check_cgroup_root(c, "", e)) return c;
    }
    return {};
}

json default_spec(const std::string& root, std::vector<std::string> args) {
    json spec = json::parse(R"({
      "ociVersion": "1.0.2",
      "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": [],
                  "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                  "cwd": "/"},
      "root": {"path": ""},
      "hostname": "cz-test",
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
      ],
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                       {"type": "mount"}, {"type": "cgroup"}],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"]
      }
    })");
    spec["root"]["path"] = root;
    spec["process"]["args"] = args;
    return spec;
}

std::string describe(const error& e) {
    return e.message + ": " + e.code.message();
}

// Reads everything from fd until end of file.
std::string drain(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

struct result {
    int status = -1;
    std::string output; // stdout and stderr together
    error err;          // from spawn
};

// Runs a container to completion with stdin from /dev/null and its output captured.
result run(const json& spec_json) {
    result r;
    auto spec = parse_spec(spec_json.dump(), r.err);
    REQUIRE_MESSAGE(!r.err, describe(r.err));
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    cz::unique_fd rd(p[0]), wr(p[1]);
    cz::unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    auto c = spawn(spec, {null.get(), wr.get(), wr.get()}, {}, r.err);
    wr.reset();
    if (r.err) return r;
    r.output = drain(rd.get());
    r.status = wait(c.init);
    return r;
}

bool skip_unless_root() {
    if (!cz_test::is_root()) return true;
    return false;
}

#define CZ_REQUIRE_ROOT_AND_BUSYBOX()                                                              \
    do {                                                                                           \
        if (skip_unless_root()) CZ_SKIP("needs root (namespaces, mounts, mknod)");                 \
        if (::access("/bin/busybox", X_OK) != 0) CZ_SKIP("needs /bin/busybox (busybox-static)");   \
    } while (0)

// Reads from a pty master until `want` shows up in what was read (or 10 s pass).
bool read_until(int fd, std::string& seen, const std::string& want) {
    for (int i = 0; i < 100 && seen.find(want) == std::string::npos; ++i) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;
        char buf[1024];
        auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        seen.append(buf, static_cast<std::size_t>(n));
    }
    return seen.find(want) != std::string::npos;
}

} // namespace

TEST_SUITE("guest") {

    TEST_CASE("runtime: output, exit codes, signals") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto r = run(default_spec(root.path, {"echo", "hello", "world"}));
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output == "hello world\n");
        CHECK(r.status == 0);
        CHECK(run(default_spec(root.path, {"false"})).status == 1);
        CHECK(run(default_spec(root.path, {"sh", "-c", "exit 42"})).status == 42);
        CHECK(run(default_spec(root.path, {"sh", "-c", "kill -9 $$"})).status == 137);
        // The program is pid 2 of its own pid namespace, under cz's shim, with its own hostname.
        r = run(default_spec(root.path, {"sh", "-c", "echo $$; cat /proc/1/comm; hostname"}));
        CHECK_MESSAGE(r.output == "2\ncz-init-shim\ncz-test\n", describe(r.err));
        // The shim reaps orphans: a background process whose parent exited is not left a zombie.
        r = run(default_spec(root.path, {"sh", "-c",
                                         "sh -c 'sleep 0.2 &'; sleep 0.5; "
                                         "grep -l zombie /proc/[0-9]*/status; echo done"}));
        CHECK(r.output == "done\n");
        // Without a pid namespace there is no shim: the program is the process spawn made.
        auto no_pidns = default_spec(root.path, {"sh", "-c", "echo $$; kill -9 $$"});
        no_pidns["linux"]["namespaces"].erase(0); // {"type": "pid"}
        {
            error e;
            auto parsed = parse_spec(no_pidns.dump());
            REQUIRE(!parsed.has_namespace(namespace_kind::pid));
            int p[2];
            REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
            cz::unique_fd prd(p[0]), pwr(p[1]);
            auto c = spawn(parsed, {0, pwr.get(), pwr.get()}, {}, e);
            pwr.reset();
            REQUIRE_MESSAGE(!e, describe(e));
            CHECK(drain(prd.get()) == std::to_string(c.init.pid) + "\n");
            CHECK(wait(c.init) == 137);
        }
        // A signal for the container's init reaches the program (as `docker stop` relies on).
        error err;
        auto c = spawn(parse_spec(default_spec(root.path, {"sleep", "100"}).dump()), {}, {}, err);
        REQUIRE_MESSAGE(!err, describe(err));
        // spawn() returned, so the program has been exec'd: SIGTERM has its default action.
        REQUIRE(::kill(c.init.pid, SIGTERM) == 0);
        CHECK(wait(c.init) == 128 + SIGTERM);
    }

    TEST_CASE("runtime: commands that cannot run: 127 and 126") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto r = run(default_spec(root.path, {"/no/such/program"}));
        CHECK(r.err.code == std::errc::no_such_file_or_directory);
        CHECK(exec_failure_status(r.err) == 127);
        CHECK(r.err.message.find("/no/such/program") != std::string::npos);
        r = run(default_spec(root.path, {"nosuchcommand"}));
        CHECK(r.err.code == std::errc::no_such_file_or_directory);
        CHECK(exec_failure_status(r.err) == 127);
        // A setup failure is not an exec failure, even when its errno is ENOENT.
        auto missing_source = default_spec(root.path, {"true"});
        missing_source["mounts"].push_back(
            {{"destination", "/x"}, {"type", "bind"}, {"source", "/no/such/source"}});
        r = run(missing_source);
        CHECK(r.err.code == std::errc::no_such_file_or_directory);
        CHECK(!r.err.exec_failed);
        CHECK(exec_failure_status(r.err) == -1);
        CHECK(r.err.message.find("/no/such/source") != std::string::npos);
        r = run(default_spec(root.path, {"/notexec"}));
        CHECK(r.err.code == std::errc::permission_denied);
        CHECK(exec_failure_status(r.err) == 126);
        // No process is left behind by a failed start.
        CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
        CHECK(errno == ECHILD);
    }

    TEST_CASE("runtime: env, cwd, users") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec = default_spec(root.path, {"sh", "-c", "echo $FOO $HOME; pwd; id -u; id -g"});
        spec["process"]["env"].push_back("FOO=bar");
        spec["process"]["cwd"] = "/work/deep/er";
        auto r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output == "bar /root\n/work/deep/er\n0\n0\n");

        SUBCASE("by name: ids, HOME and supplementary groups from /etc/passwd and /etc/group") {
            spec = default_spec(root.path, {"sh", "-c", "echo $HOME; id -u; id -g; id -G"});
            spec["process"]["user"] = {{"username", "alice"}};
            r = run(spec);
            REQUIRE_MESSAGE(!r.err, describe(r.err));
            CHECK(r.output == "/home/alice\n1000\n1000\n1000 10\n");
        }
        SUBCASE("by uid, with additionalGids") {
            spec = default_spec(root.path, {"sh", "-c", "echo $HOME; id -u; id -g; id -G"});
            spec["process"]["user"] = {{"uid", 1000}, {"gid", 50}, {"additionalGids", {10}}};
            r = run(spec);
            REQUIRE_MESSAGE(!r.err, describe(r.err));
            CHECK(r.output == "/home/alice\n1000\n50\n50 10\n");
        }
        SUBCASE("name:group and a uid without an entry") {
            spec = default_spec(root.path, {"sh", "-c", "echo $HOME; id -u; id -g"});
            spec["process"]["user"] = {{"username", "alice:staff"}};
            CHECK(run(spec).output == "/home/alice\n1000\n50\n");
            spec["process"]["user"] = {{"username", "4242:4343"}};
            CHECK(run(spec).output == "/\n4242\n4343\n");
        }
        SUBCASE("an unknown name is an error, not root") {
            spec = default_spec(root.path, {"true"});
            spec["process"]["user"] = {{"username", "mallory"}};
            r = run(spec);
            CHECK(r.err.code == errc::unknown_user);
            CHECK(r.err.message == "process.user: user \"mallory\": not found in /etc/passwd");
        }
    }

    TEST_CASE("runtime: rlimits, capabilities, no_new_privileges") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec = default_spec(root.path, {"sh", "-c", "ulimit -n; ulimit -Hn"});
        spec["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 123}, {"hard", 456}}};
        auto r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output == "123\n456\n");

        // A non-root user keeps CAP_NET_RAW through exec only as an ambient capability.
        spec = default_spec(root.path, {"grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"});
        spec["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
        spec["process"]["noNewPrivileges"] = true;
        spec["process"]["capabilities"] = {{"bounding", {"CAP_NET_RAW", "CAP_KILL"}},
                                           {"effective", {"CAP_NET_RAW", "CAP_KILL"}},
                                           {"permitted", {"CAP_NET_RAW", "CAP_KILL"}},
                                           {"inheritable", {"CAP_NET_RAW"}},
                                           {"ambient", {"CAP_NET_RAW"}}};
        r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output == "CapInh:\t0000000000002000\n"
                          "CapPrm:\t0000000000002000\n"
                          "CapEff:\t0000000000002000\n"
                          "CapBnd:\t0000000000002020\n"
                          "CapAmb:\t0000000000002000\n"
                          "NoNewPrivs:\t1\n");
        // Without a capabilities object, root keeps what it has (runc leaves them alone).
        spec = default_spec(root.path, {"grep", "^NoNewPrivs", "/proc/self/status"});
        CHECK(run(spec).output == "NoNewPrivs:\t0\n");
    }

    TEST_CASE("runtime: seccomp denies a syscall with EPERM") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec = default_spec(
            root.path,
            {"sh", "-c", "mkdir /tmp/x; echo status $?; test -d /tmp/x || echo not-made"});
        spec["linux"]["seccomp"] = json::parse(R"({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat", "not_a_syscall"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]
    })");
        auto r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output.find("Operation not permitted") != std::string::npos);
        CHECK(r.output.find("status 1\n") != std::string::npos);
        CHECK(r.output.find("not-made") != std::string::npos);
        // Without noNewPrivileges the filter still loads (before capabilities are dropped).
        spec["process"]["noNewPrivileges"] = false;
        spec["process"]["user"] = {{"uid", 1000}};
        spec["process"]["capabilities"] = json::object();
        r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output.find("Operation not permitted") != std::string::npos);
    }

    TEST_CASE("runtime: masked and read-only paths, read-only root") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec = default_spec(root.path,
                                 {"sh", "-c",
                                  "cat /secret; ls /secretdir; echo x > /data/new || echo ro-data; "
                                  "echo x > /tmp/ok && echo rw-tmp; cat /proc/kcore | wc -c; "
                                  "echo 1 > /proc/sys/kernel/hostname || echo ro-sys"});
        spec["linux"]["maskedPaths"].push_back("/secret");
        spec["linux"]["maskedPaths"].push_back("/secretdir");
        spec["linux"]["maskedPaths"].push_back("/does/not/exist");
        spec["linux"]["readonlyPaths"].push_back("/data");
        auto r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output.find("the secret") == std::string::npos);
        CHECK(r.output.find("hiddenfile") == std::string::npos); // secretdir's content is hidden
        CHECK(r.output.find("ro-data") != std::string::npos);
        CHECK(r.output.find("rw-tmp") != std::string::npos);
        CHECK(r.output.find("\n0\n") != std::string::npos); // /proc/kcore reads as /dev/null
        CHECK(r.output.find("ro-sys") != std::string::npos);

        spec = default_spec(root.path, {"sh", "-c", "touch /newfile || echo ro-root"});
        spec["root"]["readonly"] = true;
        r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output.find("ro-root") != std::string::npos);
    }

    TEST_CASE("runtime: devices, and mounts resolved inside the root filesystem") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        // An image whose /escape is a symlink to the host's /: a mount there must stay inside.
        cz_test::temp_dir outside("cz-guest-outside");
        REQUIRE(::symlink(outside.str().c_str(), (root.dir / "escape").c_str()) == 0);
        auto spec = default_spec(
            root.path, {"sh", "-c",
                        "ls -l /dev/null /dev/zero /dev/ptmx; head -c 3 /dev/zero | wc -c; "
                        "ls /dev/pts; cat /escape/inside/file"});
        spec["mounts"].push_back({{"destination", "/escape/inside"},
                                  {"type", "bind"},
                                  {"source", root.dir / "data"},
                                  {"options", {"rbind", "ro"}}});
        auto r = run(spec);
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output.find("crw-rw-rw-") != std::string::npos);
        CHECK(r.output.find("/dev/ptmx -> pts/ptmx") != std::string::npos);
        CHECK(r.output.find("\n3\n") != std::string::npos);
        CHECK(r.output.find("data\n") != std::string::npos); // the bind is visible inside
        // and was made in the root filesystem, not through the link into the host.
        CHECK(!std::filesystem::exists(outside.path / "inside"));
        CHECK(std::filesystem::is_directory(root.path + "/" + outside.str() + "/inside"));
    }

    TEST_CASE("runtime: a terminal whose resize stty sees") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec = default_spec(root.path, {"sh", "-c", "tty; stty size; read line; stty size"});
        spec["process"]["terminal"] = true;
        spec["process"]["consoleSize"] = {{"height", 24}, {"width", 80}};
        spec["process"]["user"] = {{"username", "alice"}};
        error err;
        auto c = spawn(parse_spec(spec.dump()), {}, {}, err);
        REQUIRE_MESSAGE(!err, describe(err));
        REQUIRE(c.init.terminal);
        std::string seen;
        CHECK(read_until(c.init.terminal.get(), seen, "24 80"));
        CHECK(seen.find("/dev/pts/0") != std::string::npos);
        REQUIRE(resize_terminal(c.init.terminal.get(), {30, 100}, err));
        REQUIRE(::write(c.init.terminal.get(), "go\n", 3) == 3);
        CHECK(read_until(c.init.terminal.get(), seen, "30 100"));
        CHECK(wait(c.init) == 0);
    }

    TEST_CASE("runtime: exec into a running container") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        busybox_root root;
        auto spec_json = default_spec(root.path, {"sh", "-c", "echo $$ > /tmp/init-pid; read x"});
        spec_json["hostname"] = "execbox";
        auto spec = parse_spec(spec_json.dump());
        int in[2];
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        cz::unique_fd in_rd(in[0]), in_wr(in[1]);
        error err;
        auto c = spawn(spec, {in_rd.get(), 2, 2}, {}, err);
        REQUIRE_MESSAGE(!err, describe(err));
        in_rd.reset();

        auto run_exec = [&](std::vector<std::string> args, const std::string& user = "") {
            json p = {{"args", args},
                      {"cwd", "/tmp/exec-cwd"},
                      {"env", {"PATH=/bin", "WHO=exec"}},
                      {"user", {{"username", user}}}};
            auto process = parse_process(p.dump());
            int out[2];
            REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
            cz::unique_fd rd(out[0]), wr(out[1]);
            result r;
            auto h = exec(c, process, spec.seccomp, {0, wr.get(), wr.get()}, r.err);
            wr.reset();
            if (r.err) return r;
            r.output = drain(rd.get());
            r.status = wait(h);
            return r;
        };
        // Wait until the container's shell has written its pid, then look at it from an exec.
        result r;
        for (int i = 0; i < 100; ++i) {
            r = run_exec({"cat", "/tmp/init-pid"});
            if (r.output == "2\n") break;
            ::usleep(20000);
        }
        CHECK(r.output == "2\n");
        r = run_exec(
            {"sh", "-c",
             "hostname; pwd; echo $WHO $HOME; id -u; cat /proc/2/cmdline | tr '\\0' ' '; echo"},
            "alice");
        REQUIRE_MESSAGE(!r.err, describe(r.err));
        CHECK(r.output == "execbox\n/tmp/exec-cwd\nexec /home/alice\n1000\n"
                          "sh -c echo $$ > /tmp/init-pid; read x \n");
        {
            // An exec with its own terminal: a second pty of the container's devpts.
            auto tp = parse_process(
                R"({"args": ["tty"], "cwd": "/", "env": ["PATH=/bin"], "terminal": true})");
            auto th = exec(c, tp, std::nullopt, {}, err);
            REQUIRE_MESSAGE(!err, describe(err));
            REQUIRE(th.terminal);
            std::string seen;
            CHECK(read_until(th.terminal.get(), seen, "/dev/pts/"));
            CHECK(wait(th) == 0);
        }
        r = run_exec({"nosuch"});
        CHECK(exec_failure_status(r.err) == 127);
        r = run_exec({"sh", "-c", "kill -9 $$"});
        CHECK(r.status == 137);

        REQUIRE(::write(in_wr.get(), "\n", 1) == 1);
        CHECK(wait(c.init) == 0);
        // The container is gone: exec's intermediate cannot enter it, and the error says so.
        r = run_exec({"true"});
        CHECK(r.err);
        CHECK_MESSAGE(r.err.message.find("setns into the container") != std::string::npos,
                      describe(r.err));
    }

    TEST_CASE("runtime: cgroup v2 limits") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        std::string mnt = cgroup2_mount();
        if (mnt.empty()) CZ_SKIP("no cgroup v2 hierarchy mounted (cgroup v1 host)");
        error err;
        if (!check_cgroup_root(mnt, "memory pids", err)) CZ_SKIP(err.message);
        busybox_root root;
        std::string cg_root = mnt + "/cz-test-" + std::to_string(::getpid());
        auto spec =
            default_spec(root.path, {"sh", "-c",
                                     "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max; "
                                     "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait"});
        spec["linux"]["resources"] = {{"memory", {{"limit", 67108864}}}, {"pids", {{"limit", 4}}}};
        auto parsed = parse_spec(spec.dump());
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        cz::unique_fd rd(p[0]), wr(p[1]);
        auto c = spawn(parsed, {0, wr.get(), wr.get()}, {cg_root, "c1"}, err);
        wr.reset();
        if (err) {
            ::rmdir(cg_root.c_str());
            FAIL(err.message);
        }
        CHECK(cz_test::read_file(c.cgroup_path + "/pids.max") == "4\n");
        auto out = drain(rd.get());
        wait(c.init);
        // The container sees its own cgroup as the root of /sys/fs/cgroup (cgroup namespace).
        CHECK(out.rfind("4\n67108864\n", 0) == 0);
        CHECK(out.find("can't fork") != std::string::npos);
        CHECK(destroy(c, err));
        ::rmdir(cg_root.c_str());
    }

    TEST_CASE("runtime: a cgroup per container, and its namespace") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        // Any cgroup v2 hierarchy will do, with or without controllers: the container is born
        // in its own cgroup (CLONE_INTO_CGROUP), sees it as "/", and an exec joins it.
        std::string mnt = cgroup2_mount();
        if (mnt.empty()) CZ_SKIP("no cgroup v2 hierarchy mounted (cgroup v1 host)");
        busybox_root root;
        std::string cg_root = mnt + "/cz-test-ns-" + std::to_string(::getpid());
        auto spec = parse_spec(default_spec(root.path, {"sh", "-c", "read x"}).dump());
        int in[2];
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        cz::unique_fd in_rd(in[0]), in_wr(in[1]);
        error err;
        auto c = spawn(spec, {in_rd.get(), 2, 2}, {cg_root, "c1"}, err);
        in_rd.reset();
        REQUIRE_MESSAGE(!err, describe(err));
        CHECK(c.cgroup_path == cg_root + "/c1");
        // The shim is in the cgroup from its first instruction; the program is its child.
        auto procs = cz_test::read_file(c.cgroup_path + "/cgroup.procs");
        CHECK(procs.rfind(std::to_string(c.init.pid) + "\n", 0) == 0);

        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        cz::unique_fd rd(out[0]), wr(out[1]);
        auto p = parse_process(R"({"args": ["/bin/cat", "/proc/self/cgroup"], "cwd": "/"})");
        auto h = exec(c, p, std::nullopt, {0, wr.get(), wr.get()}, err);
        wr.reset();
        REQUIRE_MESSAGE(!err, describe(err));
        auto seen = drain(rd.get());
        CHECK(wait(h) == 0);
        CHECK(seen.find("0::/\n") != std::string::npos);

        // A second container with the same name is refused; limits without the controllers are
        // an error that names what is missing, never a container without its limits.
        auto again = spawn(spec, {}, {cg_root, "c1"}, err);
        CHECK(err.code == std::errc::file_exists);
        for (const char* bad : {"", ".", "..", "../escape", "a/b"}) {
            spawn(spec, {}, {cg_root, bad}, err);
            CHECK(err.code == std::errc::invalid_argument);
        }
        auto limited = default_spec(root.path, {"true"});
        limited["linux"]["resources"] = {{"pids", {{"limit", 10}}}};
        error lerr;
        if (!check_cgroup_root(mnt, "pids", lerr)) {
            spawn(parse_spec(limited.dump()), {}, {cg_root, "c2"}, err);
            CHECK(err.code == errc::cgroup_unavailable);
            CHECK(err.message.find("controller pids not available") != std::string::npos);
            CHECK(!std::filesystem::exists(cg_root + "/c2"));
        }
        spawn(parse_spec(limited.dump()), {}, {}, err);
        CHECK(err.code == errc::cgroup_unavailable);
        CHECK(err.message == "linux.resources: limits need a cgroup root");

        REQUIRE(::write(in_wr.get(), "\n", 1) == 1);
        CHECK(wait(c.init) == 0);
        CHECK(destroy(c, err));
        CHECK(!std::filesystem::exists(cg_root + "/c1"));
        ::rmdir(cg_root.c_str());
    }

    TEST_CASE("runtime: the static build runs a container") {
        CZ_REQUIRE_ROOT_AND_BUSYBOX();
        const char* build = std::getenv("CZ_BUILD_ROOT");
        REQUIRE_MESSAGE(build, "CZ_BUILD_ROOT is not set (run the tests through meson test)");
        std::string exe = std::string(build) + "/tests/guest/guest_static_run";
        if (!std::filesystem::exists(exe))
            CZ_SKIP("guest_static_run is not built (sanitizer builds cannot link -static)");
        // Statically linked: no program interpreter, no shared libraries.
        CHECK(cz_test::sh_ok("readelf -l " + cz_test::quote(exe) + " | grep -c INTERP || true") ==
              "0\n");
        busybox_root root;
        std::string out;
        int rc = cz_test::sh(cz_test::quote(exe) + " " + cz_test::quote(root.path) +
                                 " sh -c 'hostname; echo $$; mkdir /m || echo denied' 2>&1",
                             &out);
        CHECK(rc == 0);
        CHECK(out.find("static\n2\n") == 0);
        CHECK(out.find("Operation not permitted") != std::string::npos);
        CHECK(out.find("denied") != std::string::npos);
        CHECK(cz_test::sh(cz_test::quote(exe) + " " + cz_test::quote(root.path) + " nosuch 2>&1",
                          &out) == 127);
    }

} // TEST_SUITE
