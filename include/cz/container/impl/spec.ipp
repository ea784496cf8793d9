// Out-of-line definitions for cz/container/spec.hpp.
#pragma once

#include <cz/container/spec.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

namespace cz::container {

namespace detail {

inline std::string_view env_name(std::string_view entry) {
    return entry.substr(0, entry.find('='));
}

// Sets `entry` in `env`, replacing an entry of the same name where it is.
inline void set_env(std::vector<std::string>& env, std::string entry) {
    auto name = env_name(entry);
    for (auto& e : env)
        if (env_name(e) == name) {
            e = std::move(entry);
            return;
        }
    env.push_back(std::move(entry));
}

inline bool has_env(const std::vector<std::string>& env, std::string_view name) {
    for (const auto& e : env)
        if (env_name(e) == name) return true;
    return false;
}

inline void fail(std::error_code& ec, std::string* detail, std::string what) {
    ec = make_error_code(errc::bad_option);
    if (detail) *detail = std::move(what);
}

// docker's default capabilities (moby's oci/caps/defaults.go).
inline nlohmann::json default_capabilities() {
    return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
            "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
            "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
            "CAP_KILL",    "CAP_AUDIT_WRITE"};
}

inline nlohmann::json default_mounts() {
    return nlohmann::json::array({
        {{"destination", "/proc"},
         {"type", "proc"},
         {"source", "proc"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/sys/fs/cgroup"},
         {"type", "cgroup2"},
         {"source", "cgroup"},
         {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
    });
}

} // namespace detail

CZ_DECL std::vector<std::string> merge_command(const oci::container_config& image,
                                               const spec_options& opts, std::error_code& ec) {
    ec.clear();
    std::vector<std::string> argv;
    if (opts.entrypoint) {
        argv = *opts.entrypoint;
        // A new entrypoint resets the image's Cmd, as in docker.
        argv.insert(argv.end(), opts.args.begin(), opts.args.end());
    } else {
        if (image.entrypoint) argv = *image.entrypoint;
        if (!opts.args.empty())
            argv.insert(argv.end(), opts.args.begin(), opts.args.end());
        else if (image.cmd)
            argv.insert(argv.end(), image.cmd->begin(), image.cmd->end());
    }
    if (argv.empty()) ec = make_error_code(errc::no_command);
    return argv;
}

CZ_DECL std::vector<std::string> merge_env(const oci::container_config& image,
                                           const spec_options& opts, std::error_code& ec,
                                           std::string* detail) {
    ec.clear();
    std::vector<std::string> env;
    for (const auto& e : image.env)
        detail::set_env(env, e);
    for (const auto& e : opts.env) {
        if (detail::env_name(e).empty() || e.find('=') == std::string::npos) {
            detail::fail(ec, detail, "environment entry \"" + e + "\" is not NAME=value");
            return {};
        }
        detail::set_env(env, e);
    }
    if (!detail::has_env(env, "PATH")) env.insert(env.begin(), default_path);
    if (opts.terminal && !detail::has_env(env, "TERM")) env.push_back("TERM=xterm");
    if (!opts.hostname.empty() && !detail::has_env(env, "HOSTNAME"))
        env.push_back("HOSTNAME=" + opts.hostname);
    return env;
}

CZ_DECL rlimit_option parse_ulimit(std::string_view text, std::error_code& ec,
                                   std::string* detail) {
    ec.clear();
    static constexpr std::string_view names[] = {
        "as",   "core",   "cpu",   "data", "fsize",  "locks",  "memlock",    "msgqueue",
        "nice", "nofile", "nproc", "rss",  "rtprio", "rttime", "sigpending", "stack"};
    rlimit_option r;
    auto bad = [&](std::string why) {
        detail::fail(ec, detail, "ulimit \"" + std::string(text) + "\": " + why);
        return rlimit_option{};
    };
    auto eq = text.find('=');
    if (eq == std::string_view::npos) return bad("not NAME=SOFT[:HARD]");
    auto name = text.substr(0, eq);
    if (std::find(std::begin(names), std::end(names), name) == std::end(names))
        return bad("unknown limit \"" + std::string(name) + "\"");
    auto value = [](std::string_view v, std::uint64_t& out) {
        if (v == "-1" || v == "unlimited") {
            out = rlimit_unlimited;
            return true;
        }
        auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), out);
        return !v.empty() && err == std::errc() && end == v.data() + v.size();
    };
    auto values = text.substr(eq + 1);
    auto colon = values.find(':');
    if (!value(values.substr(0, colon), r.soft)) return bad("the soft limit is not a number");
    r.hard = r.soft;
    if (colon != std::string_view::npos && !value(values.substr(colon + 1), r.hard))
        return bad("the hard limit is not a number");
    if (r.soft > r.hard) return bad("the soft limit is above the hard limit");
    r.type = "RLIMIT_";
    for (char c : name)
        r.type += static_cast<char>(c - 'a' + 'A');
    return r;
}

CZ_DECL std::string make_runtime_spec(const oci::container_config& image, const spec_options& opts,
                                      std::error_code& ec, std::string* detail) {
    auto argv = merge_command(image, opts, ec);
    if (ec) return {};
    auto env = merge_env(image, opts, ec, detail);
    if (ec) return {};
    if (opts.hostname.size() > 64 || opts.hostname.find('/') != std::string::npos) {
        detail::fail(ec, detail, "hostname \"" + opts.hostname + "\" (at most 64 characters)");
        return {};
    }
    std::string cwd = !opts.working_dir.empty()    ? opts.working_dir
                      : !image.working_dir.empty() ? image.working_dir
                                                   : "/";
    if (cwd.front() != '/') {
        detail::fail(ec, detail, "working directory \"" + cwd + "\" is not an absolute path");
        return {};
    }
    const std::string& user = !opts.user.empty() ? opts.user : image.user;

    nlohmann::json process = {
        {"terminal", opts.terminal},
        {"args", argv},
        {"env", env},
        {"cwd", cwd},
        {"capabilities",
         {{"bounding", detail::default_capabilities()},
          {"effective", detail::default_capabilities()},
          {"permitted", detail::default_capabilities()}}},
    };
    if (user.empty())
        process["user"] = {{"uid", 0}, {"gid", 0}};
    else
        process["user"] = {{"uid", 0}, {"gid", 0}, {"username", user}};
    if (opts.terminal && opts.rows > 0 && opts.columns > 0)
        process["consoleSize"] = {{"height", opts.rows}, {"width", opts.columns}};
    if (!opts.rlimits.empty()) {
        std::vector<const rlimit_option*> last; // one per type, the last given
        for (const auto& r : opts.rlimits) {
            auto same = std::find_if(last.begin(), last.end(),
                                     [&](const rlimit_option* l) { return l->type == r.type; });
            if (same != last.end())
                *same = &r;
            else
                last.push_back(&r);
        }
        auto& rlimits = process["rlimits"] = nlohmann::json::array();
        for (const auto* r : last)
            rlimits.push_back({{"type", r->type}, {"soft", r->soft}, {"hard", r->hard}});
    }

    nlohmann::json resources = nlohmann::json::object();
    if (opts.memory_limit) {
        // Below this the kernel OOM-kills the shell before it runs anything.
        if (*opts.memory_limit < (6 << 20)) {
            detail::fail(ec, detail, "memory limit below 6 MiB");
            return {};
        }
        resources["memory"] = {{"limit", *opts.memory_limit}};
    }
    if (opts.cpus) {
        if (!(*opts.cpus >= 0.01) || *opts.cpus > 1024) {
            detail::fail(ec, detail, "cpus must be between 0.01 and 1024");
            return {};
        }
        constexpr std::int64_t period = 100000;
        resources["cpu"] = {
            {"period", period},
            {"quota", static_cast<std::int64_t>(std::llround(*opts.cpus * period))}};
    }
    if (opts.pids_limit) resources["pids"] = {{"limit", *opts.pids_limit}};

    auto mounts = detail::default_mounts();
    for (const auto& m : opts.mounts) {
        if (m.destination.empty() || m.destination.front() != '/' || m.destination == "/") {
            detail::fail(ec, detail,
                         "mount destination \"" + m.destination + "\" is not an absolute path "
                         "below /");
            return {};
        }
        nlohmann::json j = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
        if (!m.options.empty()) j["options"] = m.options;
        mounts.push_back(std::move(j));
    }

    nlohmann::json spec = {
        {"ociVersion", "1.0.2"},
        {"process", process},
        {"root", {{"path", guest_rootfs_path}, {"readonly", opts.read_only}}},
        {"hostname", opts.hostname},
        {"mounts", mounts},
        {"linux",
         {{"namespaces",
           {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "ipc"}}, {{"type", "uts"}}}},
          {"resources", resources},
          {"maskedPaths",
           {"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/sys/firmware"}},
          {"readonlyPaths",
           {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
    };
    return spec.dump();
}

} // namespace cz::container
