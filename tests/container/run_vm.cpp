// `cz run` end to end (suite vm): the cz tool, a store with a busybox image made here, Debian's
// kernel, cz-init, QEMU. Each case is one or more real runs, each a VM of its own: exit codes as
// docker's, stdio both ways, the image's config merged with the options, limits, and what a run
// leaves behind (nothing) when it ends, is interrupted or is killed.
#include "../oci/registry_server.hpp"
#include "../vm/support.hpp"
#include "busybox_root.hpp"

#include <cz/oci/archive.hpp>
#include <cz/oci/store.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

struct outcome {
    int rc = -1;
    std::string out;
    std::string err;
};

// `cz --root ROOT run ARGS`, stdin from `input` (a shell redirection), stdout and stderr apart.
outcome cz_run(const std::string& args, const std::string& input = "</dev/null") {
    cz_test::temp_dir tmp;
    outcome o;
    auto err = tmp / "stderr";
    o.rc = cz_test::sh(cz_test::quote(cz_tool()) + " --root " + cz_test::quote(cz_root().string()) +
                           " run " + args + " " + input + " 2>" + cz_test::quote(err),
                       &o.out);
    o.err = cz_test::read_file(err);
    return o;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// Starts `cz --root ROOT run ARGS` in the background, stdout and stderr to `out`; returns its pid.
pid_t start_cz_run(const std::string& args, const std::string& out) {
    // Made here, not in the child: the root is made once per process, and named after it.
    const auto& root = cz_root();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::string cmd = "exec " + cz_test::quote(cz_tool()) + " --root " +
                          cz_test::quote(root.string()) + " run " + args + " >" +
                          cz_test::quote(out) + " 2>&1";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
        ::_exit(127);
    }
    return pid;
}

// Waits (at most a minute) until the file `out` holds `text`.
void wait_for_output(const std::string& out, const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!contains(cz_test::read_file(out), text) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// What VMs the root holds (each run's state directory, removed when it ends).
std::size_t vm_dirs() {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = fs::directory_iterator(cz_root() / "vms", ec); !ec && it != fs::end(it);
         it.increment(ec))
        ++n;
    return n;
}

} // namespace

