// cz/container/spec.hpp — from an image's config and the caller's options to the OCI runtime
// spec (config.json) that cz-init runs, merged the way `docker run` merges them.
//
// The rules (docker's):
//   - command: the entrypoint (the caller's, else the image's) followed by the arguments (the
//     caller's, else the image's Cmd — but not when the caller replaced the entrypoint);
//   - environment: the image's, then the caller's, a later entry replacing an earlier one of the
//     same name; PATH gets docker's default when neither sets it, TERM=xterm with a terminal;
//   - working directory: the caller's, else the image's, else "/" (cz-init creates it);
//   - user: the caller's, else the image's, as a user string ("alice", "1000:50") that cz-init
//     resolves against the container's /etc/passwd and /etc/group; root when both are empty.
// The rest is what docker gives every container: /proc, /dev with its pts and shm, /sys
// read-only, docker's default capabilities, its masked and read-only /proc paths, and pid, mount,
// ipc and uts namespaces (the network is the VM's own).
//
// Pure functions, no I/O: the unit tests check every rule.
#pragma once

#include <cz/container/error.hpp>
#include <cz/core/config.hpp>
#include <cz/oci/types.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::container {

// Where cz-init mounts the image (read-only, under an overlay with a writable upper layer): the
// root of every container it runs (cz-init's cz.rootfs= option).
inline constexpr const char* guest_rootfs_path = "/run/cz/rootfs/merged";

// docker's PATH for images that set none.
inline constexpr const char* default_path =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// A mount the caller adds to the container (a volume: cz/container/volume.hpp), after docker's
// defaults, as an OCI spec mount: cz-init mounts `source` of `type` at `destination` (inside the
// container's root, creating it there) with `options` ("ro", or file-system data).
struct spec_mount {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
};

// What the caller of a run says about the container's process, over the image's config.
// A resource limit of the container's process (setrlimit(2)), as docker's --ulimit gives it.
struct rlimit_option {
    std::string type; // the OCI spec's name: "RLIMIT_NOFILE"
    std::uint64_t soft = 0, hard = 0;
};

// The value RLIM_INFINITY, which "unlimited" and -1 give.
inline constexpr std::uint64_t rlimit_unlimited = ~std::uint64_t{0};

// docker's --ulimit NAME=SOFT[:HARD] (nofile=1024:4096, core=0, stack=unlimited): NAME one of
// as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio,
// rttime, sigpending, stack; a value a number, -1 or "unlimited"; HARD defaults to SOFT and may
// not be below it. errc::bad_option otherwise, with `*detail` saying what is wrong.
CZ_DECL rlimit_option parse_ulimit(std::string_view text, std::error_code& ec,
                                   std::string* detail = nullptr);

struct spec_options {
    // Replaces the image's Entrypoint (an empty vector clears it); absent: the image's.
    std::optional<std::vector<std::string>> entrypoint;
    // The arguments after the image name; empty: the image's Cmd.
    std::vector<std::string> args;
    // "NAME=value" entries, in order, over the image's Env.
    std::vector<std::string> env;
    std::string working_dir;
    std::string user;
    std::string hostname;
    bool terminal = false;
    // The terminal's size when there is one (0: cz-init's default).
    std::uint16_t rows = 0, columns = 0;
    bool read_only = false;
    // cgroup limits: bytes of memory, CPUs (1.5 = one and a half), pids.
    std::optional<std::int64_t> memory_limit;
    std::optional<double> cpus;
    std::optional<std::int64_t> pids_limit;
    // Resource limits; a later one of the same type replaces an earlier one.
    std::vector<rlimit_option> rlimits;
    // Mounts after docker's defaults (a destination must be absolute and not "/").
    std::vector<spec_mount> mounts;
};

// The process's argv: the entrypoint and arguments as docker merges them. errc::no_command when
// it is empty.
CZ_DECL std::vector<std::string> merge_command(const oci::container_config& image,
                                               const spec_options& opts, std::error_code& ec);

// The environment: the image's, the caller's over it, the defaults. errc::bad_option for an
// entry without a name ("=x", ""), with `*detail` naming it.
CZ_DECL std::vector<std::string> merge_env(const oci::container_config& image,
                                           const spec_options& opts, std::error_code& ec,
                                           std::string* detail = nullptr);

// The whole config.json for cz-init. Errors as merge_command and merge_env, and errc::bad_option
// for a hostname cz-init would refuse, a limit out of range or a mount whose destination is not
// an absolute path other than "/".
CZ_DECL std::string make_runtime_spec(const oci::container_config& image, const spec_options& opts,
                                      std::error_code& ec, std::string* detail = nullptr);

// "NAME=value" as docker's -e takes it: "NAME" alone takes the value from `lookup` (the host's
// environment), and is left out when that has none. Returns false when there is nothing to add.
template <class Lookup>
bool expand_env_option(const std::string& option, Lookup lookup, std::string& out) {
    if (option.find('=') != std::string::npos) {
        out = option;
        return true;
    }
    const char* value = lookup(option);
    if (value == nullptr) return false;
    out = option + "=" + value;
    return true;
}

// The lines of a docker env file (--env-file): "NAME=value" or "NAME" (from `lookup`), blank
// lines and lines starting with '#' skipped. errc::bad_option for a line whose name is empty or
// has whitespace, with `*detail` saying which line.
template <class Lookup>
std::vector<std::string> parse_env_file(std::string_view text, Lookup lookup, std::error_code& ec,
                                        std::string* detail = nullptr) {
    ec.clear();
    std::vector<std::string> out;
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++line_no;
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        auto name = line.substr(0, line.find('='));
        if (name.empty() || name.find_first_of(" \t") != std::string_view::npos) {
            ec = make_error_code(errc::bad_option);
            if (detail) *detail = "line " + std::to_string(line_no) + ": no variable name";
            return {};
        }
        std::string entry;
        if (expand_env_option(std::string(line), lookup, entry)) out.push_back(std::move(entry));
    }
    return out;
}

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/spec.ipp>
#endif
