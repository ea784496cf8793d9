// Detached containers end to end (suite vm): `cz run -d` and the commands that follow it, with
// the cz tool, cz-init, Debian's kernel and QEMU. Three test cases, seven VMs: one container for
// exec (20 in sequence, 5 at once), logs (while running, -f, after the exit), stats, names,
// prefixes and a stop that has to SIGKILL; then two containers at once, a supervisor killed with
// SIGKILL, a start that fails, a supervisor's SIGTERM, and rm; then cz cp both ways (a tree with
// symlinks, modes, an empty directory and names with spaces, compared with the source; docker's
// rules for missing and existing destinations; tar streams) and cz wait on a --rm container.
#include "busybox_root.hpp"

#include <cz/container/state.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <support/support.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct outcome {
    int rc = -1;
    std::string out;
    std::string err;
};

std::string cz_cmd(const std::string& args) {
    return cz_test::quote(cz_tool()) + " --root " + cz_test::quote(cz_root().string()) + " " + args;
}

// `cz --root ROOT ARGS`, stdout and stderr apart.
outcome run_cz(const std::string& args, const std::string& input = "</dev/null") {
    cz_test::temp_dir tmp;
    outcome o;
    auto err = tmp / "stderr";
    o.rc = cz_test::sh(cz_cmd(args) + " " + input + " 2>" + cz_test::quote(err), &o.out);
    o.err = cz_test::read_file(err);
    return o;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// Runs `sh -c cmd` in the background, its stdout and stderr to `out`.
pid_t background(const std::string& cmd, const std::string& out) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::string full = "exec " + cmd + " >" + cz_test::quote(out) + " 2>&1 </dev/null";
        ::execl("/bin/sh", "sh", "-c", full.c_str(), nullptr);
        ::_exit(127);
    }
    return pid;
}

int wait_exit(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

nlohmann::json inspect(const std::string& ref) {
    auto o = run_cz("inspect " + ref);
    INFO(o.err);
    REQUIRE(o.rc == 0);
    auto j = nlohmann::json::parse(o.out);
    REQUIRE(j.size() == 1);
    return j[0];
}

// The processes whose parent is `pid` (QEMU under its supervisor).
std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        auto name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(e.path() / "stat");
        std::string line;
        std::getline(stat, line);
        auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == pid &&
            state != 'Z')
            out.push_back(std::stoi(name));
    }
    return out;
}

fs::path ct_dir(const std::string& id) {
    return cz::container::container_dir(cz_root(), id);
}