TEST_SUITE("cz run") {

    TEST_CASE(
        "true, false, echo: the container's exit code and output; the phases with --timings") {
        auto o = cz_run("--net none busybox true");
        INFO(o.err);
        CHECK(o.rc == 0);
        o = cz_run("--net none busybox false");
        CHECK(o.rc == 1);
        // Without a network, its drivers are not even loaded (boot time).
        o = cz_run("--net none --no-template busybox cat /proc/modules "
                   "/sys/block/vda/queue/read_ahead_kb");
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "virtio_blk "));
        CHECK_FALSE(contains(o.out, "virtio_net "));
        CHECK_FALSE(contains(o.out, "failover "));
        // The image disk reads ahead in large steps (cz-init sets it; Linux's default is 128).
        CHECK(contains(o.out, "\n2048\n"));
        o = cz_run("--net none --timings --no-template busybox echo hello from a microVM");
        CHECK(o.rc == 0);
        CHECK(o.out == "hello from a microVM\n");
        for (const char* phase :
             {"image", "rootfs", "guest", "boot", "agent", "start", "exit", "teardown"})
            CHECK(contains(o.err, std::string(" ") + phase + " "));
        CHECK(contains(o.err, "; cold boot\n"));
        // From the VM template the first run made.
        o = cz_run("--net none --timings busybox echo hello from a clone");
        CHECK(o.rc == 0);
        CHECK(o.out == "hello from a clone\n");
        for (const char* phase : {"image", "rootfs", "guest", "template", "qemu", "incoming",
                                  "agent", "start", "exit", "teardown"})
            CHECK(contains(o.err, std::string(" ") + phase + " "));
        CHECK(contains(o.err, "; from a VM template\n"));
        CHECK(vm_dirs() == 0);
    }

    TEST_CASE("exit codes: the command's, 128 + a signal, 127 not found, 126 not executable") {
        auto o = cz_run("--net none busybox sh -c 'echo out; echo err >&2; exit 42'");
        CHECK(o.rc == 42);
        CHECK(o.out == "out\n");
        CHECK(contains(o.err, "err\n"));
        o = cz_run("--net none busybox sh -c 'kill -9 $$'");
        CHECK(o.rc == 137);
        o = cz_run("--net none busybox no-such-command");
        CHECK(o.rc == 127);
        CHECK(contains(o.err, "no-such-command"));
        CHECK(contains(o.err, "not found"));
        o = cz_run("--net none busybox /etc/passwd");
        CHECK(o.rc == 126);
        CHECK(contains(o.err, "/etc/passwd"));
        // cz's own failures are 125, as docker's.
        o = cz_run("--net none no-such-image:1 true");
        CHECK(o.rc == 125);
        o = cz_run("--net bogus busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "--net"));
    }

    TEST_CASE("stdin piped in with -i, checksummed; without -i the container's stdin is empty") {
        cz_test::temp_dir tmp;
        auto data = tmp / "data";
        cz_test::sh_ok("head -c 3000000 /dev/urandom > " + cz_test::quote(data));
        auto want = cz_test::sh_ok("sha256sum < " + cz_test::quote(data) + " | cut -d' ' -f1");
        auto o = cz_run("--net none -i busybox sh -c 'sha256sum | cut -d\" \" -f1'",
                        "< " + cz_test::quote(data));
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(o.out == want);
        o = cz_run("--net none busybox sh -c 'cat | wc -c'", "< " + cz_test::quote(data));
        CHECK(o.out == "0\n");
    }

    TEST_CASE("256 MiB of stdout arrive whole") {
        // Not one repeated byte but the busybox binary over and over (the image's is the host's):
        // a chunk lost, doubled or out of order changes the checksum.
        cz_test::temp_dir tmp;
        auto out = tmp / "out";
        const std::string make = "while cat /bin/busybox; do :; done | head -c 268435456";
        auto o = cz_run("--net none busybox sh -c " + cz_test::quote(make),
                        "</dev/null >" + cz_test::quote(out));
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(fs::file_size(out) == 268435456u);
        auto got = cz_test::sh_ok("sha256sum < " + cz_test::quote(out) + " | cut -d' ' -f1");
        auto want = cz_test::sh_ok(make + " | sha256sum | cut -d' ' -f1");
        CHECK(got == want);
    }

    TEST_CASE("the image's Cmd and Env, merged with -e, -w, -u as docker merges them") {
        auto o = cz_run("--net none -e GREETING=mine -e NEW=1 busybox sh -c "
                        "'echo $GREETING $KEEP $NEW $HOME; pwd; id -u'");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(o.out == "mine image 1 /root\n/\n0\n");
        o = cz_run(
            "--net none -u alice -w /work/here busybox sh -c 'pwd; id -u; id -g; echo $HOME'");
        CHECK(o.out == "/work/here\n1000\n1000\n/home/alice\n");
        o = cz_run("--net none -u 1234:99 busybox id");
        CHECK(contains(o.out, "uid=1234 gid=99"));
        // No command: the image's Cmd (sh) reads the script from stdin.
        cz_test::temp_dir tmp;
        cz_test::write_file(tmp / "script", "echo from the image cmd\n");
        o = cz_run("--net none -i busybox", "< " + cz_test::quote(tmp / "script"));
        CHECK(o.out == "from the image cmd\n");
        o = cz_run("--net none --entrypoint echo busybox entry");
        CHECK(o.out == "entry\n");
    }

    TEST_CASE("name, hostname, /etc/hosts; a read-only root filesystem") {
        auto o = cz_run("--net none --name web1 busybox sh -c 'hostname; grep web1 /etc/hosts'");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "web1\n"));
        CHECK(contains(o.out, "127.0.1.1\tweb1"));
        o = cz_run("--net none --read-only busybox touch /x");
        CHECK(o.rc == 1);
        CHECK(contains(o.err, "Read-only file system"));
        o = cz_run("--net none busybox sh -c 'touch /x && echo writable'");
        CHECK(o.out == "writable\n");
    }

    TEST_CASE("a terminal with -t: a pty of the host's size, TERM, what is typed") {
        if (!cz_test::have("script")) CZ_SKIP("script (util-linux) is not installed");
        cz_test::temp_dir tmp;
        cz_test::write_file(tmp / "typed", "tty; echo $TERM; stty size; exit 5\n");
        std::string inner = "stty cols 100 rows 30; " + cz_test::quote(cz_tool()) + " --root " +
                            cz_test::quote(cz_root().string()) + " run -t -i --net none busybox sh";
        std::string out;
        int rc = cz_test::sh("script -qec " + cz_test::quote(inner) + " /dev/null < " +
                                 cz_test::quote(tmp / "typed"),
                             &out);
        INFO(out);
        CHECK(rc == 5);
        CHECK(contains(out, "/dev/pts/0"));
        CHECK(contains(out, "xterm"));
        CHECK(contains(out, "30 100"));
    }

    TEST_CASE("network: the host's loopback through NAT, DNS settings, -p publishes a port") {
        cz_test::temp_dir tmp;
        cz_test::write_file(tmp / "index.html", "served by the host\n");
        auto free_port = [] {
            return cz_test::sh_ok("python3 -c 'import socket; s = socket.socket(); "
                                  "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'");
        };
        auto http_port = free_port();
        http_port.pop_back();
        cz_test::sh_ok("busybox httpd -p 127.0.0.1:" + http_port + " -h " +
                       cz_test::quote(tmp.str()));
        auto stop_httpd = [&] {
            cz_test::sh("pkill -f 'busybox httpd -p 127.0.0.1:" + http_port + "'");
        };
        auto o = cz_run("busybox sh -c 'wget -q -O - http://10.0.2.2:" + http_port +
                        "/index.html; cat /etc/resolv.conf /proc/modules'");
        stop_httpd();
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "served by the host\n"));
        CHECK(contains(o.out, "nameserver 10.0.2.3"));
        CHECK(contains(o.out, "virtio_net "));

        auto published = free_port();
        published.pop_back();
        pid_t pid =
            start_cz_run("-p 127.0.0.1:" + published +
                             ":8080 busybox sh -c 'echo from the container | nc -l -p 8080'",
                         "/dev/null");
        std::string got;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!contains(got, "from the container") &&
               std::chrono::steady_clock::now() < deadline) {
            cz_test::sh("busybox nc 127.0.0.1 " + published + " </dev/null 2>/dev/null", &got);
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        CHECK(contains(got, "from the container"));
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        o = cz_run("--net none busybox sh -c 'ip -o link | cut -d: -f2'");
        CHECK(o.out == " lo\n"); // no network device at all
    }

    TEST_CASE(
        "limits: --memory and --cpus in the container's cgroup; an OOM kill is 137 and said") {
        auto o =
            cz_run("--net none --memory 32m --cpus 0.5 busybox sh -c "
                   "'cd /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup) && cat memory.max cpu.max'");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(o.out == "33554432\n50000 100000\n");
        o = cz_run(
            "--net none --memory 16m busybox sh -c 'exec dd if=/dev/zero of=/dev/null bs=64M'");
        CHECK(o.rc == 137);
        CHECK(contains(o.err, "out of memory"));
        o = cz_run("--net none --memory 16m busybox sh -c 'kill -9 $$'");
        CHECK(o.rc == 137);
        CHECK_FALSE(contains(o.err, "out of memory"));
    }

    TEST_CASE("--rootfs-size: the writable layer on a scratch disk of that size, removed after") {
        auto o =
            cz_run("--net none --rootfs-size 64M busybox sh -c "
                   "'dd if=/dev/zero of=/small bs=1M count=8 2>/dev/null && echo fits; "
                   "dd if=/dev/zero of=/big bs=1M count=100 2>&1 | grep -o \"No space left\"'");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "fits\n"));
        CHECK(contains(o.out, "No space left\n"));
        std::error_code ec;
        CHECK(fs::is_empty(cz_root() / "scratch", ec));
        o = cz_run("--net none --rootfs-size 1M busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "--rootfs-size"));
    }

    TEST_CASE("Ctrl-C (SIGINT) and SIGTERM reach the running container") {
        cz_test::temp_dir tmp;
        auto out = tmp / "out";
        pid_t pid = start_cz_run("--net none busybox sh -c 'trap \"echo got INT\" INT; "
                                 "trap \"echo got TERM; exit 7\" TERM; "
                                 "echo ready; while true; do sleep 0.1; done'",
                                 out);
        wait_for_output(out, "ready");
        ::kill(pid, SIGINT);
        wait_for_output(out, "got INT");
        ::kill(pid, SIGTERM);
        int status = 0;
        ::waitpid(pid, &status, 0);
        auto text = cz_test::read_file(out);
        INFO(text);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 7);
        CHECK(contains(text, "got INT\ngot TERM"));
        CHECK(vm_dirs() == 0);
    }

    TEST_CASE("Ctrl-C while the VM boots ends the run with 130, leaving nothing") {
        cz_test::temp_dir tmp;
        auto out = tmp / "out";
        pid_t pid = start_cz_run("--net none busybox echo the-container-ran", out);
        // The VM's directory appears when QEMU starts; the guest needs seconds to boot under TCG.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (vm_dirs() == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ::kill(pid, SIGINT);
        int status = 0;
        ::waitpid(pid, &status, 0);
        auto text = cz_test::read_file(out);
        INFO(text);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 130);
        CHECK_FALSE(contains(text, "the-container-ran"));
        CHECK(vm_dirs() == 0);
        CHECK(cz_test::sh("pgrep -f " + cz_test::quote("^qemu-system.*" + cz_root().string()) +
                          " >/dev/null") != 0);
    }

    TEST_CASE("--ulimit sets the process's resource limits") {
        auto o = cz_run("--net none --ulimit nofile=256:512 --ulimit core=0 busybox sh -c "
                        "'ulimit -n; ulimit -Hn; ulimit -c'");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(o.out == "256\n512\n0\n");
        o = cz_run("--net none --ulimit nofile=512:256 busybox true");
        CHECK(o.rc == 125);
        CHECK(contains(o.err, "soft limit is above the hard limit"));
    }

    TEST_CASE("kill -9 of cz during a run: QEMU goes with it, the next run sweeps its directory") {
        cz_test::temp_dir tmp;
        auto out = tmp / "out";
        pid_t pid = start_cz_run("--net none busybox sh -c 'echo ready; sleep 600'", out);
        wait_for_output(out, "ready");
        REQUIRE(vm_dirs() == 1);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        // QEMU dies with its parent (PR_SET_PDEATHSIG).
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (cz_test::sh("pgrep -f " + cz_test::quote("^qemu-system.*" + cz_root().string()) +
                           " >/dev/null") == 0 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(cz_test::sh("pgrep -f " + cz_test::quote("^qemu-system.*" + cz_root().string()) +
                          " >/dev/null") != 0);
        auto o = cz_run("--net none busybox true");
        CHECK(o.rc == 0);
        CHECK(vm_dirs() == 0);
    }

    TEST_CASE("an image not in the store is pulled from the registry first, then run") {
        if (!cz_test::have("skopeo") || !cz_test::have("docker-registry"))
            CZ_SKIP("skopeo and docker-registry are needed");
        cz_test::registry_server registry;
        cz_test::sh_ok(
            "skopeo copy -q --dest-tls-verify=false oci:" +
            cz_test::quote((cz_root() / "content").string() + ":docker.io/library/busybox:latest") +
            " docker://" + registry.host() + "/tools/busybox:1");
        // A root of its own: an empty store, the same kernels.
        cz_test::temp_dir fresh;
        fs::create_directory_symlink(cz::vm::test::test_root() / "kernels", fresh.path / "kernels");
        cz_test::temp_dir tmp;
        std::string out;
        int rc = cz_test::sh(cz_test::quote(cz_tool()) + " --root " + cz_test::quote(fresh.str()) +
                                 " run --net none " + registry.host() +
                                 "/tools/busybox:1 echo pulled and run </dev/null 2>" +
                                 cz_test::quote(tmp / "err"),
                             &out);
        auto err = cz_test::read_file(tmp / "err");
        INFO(err);
        CHECK(rc == 0);
        CHECK(out == "pulled and run\n");
        CHECK(contains(err, "pulling " + registry.host() + "/tools/busybox:1"));
        CHECK(contains(err, "building the root filesystem"));
        // The second run finds it in the store.
        rc = cz_test::sh(cz_test::quote(cz_tool()) + " --root " + cz_test::quote(fresh.str()) +
                         " run --net none " + registry.host() + "/tools/busybox:1 true 2>" +
                         cz_test::quote(tmp / "err"));
        CHECK(rc == 0);
        CHECK_FALSE(contains(cz_test::read_file(tmp / "err"), "pulling"));
    }

    TEST_CASE("four runs at once") {
        cz_test::temp_dir tmp;
        std::string cmd;
        for (int i = 0; i < 4; ++i)
            cmd += cz_test::quote(cz_tool()) + " --root " + cz_test::quote(cz_root().string()) +
                   " run --net none busybox sh -c 'echo run " + std::to_string(i) + "' > " +
                   cz_test::quote(tmp / ("out" + std::to_string(i))) + " 2>&1 & ";
        cz_test::sh_ok(cmd + "wait");
        for (int i = 0; i < 4; ++i)
            CHECK(cz_test::read_file(tmp / ("out" + std::to_string(i))) ==
                  "run " + std::to_string(i) + "\n");
        CHECK(vm_dirs() == 0);
    }
}
