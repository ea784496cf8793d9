// benchmarks/qemu_cpu.hpp — where the CPU time of a transfer through a VM went, for the benchmarks
// that move bytes between host and guest (vsock_throughput.cpp, agent_rpc.cpp). A busy machine
// disturbs these figures much less than it disturbs wall time:
//   vcpu       CPU time of QEMU's vCPU thread (under TCG: the guest's instructions, emulated, and
//              whatever QEMU does on that thread, such as virtio-serial's device work on a kick)
//   vcpu_wait  time the vCPU thread was runnable but waited for a host CPU (other load)
//   qemu_rest  CPU time of QEMU's other threads (its main loop: device work, interrupts)
//   host       CPU time of this process (cz's vsock device thread, the benchmark's own reading)
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace cz::bench {

inline std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Seconds on a CPU and seconds runnable but waiting for one, of each thread of `pid`
// (/proc/PID/task/TID/schedstat: the first two fields, in nanoseconds).
struct thread_time {
    double cpu = 0, wait = 0;
};
inline std::map<std::string, thread_time> thread_times(pid_t pid) {
    std::map<std::string, thread_time> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream in(slurp(dir + "/" + e->d_name + "/schedstat"));
        double cpu = 0, wait = 0;
        in >> cpu >> wait;
        out[e->d_name] = {cpu / 1e9, wait / 1e9};
    }
    ::closedir(d);
    return out;
}

inline double total_cpu(const std::map<std::string, thread_time>& m) {
    double t = 0;
    for (auto& [tid, times] : m)
        t += times.cpu;
    return t;
}

// A QEMU that this process spawned: our child whose name starts with "qemu".
inline pid_t find_qemu() {
    DIR* d = ::opendir("/proc");
    pid_t found = 0;
    while (dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
        auto close = stat.rfind(')');
        auto open = stat.find('(');
        if (close == std::string::npos || open == std::string::npos) continue;
        std::string comm = stat.substr(open + 1, close - open - 1);
        int ppid = 0;
        char st = 0;
        if (std::sscanf(stat.c_str() + close + 1, " %c %d", &st, &ppid) != 2) continue;
        if (ppid == ::getpid() && comm.rfind("qemu", 0) == 0) found = pid;
    }
    ::closedir(d);
    if (found == 0) throw std::runtime_error("QEMU's process not found");
    return found;
}

// The split of CPU time at one moment; differences of two are what happened in between.
struct cpu_split {
    double vcpu = 0, vcpu_wait = 0, qemu_rest = 0, host = 0;

    cpu_split operator-(const cpu_split& o) const {
        return {vcpu - o.vcpu, vcpu_wait - o.vcpu_wait, qemu_rest - o.qemu_rest, host - o.host};
    }
};

// Samples the split of one QEMU with one vCPU, and of this process.
class qemu_cpu_meter {
public:
    // QEMU names its threads alike unless told otherwise; the vCPU thread (one CPU, TCG or KVM)
    // is the one that did nearly all the work of booting: make the meter once the guest is up.
    explicit qemu_cpu_meter(pid_t qemu) : qemu_(qemu) {
        double most = -1;
        for (auto& [tid, times] : thread_times(qemu_))
            if (times.cpu > most) most = times.cpu, vcpu_tid_ = tid;
    }

    cpu_split now() const {
        auto threads = thread_times(qemu_);
        cpu_split s;
        s.vcpu = threads[vcpu_tid_].cpu;
        s.vcpu_wait = threads[vcpu_tid_].wait;
        s.qemu_rest = total_cpu(threads) - s.vcpu;
        s.host = total_cpu(thread_times(::getpid()));
        return s;
    }

private:
    pid_t qemu_;
    std::string vcpu_tid_;
};

} // namespace cz::bench
