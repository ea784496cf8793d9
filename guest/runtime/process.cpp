#include "runtime/process.hpp"

#include "runtime/capabilities.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/syscalls.hpp"
#include "runtime/terminal.hpp"
#include "runtime/user.hpp"

#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cz::guest {

namespace {

bool fail(error& err, const std::string& what) {
    err.set({errno, std::system_category()}, what);
    return false;
}

// The whole file, or false when it cannot be read; `missing` tells ENOENT from other failures.
// Capped: an image's /etc/passwd that is larger than this is not one.
bool read_text(const char* path, std::string& out, bool& missing) {
    constexpr std::size_t cap = 16 << 20;
    missing = false;
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        missing = errno == ENOENT || errno == ENOTDIR;
        return false;
    }
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < cap)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return n == 0 || out.size() >= cap;
}

bool resolve(const user_spec& spec, exec_user& out, error& err) {
    std::string passwd_text, group_text;
    bool passwd_missing = false, group_missing = false;
    if (!read_text("/etc/passwd", passwd_text, passwd_missing) && !passwd_missing)
        return fail(err, "read /etc/passwd");
    if (!read_text("/etc/group", group_text, group_missing) && !group_missing)
        return fail(err, "read /etc/group");
    auto passwd = parse_passwd(passwd_text);
    auto group = parse_group(group_text);
    // runc hands its user lookup "uid:gid" when the spec gives numbers: HOME comes from passwd,
    // and the groups are just the spec's.
    std::string who = spec.username.empty()
                          ? std::to_string(spec.uid) + ":" + std::to_string(spec.gid)
                          : spec.username;
    out = resolve_user(who, exec_user{}, passwd_missing ? nullptr : &passwd,
                       group_missing ? nullptr : &group, err);
    if (err) {
        err.message = "process.user: " + err.message;
        return false;
    }
    for (auto g : spec.additional_gids)
        out.supplementary_gids.push_back(g);
    return true;
}

bool mkdir_all(const std::string& path, error& err) {
    for (std::size_t i = 1; i <= path.size(); ++i) {
        if (i != path.size() && path[i] != '/') continue;
        std::string prefix = path.substr(0, i);
        if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
            return fail(err, "create cwd " + path);
    }
    return true;
}

bool set_user(const exec_user& u, error& err) {
    std::vector<gid_t> groups(u.supplementary_gids.begin(), u.supplementary_gids.end());
    if (sys::set_groups(groups.size(), groups.data()) != 0) return fail(err, "setgroups");
    if (sys::set_gid(u.gid) != 0) return fail(err, "setgid " + std::to_string(u.gid));
    if (sys::set_uid(u.uid) != 0) return fail(err, "setuid " + std::to_string(u.uid));
    return true;
}

std::string env_value(const std::vector<std::string>& env, std::string_view name) {
    for (const auto& e : env)
        if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
            return e.substr(name.size() + 1);
    return {};
}

bool has_env(const std::vector<std::string>& env, std::string_view name) {
    for (const auto& e : env)
        if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
            return true;
    return false;
}

// execve(2), with execvpe's lookup in the *container's* PATH (not cz-init's): a name without a
// slash is tried in each PATH directory; "not executable" from any of them wins over "not
// found", so a file that exists but cannot run reports 126, not 127.
void exec_program(const std::vector<std::string>& args, const std::vector<std::string>& env,
                  error& err) {
    std::vector<char*> argv, envp;
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const std::string& file = args[0];
    // Every fd cz-init opened closes at exec; only 0, 1 and 2 stay.
    sys::cloexec_from(3);
    if (file.find('/') != std::string::npos) {
        ::execve(file.c_str(), argv.data(), envp.data());
        fail(err, "exec \"" + file + "\"");
        err.exec_failed = true;
        return;
    }
    std::string path = env_value(env, "PATH");
    int seen = ENOENT;
    std::size_t i = 0;
    while (i <= path.size() && !path.empty()) {
        auto j = path.find(':', i);
        if (j == std::string::npos) j = path.size();
        std::string dir = j > i ? path.substr(i, j - i) : ".";
        std::string candidate = dir + "/" + file;
        ::execve(candidate.c_str(), argv.data(), envp.data());
        if (errno != ENOENT && errno != ENOTDIR) seen = errno;
        i = j + 1;
    }
    errno = seen;
    fail(err, "exec \"" + file + "\"" + (seen == ENOENT ? " (looked up in PATH)" : ""));
    err.exec_failed = true;
}

} // namespace

void finish_and_exec(const process_spec& p, const std::optional<seccomp_spec>& seccomp,
                     int report_sock, error& err) {
    ::umask(022);
    for (const auto& r : p.rlimits) {
        rlimit lim{static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
        // prlimit64 takes the resource as the plain int the spec gave.
        if (::syscall(SYS_prlimit64, 0, r.resource, &lim, nullptr) != 0) {
            fail(err, "process.rlimits: " + r.type);
            return;
        }
    }
    exec_user user;
    if (!resolve(p.user, user, err)) return;
    if (p.terminal && !setup_terminal(report_sock, user.uid, p.console, err)) return;
    // runc creates cwd as root, before the user changes, then enters it as the user.
    if (!mkdir_all(p.cwd, err)) return;
    if (p.capabilities) {
        if (!drop_bounding(p.capabilities->bounding, err)) return;
        if (!keep_capabilities(true, err)) return;
    }
    if (seccomp && !p.no_new_privileges && !load_seccomp(*seccomp, err)) return;
    if (!set_user(user, err)) return;
    if (p.capabilities) {
        if (!keep_capabilities(false, err)) return;
        if (!apply_capabilities(*p.capabilities, err)) return;
    }
    if (::chdir(p.cwd.c_str()) != 0) {
        fail(err, "chdir to process.cwd " + p.cwd);
        return;
    }
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fail(err, "PR_SET_NO_NEW_PRIVS");
        return;
    }
    if (seccomp && p.no_new_privileges && !load_seccomp(*seccomp, err)) return;
    std::vector<std::string> env = p.env;
    if (!has_env(env, "HOME")) env.push_back("HOME=" + user.home);
    exec_program(p.args, env, err);
}

int exec_failure_status(const error& err) {
    if (!err.exec_failed) return -1;
    if (err.code == std::errc::no_such_file_or_directory || err.code == std::errc::not_a_directory)
        return 127;
    return 126;
}

} // namespace cz::guest
