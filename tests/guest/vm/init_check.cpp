// The guest half of tests/guest/init_vm.cpp: PID 1 of a test VM, built from cz-init's boot pieces
// (guest/init). It boots as cz-init does (early mounts, modules, cgroup controllers, the root file
// system as an overlay over /dev/vda), checks what it can see from inside, and prints one line per
// check, "CZ-CHECK <name> ok" or "CZ-CHECK <name> FAIL <why>", then "CZ-DONE", and powers off.
// The host test reads the console.
#include "init/boot.hpp"
#include "init/cmdline.hpp"
#include "init/log.hpp"
#include "init/reaper.hpp"
#include "init/rootfs.hpp"

#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

void report(const std::string& name, bool ok, const std::string& why = "") {
    std::printf("CZ-CHECK %s %s%s%s\n", name.c_str(), ok ? "ok" : "FAIL",
                ok || why.empty() ? "" : " ", ok ? "" : why.c_str());
    std::fflush(stdout);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool mounted(const std::string& mounts, const std::string& target, const std::string& type) {
    std::istringstream lines(mounts);
    for (std::string src, dir, fstype, rest;
         lines >> src >> dir >> fstype && std::getline(lines, rest);)
        if (dir == target && fstype == type) return true;
    return false;
}

template <typename F>
void step(const std::string& name, F&& f) {
    try {
        f();
        report(name, true);
    } catch (const std::exception& e) {
        report(name, false, e.what());
    }
}

} // namespace

int main() {
    using namespace cz::guest;
    step("early-mounts", [] { mount_early_filesystems(); });
    auto cmdline = kernel_cmdline::parse(slurp("/proc/cmdline"));
    if (auto level = cmdline.get("cz.log")) parse_log_level(*level, log_threshold());
    report("cmdline", cmdline.get("cz.test") == std::string("init"), slurp("/proc/cmdline"));

    auto mounts = slurp("/proc/mounts");
    for (auto [dir, type] : {std::pair{"/proc", "proc"},
                             {"/sys", "sysfs"},
                             {"/dev", "devtmpfs"},
                             {"/dev/pts", "devpts"},
                             {"/dev/shm", "tmpfs"},
                             {"/run", "tmpfs"},
                             {"/sys/fs/cgroup", "cgroup2"}})
        report(std::string("mounted:") + dir, mounted(mounts, dir, type), mounts);
    // Twice is harmless: everything is already mounted.
    step("early-mounts-again", [] { mount_early_filesystems(); });

    auto failures = load_kernel_modules();
    std::string failed;
    for (const auto& f : failures)
        failed += f + "; ";
    report("modules", failures.empty(), failed);
    report("overlay-available", slurp("/proc/filesystems").find("overlay") != std::string::npos);

    step("cgroup-controllers", [] {
        auto names = enable_cgroup_controllers();
        auto enabled = slurp("/sys/fs/cgroup/cgroup.subtree_control");
        for (const char* want : {"memory", "pids"})
            if (enabled.find(want) == std::string::npos)
                throw std::runtime_error(std::string(want) + " not enabled: " + enabled);
    });

    std::string merged;
    step("rootfs", [&] { merged = cz::guest::mount_rootfs({}).string(); });
    report("rootfs-content", slurp(merged + "/hello.txt") == "hello from the image\n",
           slurp(merged + "/hello.txt"));
    {
        std::ofstream(merged + "/written.txt") << "by the container\n";
        report("rootfs-writable", slurp(merged + "/written.txt") == "by the container\n");
        report("writes-go-to-upper",
               slurp("/run/cz/rootfs/scratch/upper/written.txt") == "by the container\n");
        struct statvfs lower {};
        report("image-read-only",
               ::statvfs("/run/cz/rootfs/lower", &lower) == 0 && (lower.f_flag & ST_RDONLY));
    }

    // Orphans: a child whose own children outlive it. PID 1 inherits and must reap them.
    pid_t parent = ::fork();
    if (parent == 0) {
        for (int i = 0; i < 5; ++i)
            if (::fork() == 0) _exit(0);
        _exit(7);
    }
    int reaped = 0, parent_status = -1;
    for (int tries = 0; tries < 200 && reaped < 6; ++tries) {
        for (auto e : reap_exited_children()) {
            ++reaped;
            if (e.pid == parent) parent_status = e.wait_status;
        }
        ::usleep(10000);
    }
    report("reaped", reaped == 6 && WIFEXITED(parent_status) && WEXITSTATUS(parent_status) == 7,
           std::to_string(reaped) + " reaped");
    report("no-children-left",
           reap_exited_children().empty() && ::waitpid(-1, nullptr, WNOHANG) < 0);

    std::printf("CZ-DONE\n");
    std::fflush(stdout);
    power_off();
}