bool process_gone(pid_t pid) {
    return ::kill(pid, 0) != 0 && errno == ESRCH;
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

TEST_SUITE("cz run -d") {

    TEST_CASE("one container: exec in sequence and at once, logs, -f, names, prefixes, stop") {
        // The container prints started, then whatever an exec leaves in /tmp/say; it ignores
        // SIGTERM, so that stop has to kill it.
        auto run =
            run_cz("run -d --net none --name box busybox sh -c 'echo started; trap \"\" TERM; "
                   "while true; do if [ -e /tmp/say ]; then cat /tmp/say; rm /tmp/say; fi; "
                   "sleep 0.1; done'");
        INFO(run.err);
        REQUIRE(run.rc == 0);
        const std::string id = run.out.substr(0, run.out.size() - 1);
        REQUIRE(id.size() == 64);
        CHECK(run.out.back() == '\n');

        auto ps = run_cz("ps");
        CHECK(ps.rc == 0);
        CHECK(contains(ps.out, id.substr(0, 12)));
        CHECK(contains(ps.out, "box"));
        CHECK(contains(ps.out, "Up "));
        auto json = run_cz("ps --format json");
        REQUIRE(json.rc == 0);
        auto j = nlohmann::json::parse(json.out.substr(0, json.out.find('\n')));
        CHECK(j["id"] == id);
        CHECK(j["status"] == "running");
        auto dir = ct_dir(id);
        CHECK((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all);
        CHECK((fs::status(dir / "control.sock").permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write));

        // A second container of the same name is refused before any VM starts.
        auto again = run_cz("run -d --net none --name box busybox true");
        CHECK(again.rc == 125);
        CHECK(contains(again.err, "box"));
        CHECK(contains(again.err, "already in use"));

        // Twenty execs in sequence, by name and by id prefix in turn: output on both streams
        // and the exit code of each.
        for (int i = 0; i < 20; ++i) {
            auto n = std::to_string(i);
            auto ref = i % 2 ? std::string("box") : id.substr(0, 5 + i % 7);
            auto e = run_cz("exec " + ref + " sh -c 'echo out-" + n + "; echo err-" + n +
                            " >&2; exit " + n + "'");
            CHECK(e.rc == i);
            CHECK(e.out == "out-" + n + "\n");
            CHECK(e.err == "err-" + n + "\n");
        }
        // Five at once.
        cz_test::temp_dir tmp;
        std::vector<pid_t> pids;
        for (int i = 0; i < 5; ++i) {
            auto n = std::to_string(i);
            pids.push_back(background(
                cz_cmd("exec box sh -c 'sleep 0.5; echo at-once-" + n + "; exit " + n + "'"),
                tmp / ("x" + n)));
        }
        for (int i = 0; i < 5; ++i) {
            auto n = std::to_string(i);
            CHECK(wait_exit(pids[static_cast<std::size_t>(i)]) == i);
            CHECK(cz_test::read_file(tmp / ("x" + n)) == "at-once-" + n + "\n");
        }
        // stdin, options, and a command that is not there.
        cz_test::write_file(tmp / "input", "line one\nline two\n");
        auto cat = run_cz("exec -i box cat", "<" + cz_test::quote(tmp / "input"));
        CHECK(cat.rc == 0);
        CHECK(cat.out == "line one\nline two\n");
        auto opts = run_cz("exec -e GREETING=hi -w /tmp/made -u alice box sh -c "
                           "'echo $GREETING $KEEP; pwd; id -u'");
        CHECK(opts.rc == 0);
        CHECK(opts.out == "hi image\n/tmp/made\n1000\n");
        auto missing = run_cz("exec box nosuch");
        CHECK(missing.rc == 127);
        CHECK(contains(missing.err, "nosuch"));
        auto nobody = run_cz("exec nosuchbox true");
        CHECK(nobody.rc == 125);
        CHECK(contains(nobody.err, "no such container"));

        // Logs while it runs; -f follows what comes after.
        auto logs = run_cz("logs box");
        CHECK(logs.rc == 0);
        CHECK(logs.out == "started\n");
        auto follow_out = tmp / "follow";
        pid_t follower = background(cz_cmd("logs -f box"), follow_out);
        CHECK(eventually([&] { return contains(cz_test::read_file(follow_out), "started"); }));
        CHECK(run_cz("exec box sh -c 'echo fresh-line > /tmp/say'").rc == 0);
        CHECK(eventually([&] { return contains(cz_test::read_file(follow_out), "fresh-line"); }));
        int status = 0;
        CHECK(::waitpid(follower, &status, WNOHANG) == 0); // still following

        // Its figures, from the guest's cgroup: the shell and its sleep, some memory.
        auto stats = run_cz("stats --no-stream box");
        CHECK(stats.rc == 0);
        CHECK(contains(stats.out, "box"));
        stats = run_cz("stats --no-stream --format json box");
        REQUIRE(stats.rc == 0);
        auto figures = nlohmann::json::parse(stats.out);
        CHECK(figures["pids_current"].get<int>() >= 1);
        CHECK(figures["memory_current"].get<std::uint64_t>() > 0);

        // Stop: SIGTERM is ignored, SIGKILL after a second ends it.
        auto t0 = std::chrono::steady_clock::now();
        auto stop = run_cz("stop -t 1 box");
        auto took = std::chrono::steady_clock::now() - t0;
        INFO(stop.err);
        CHECK(stop.rc == 0);
        CHECK(stop.out == "box\n");
        CHECK(took >= std::chrono::seconds(1));
        // -f ends by itself once the container has.
        CHECK(wait_exit(follower) == 0);
        CHECK(cz_test::read_file(follow_out) == "started\nfresh-line\n");

        auto state = inspect(id.substr(0, 8));
        CHECK(state["status"] == "exited");
        CHECK(state["exit_code"] == 137);
        CHECK(run_cz("wait box").out == "137\n");
        CHECK(contains(run_cz("ps -a").out, "Exited (137)"));
        CHECK_FALSE(contains(run_cz("ps").out, id.substr(0, 12)));
        logs = run_cz("logs --tail 1 box");
        CHECK(logs.out == "fresh-line\n");
        logs = run_cz("logs -t box");
        // 2026-12-01T01:06:47.916883151Z started
        CHECK(logs.out.size() > 30);
        CHECK(logs.out.substr(29, 10) == "Z started\n");
        auto exec_after = run_cz("exec box true");
        CHECK(exec_after.rc == 125);
        CHECK(contains(exec_after.err, "not running"));

        auto rm = run_cz("rm box");
        CHECK(rm.rc == 0);
        CHECK_FALSE(fs::exists(dir));
        CHECK_FALSE(contains(run_cz("ps -a").out, id.substr(0, 12)));
    }

    TEST_CASE("two at once; a supervisor killed with SIGKILL; a start that fails; rm -f") {
        auto one = run_cz("run -d --net none --name one busybox sh -c 'echo one; sleep 1000'");
        auto two = run_cz("run -d --net none --name two busybox sh -c 'echo two; sleep 1000'");
        INFO(one.err, two.err);
        REQUIRE(one.rc == 0);
        REQUIRE(two.rc == 0);
        auto id1 = one.out.substr(0, 64), id2 = two.out.substr(0, 64);
        // Each exec reaches its own container (its hostname: its id's first 12 digits).
        CHECK(run_cz("exec one hostname").out == id1.substr(0, 12) + "\n");
        CHECK(run_cz("exec two hostname").out == id2.substr(0, 12) + "\n");
        CHECK(eventually([&] { return run_cz("logs one").out == "one\n"; }));
        CHECK(run_cz("logs two").out == "two\n");

        // SIGKILL to one's supervisor: its QEMU goes with it, and the state says so.
        pid_t supervisor = inspect("one")["supervisor_pid"].get<int>();
        auto qemu = children_of(supervisor);
        REQUIRE(qemu.size() == 1);
        REQUIRE(::kill(supervisor, SIGKILL) == 0);
        CHECK(eventually([&] { return process_gone(qemu[0]); }, std::chrono::seconds(20)));
        CHECK(eventually([&] { return !contains(run_cz("ps").out, "one"); }));
        auto state = inspect("one");
        CHECK(state["status"] == "exited");
        CHECK(state["exit_code"] == 137);
        CHECK(contains(state["error"].get<std::string>(), "supervisor"));
        CHECK(contains(run_cz("ps -a").out, "Exited (137)"));
        CHECK(run_cz("exec one true").rc == 125);
        // The other one never noticed.
        CHECK(run_cz("exec two echo still here").out == "still here\n");
        CHECK(run_cz("rm one").rc == 0);
        CHECK_FALSE(fs::exists(ct_dir(id1)));

        // A command that does not exist: 127, as docker run -d; the container stays, exited.
        auto bad = run_cz("run -d --net none --name bad busybox nosuch");
        CHECK(bad.rc == 127);
        CHECK(contains(bad.err, "nosuch"));
        state = inspect("bad");
        CHECK(state["status"] == "exited");
        CHECK(state["exit_code"] == 127);
        CHECK(run_cz("rm bad").rc == 0);

        // SIGTERM to a supervisor stops its container as cz stop does (sleep dies of the TERM).
        auto three = run_cz("run -d --net none --name three busybox sleep 1000");
        REQUIRE(three.rc == 0);
        pid_t supervisor3 = inspect("three")["supervisor_pid"].get<int>();
        auto qemu3 = children_of(supervisor3);
        REQUIRE(::kill(supervisor3, SIGTERM) == 0);
        CHECK(eventually([&] { return inspect("three")["status"] == "exited"; }));
        state = inspect("three");
        CHECK(state["exit_code"] == 143);
        CHECK(state["error"] == "");
        for (auto q : qemu3)
            CHECK(eventually([&] { return process_gone(q); }, std::chrono::seconds(20)));
        CHECK(run_cz("rm three").rc == 0);

        // rm without -f refuses a running container; with -f it goes, VM and all.
        auto refused = run_cz("rm two");
        CHECK(refused.rc == 1);
        CHECK(contains(refused.err, "running"));
        pid_t supervisor2 = inspect("two")["supervisor_pid"].get<int>();
        auto qemu2 = children_of(supervisor2);
        CHECK(run_cz("rm -f two").rc == 0);
        CHECK_FALSE(fs::exists(ct_dir(id2)));
        CHECK(eventually([&] { return process_gone(supervisor2); }, std::chrono::seconds(10)));
        for (auto q : qemu2)
            CHECK(eventually([&] { return process_gone(q); }, std::chrono::seconds(20)));
        CHECK(run_cz("ps -a").out.find('\n') == run_cz("ps -a").out.size() - 1); // the header only
    }

    TEST_CASE("cp both ways; wait on a --rm container") {
        auto run = run_cz("run -d --net none --name cpbox busybox sh -c 'sleep 1000'");
        INFO(run.err);
        REQUIRE(run.rc == 0);
        cz_test::temp_dir tmp;
        auto src = tmp.path / "src";
        fs::create_directories(src / "sub dir/empty");
        cz_test::write_file(src / "a file with spaces", "spaces\n");
        cz_test::write_file(src / "sub dir/script", "#!/bin/sh\necho hi\n");
        fs::permissions(src / "sub dir/script", fs::perms(0750));
        cz_test::write_file(src / "private", "secret");
        fs::permissions(src / "private", fs::perms(0600));
        fs::create_symlink("sub dir/script", src / "rel-link");
        fs::create_symlink("/etc/passwd", src / "abs-link");
        fs::create_symlink("missing", src / "dangling");
        fs::permissions(src / "a file with spaces", fs::perms(0644));
        fs::permissions(src / "sub dir/empty", fs::perms(0755));
        fs::permissions(src / "sub dir", fs::perms(0705));
        const auto want = tree_of(src);

        // Host -> container, a destination that is not there: made, with the tree's contents.
        auto in = run_cz("cp " + cz_test::quote(src.string()) + " cpbox:/data");
        INFO(in.err);
        REQUIRE(in.rc == 0);
        auto seen = run_cz("exec cpbox sh -c 'cd /data && stat -c \"%n|%a|%u|%F\" * \"sub dir\"/* "
                           "&& readlink rel-link && readlink abs-link && readlink dangling && cat "
                           "\"a file with spaces\"'");
        CHECK(seen.rc == 0);
        CHECK(seen.out == "a file with spaces|644|0|regular file\n"
                          "abs-link|777|0|symbolic link\n"
                          "dangling|777|0|symbolic link\n"
                          "private|600|0|regular file\n"
                          "rel-link|777|0|symbolic link\n"
                          "sub dir|705|0|directory\n"
                          "sub dir/empty|755|0|directory\n"
                          "sub dir/script|750|0|regular file\n"
                          "sub dir/script\n/etc/passwd\nmissing\nspaces\n");
        // And back: into a host path that is not there, and into one that is (as data/).
        auto out = tmp.path / "out";
        auto back = run_cz("cp cpbox:/data " + cz_test::quote(out.string()));
        INFO(back.err);
        REQUIRE(back.rc == 0);
        CHECK(tree_of(out) == want);
        fs::create_directories(tmp.path / "into");
        CHECK(run_cz("cp cpbox:/data " + cz_test::quote((tmp.path / "into").string())).rc == 0);
        CHECK(tree_of(tmp.path / "into/data") == want);
        // SRC/. : the contents into an existing directory, both ways.
        fs::create_directories(tmp.path / "contents");
        CHECK(run_cz("cp cpbox:/data/. " + cz_test::quote((tmp.path / "contents").string())).rc ==
              0);
        CHECK(tree_of(tmp.path / "contents") == want);
        CHECK(run_cz("exec cpbox mkdir /merged").rc == 0);
        CHECK(run_cz("cp " + cz_test::quote(src.string() + "/.") + " cpbox:/merged").rc == 0);
        CHECK(run_cz("exec cpbox ls /merged").out ==
              "a file with spaces\nabs-link\ndangling\nprivate\nrel-link\nsub dir\n");

        // Files: to a new name, into a directory, over a file.
        auto passwd = tmp.path / "passwd";
        CHECK(run_cz("cp cpbox:/etc/passwd " + cz_test::quote(passwd.string())).rc == 0);
        CHECK(cz_test::read_file(passwd) == run_cz("exec cpbox cat /etc/passwd").out);
        CHECK(
            run_cz("cp " + cz_test::quote((src / "private").string()) + " cpbox:/tmp/renamed").rc ==
            0);
        CHECK(run_cz("cp " + cz_test::quote((src / "private").string()) + " cpbox:/tmp").rc == 0);
        CHECK(run_cz("exec cpbox cat /tmp/renamed /tmp/private").out == "secretsecret");
        CHECK(run_cz("cp " + cz_test::quote(passwd.string()) + " cpbox:/tmp/renamed").rc == 0);
        CHECK(run_cz("exec cpbox cat /tmp/renamed").out == cz_test::read_file(passwd));

        // A container symlink that climbs above its root resolves inside it: the container's
        // /etc/passwd (alice's), not the VM's.
        CHECK(run_cz("exec cpbox ln -s ../../../../../.. /tmp/up").rc == 0);
        auto through = tmp.path / "through";
        auto up = run_cz("cp cpbox:/tmp/up/etc/passwd " + cz_test::quote(through.string()));
        INFO(up.err);
        CHECK(up.rc == 0);
        CHECK(contains(cz_test::read_file(through), "alice"));

        // Missing sources and destinations: errors that name the container and the path.
        auto missing = run_cz("cp cpbox:/nosuch " + cz_test::quote((tmp.path / "x").string()));
        CHECK(missing.rc == 1);
        CHECK(contains(missing.err, "cpbox:/nosuch"));
        CHECK_FALSE(fs::exists(tmp.path / "x"));
        auto no_dir =
            run_cz("cp " + cz_test::quote((src / "private").string()) + " cpbox:/no/such/dir/");
        CHECK(no_dir.rc == 1);
        CHECK(contains(no_dir.err, "cpbox:/no/such/dir/"));
        auto no_parent =
            run_cz("cp " + cz_test::quote((src / "private").string()) + " cpbox:/no/such/file");
        CHECK(no_parent.rc == 1);
        CHECK(contains(no_parent.err, "/no/such"));
        auto host_missing =
            run_cz("cp cpbox:/etc/passwd " + cz_test::quote((tmp.path / "none/passwd").string()));
        CHECK(host_missing.rc == 1);
        CHECK(contains(host_missing.err, "none"));
        auto dir_to_file = run_cz("cp cpbox:/data " + cz_test::quote(passwd.string()));
        CHECK(dir_to_file.rc == 1);
        CHECK(contains(dir_to_file.err, "cannot copy a directory to a file"));
        auto no_box = run_cz("cp nosuchbox:/etc " + cz_test::quote(tmp.str()));
        CHECK(no_box.rc == 1);
        CHECK(contains(no_box.err, "no such container"));

        // Tar streams: out to GNU tar, in from it.
        std::string listing;
        CHECK(cz_test::sh(cz_cmd("cp cpbox:/data -") + " | tar -tf - | sort", &listing) == 0);
        CHECK(contains(listing, "data/sub dir/empty/\n"));
        CHECK(contains(listing, "data/a file with spaces\n"));
        CHECK(run_cz("exec cpbox mkdir /streamed").rc == 0);
        CHECK(cz_test::sh("tar -C " + cz_test::quote(src.string()) + " -cf - . | " +
                          cz_cmd("cp - cpbox:/streamed")) == 0);
        CHECK(run_cz("exec cpbox cat '/streamed/sub dir/script'").out == "#!/bin/sh\necho hi\n");
        CHECK(cz_test::sh("tar -C " + cz_test::quote(src.string()) + " -cf - . | " +
                          cz_cmd("cp - cpbox:/not-there") + " 2>/dev/null") == 1);
        CHECK(run_cz("rm -f cpbox").rc == 0);

        // cz wait on a --rm container: started before the exit, it gets the exit code; after the
        // removal, there is no such container.
        auto rm = run_cz("run -d --rm --net none --name gone busybox sh -c 'sleep 2; exit 3'");
        INFO(rm.err);
        REQUIRE(rm.rc == 0);
        auto waited = run_cz("wait gone");
        CHECK(waited.rc == 0);
        CHECK(waited.out == "3\n");
        CHECK(eventually([&] { return run_cz("inspect gone").rc != 0; }));
        auto late = run_cz("wait gone");
        CHECK(late.rc == 1);
        CHECK(contains(late.err, "gone: no such container"));
    }
}
