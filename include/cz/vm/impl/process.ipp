// Out-of-line definitions for cz/vm/process.hpp.
#pragma once

#include <cz/vm/process.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace cz::vm {
namespace detail {
// CLOSE_RANGE_CLOEXEC from <linux/close_range.h> (Linux 5.11).
inline constexpr unsigned close_range_cloexec = 1u << 2;
} // namespace detail

CZ_DECL std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    const char* path = std::getenv("PATH");
    std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    while (true) {
        auto colon = dirs.find(':');
        auto dir = dirs.substr(0, colon);
        std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (colon == std::string_view::npos) return {};
        dirs.remove_prefix(colon + 1);
    }
}

CZ_DECL child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)),
      exit_(std::move(other.exit_)) {}

CZ_DECL child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        reset();
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        exit_ = std::move(other.exit_);
    }
    return *this;
}

CZ_DECL child_process::~child_process() { reset(); }

CZ_DECL void child_process::reset() noexcept {
    if (running()) {
        std::error_code ec;
        kill(SIGKILL, ec);
        wait(ec);
    }
    pid_ = -1;
    pidfd_.reset();
    exit_.reset();
}

CZ_DECL child_process child_process::spawn(const spawn_options& opts, std::error_code& ec) {
    child_process child;
    if (opts.argv.empty()) {
        ec = errc::invalid_config;
        return child;
    }
    // Everything the child needs is prepared before fork: after fork, in a process that may have
    // threads, only async-signal-safe calls are allowed.
    std::string program = find_program(opts.argv[0]);
    if (program.empty()) {
        ec = errc::vmm_not_found;
        return child;
    }
    std::vector<char*> argv;
    for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (int fd : opts.keep_fds)
        if (fd <= 2) {
            ec = errc::invalid_config;
            return child;
        }
    unique_fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    int report[2];
    if (!devnull || ::pipe2(report, O_CLOEXEC) != 0) {
        ec = last_system_error();
        return child;
    }
    unique_fd report_read(report[0]), report_write(report[1]);
    int stdio[3] = {opts.stdin_fd >= 0 ? opts.stdin_fd : devnull.get(),
                    opts.stdout_fd >= 0 ? opts.stdout_fd : devnull.get(),
                    opts.stderr_fd >= 0 ? opts.stderr_fd : devnull.get()};
    pid_t parent = ::getpid();
    std::vector<const char*> read_only;
    for (const auto& d : opts.read_only_dirs) read_only.push_back(d.c_str());

    pid_t pid = ::fork();
    if (pid < 0) {
        ec = last_system_error();
        return child;
    }
    if (pid == 0) {
        // Child: async-signal-safe calls only.
        auto fail = [&](int err) {
            ssize_t ignored = ::write(report_write.get(), &err, sizeof err);
            (void)ignored;
            ::_exit(127);
        };
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
        // The parent may have died between fork and prctl; then nobody would ever kill us.
        if (::getppid() != parent) ::_exit(127);
        sigset_t all;
        ::sigemptyset(&all);
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
        if (!read_only.empty()) {
            // Private, so that nothing here reaches the parent's namespace.
            if (::unshare(CLONE_NEWNS) != 0 ||
                ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
                fail(errno);
            for (const char* dir : read_only) {
                if (::mount(dir, dir, nullptr, MS_BIND | MS_REC, nullptr) != 0) fail(errno);
                // A bind remount keeps only the flags it is given: keep nosuid, nodev, noexec.
                struct statvfs st {};
                unsigned long keep = 0;
                if (::statvfs(dir, &st) == 0) {
                    if (st.f_flag & ST_NOSUID) keep |= MS_NOSUID;
                    if (st.f_flag & ST_NODEV) keep |= MS_NODEV;
                    if (st.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
                }
                if (::mount(nullptr, dir, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
                            nullptr) != 0)
                    fail(errno);
            }
        }
        // Move the stdio sources above 2 first, so dup2 never clobbers one with another.
        int moved[3];
        for (int i = 0; i < 3; ++i)
            if ((moved[i] = ::fcntl(stdio[i], F_DUPFD_CLOEXEC, 3)) < 0) fail(errno);
        for (int i = 0; i < 3; ++i)
            if (::dup2(moved[i], i) < 0) fail(errno);
        // Whatever this process inherited without O_CLOEXEC from its own parent must not reach
        // the child either: mark every fd above 2 close-on-exec, then un-mark the kept ones.
        if (::syscall(SYS_close_range, 3u, ~0u, detail::close_range_cloexec) != 0)
            for (int fd = 3; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        for (int fd : opts.keep_fds)
            if (::fcntl(fd, F_SETFD, 0) != 0) fail(errno);
        ::execve(program.c_str(), argv.data(), environ);
        fail(errno);
    }

    child.pid_ = pid;
    report_write.reset();
    int err = 0;
    ssize_t n;
    do {
        n = ::read(report_read.get(), &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof err)) {
        std::error_code ignored;
        child.wait(ignored);
        ec = err == ENOENT || err == EACCES || err == ENOEXEC ? make_error_code(errc::vmm_not_found)
                                                              : std::error_code(err, std::system_category());
        return child_process{};
    }
    child.pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!child.pidfd_) {
        ec = last_system_error();
        return child_process{}; // the destructor of `child` kills and reaps
    }
    return child;
}

CZ_DECL void child_process::kill(int signal, std::error_code& ec) noexcept {
    if (!running()) {
        ec = errc::not_running;
        return;
    }
    // The pid cannot have been recycled: we have not reaped it, so it is at worst a zombie.
    if (::kill(pid_, signal) != 0) ec = last_system_error();
}

CZ_DECL bool child_process::try_reap(std::error_code& ec) noexcept {
    if (exit_) return true;
    if (pid_ <= 0) {
        ec = errc::not_running;
        return false;
    }
    siginfo_t info{};
    int rc;
    do {
        rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        ec = last_system_error();
        return false;
    }
    if (info.si_pid == 0) return false;
    process_exit e;
    e.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    e.code = info.si_status;
    exit_ = e;
    return true;
}

CZ_DECL process_exit child_process::wait(std::error_code& ec) noexcept {
    if (exit_) return *exit_;
    if (pid_ <= 0) {
        ec = errc::not_running;
        return {};
    }
    siginfo_t info{};
    int rc;
    do {
        rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        ec = last_system_error();
        return {};
    }
    process_exit e;
    e.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    e.code = info.si_status;
    exit_ = e;
    return e;
}

} // namespace cz::vm
