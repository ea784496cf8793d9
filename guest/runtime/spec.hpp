// guest/runtime/spec.hpp — the part of the OCI runtime-spec config.json that cz-init implements.
//
// The host sends each container's configuration as config.json bytes (runtime-spec 1.x). This
// header holds what cz-init acts on, already checked and converted to the values the kernel takes
// (capability numbers, rlimit resources, mount flags), so every mistake is found while parsing,
// with the JSON path in the message, and never halfway through setting up a container.
//
// As runc does, fields cz-init does not know are ignored; fields it knows must have the right
// type and a valid value. Parsing does no I/O.
//
// @par Example
//     cz::guest::error err;
//     auto spec = cz::guest::parse_spec(json_text, err);
//     if (err) log(err.message);   // "process.rlimits[1].type: unknown rlimit \"RLIMIT_FOO\""
#pragma once

#include "runtime/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::guest {

// process.user. `username` is cz's extension of the field (runtime-spec reserves it for
// Windows): when set, it is a user string ("alice", "1000", "alice:staff", "1000:50") resolved
// against the container's /etc/passwd and /etc/group, and uid/gid are ignored.
struct user_spec {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> additional_gids;
    std::string username;
};

struct console_size {
    std::uint16_t height = 0; // rows
    std::uint16_t width = 0;  // columns
};

struct rlimit_spec {
    int resource = 0; // RLIMIT_* number
    std::string type; // its name, for messages
    std::uint64_t soft = 0;
    std::uint64_t hard = 0;
};

// Capability sets as bit masks (bit n = capability n). A set the spec leaves out is empty, as
// in runc.
struct capability_spec {
    std::uint64_t bounding = 0;
    std::uint64_t effective = 0;
    std::uint64_t inheritable = 0;
    std::uint64_t permitted = 0;
    std::uint64_t ambient = 0;
};

struct process_spec {
    bool terminal = false;
    std::optional<console_size> console;
    user_spec user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd = "/";
    // Absent: capabilities are left as they are (a root process keeps all of them), as in runc.
    std::optional<capability_spec> capabilities;
    std::vector<rlimit_spec> rlimits;
    bool no_new_privileges = false;
};

struct root_spec {
    std::string path;
    bool readonly = false;
};

// One entry of `mounts`, with its options already split the way mount(2) takes them.
struct mount_spec {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
    unsigned long flags = 0;       // MS_RDONLY, MS_NOSUID, ... (MS_BIND, MS_REC for binds)
    unsigned long propagation = 0; // MS_PRIVATE, MS_SLAVE, ... with MS_REC, applied afterwards
    std::string data;              // options mount(2) does not know as flags: "mode=755", ...
    bool bind() const noexcept;
};

enum class namespace_kind { pid, network, mount, ipc, uts, user, cgroup, time };

struct namespace_spec {
    namespace_kind kind = namespace_kind::mount;
    std::string type; // its name in the spec, for messages
};

// linux.resources: the cgroup v2 limits cz-init sets. Absent means "leave unset".
struct resources_spec {
    std::optional<std::int64_t> memory_limit; // bytes; -1 = unlimited
    std::optional<std::int64_t> cpu_quota;    // microseconds per period; -1 = unlimited
    std::optional<std::uint64_t> cpu_period;  // microseconds
    std::optional<std::int64_t> pids_limit;   // -1 or 0 = unlimited (0 is "unset" in runc)
    bool empty() const noexcept {
        return !memory_limit && !cpu_quota && !cpu_period && !pids_limit;
    }
};

enum class seccomp_action { kill_thread, kill_process, trap, errno_ret, trace, allow, log };
enum class seccomp_op {
    not_equal,
    less_than,
    less_equal,
    equal,
    greater_equal,
    greater_than,
    masked_equal
};

struct seccomp_arg {
    unsigned index = 0;
    std::uint64_t value = 0;
    std::uint64_t value_two = 0;
    seccomp_op op = seccomp_op::equal;
};

struct seccomp_rule {
    std::vector<std::string> names;
    seccomp_action action = seccomp_action::allow;
    std::optional<std::uint32_t> errno_ret; // for errno_ret and trace; EPERM when unset
    std::vector<seccomp_arg> args;
};

struct seccomp_spec {
    seccomp_action default_action = seccomp_action::allow;
    std::optional<std::uint32_t> default_errno_ret;
    std::vector<std::string> architectures; // "SCMP_ARCH_X86_64", ...
    std::vector<seccomp_rule> syscalls;
};

struct runtime_spec {
    std::string oci_version;
    process_spec process;
    root_spec root;
    std::string hostname;
    std::vector<mount_spec> mounts;
    // From `linux`:
    std::vector<namespace_spec> namespaces;
    std::vector<std::string> masked_paths;
    std::vector<std::string> readonly_paths;
    resources_spec resources;
    std::optional<seccomp_spec> seccomp;

    bool has_namespace(namespace_kind k) const noexcept;
};

// Parses config.json. The error's message names the JSON path of the first bad value.
runtime_spec parse_spec(std::string_view json, error& err);
runtime_spec parse_spec(std::string_view json);

// Parses a `process` object alone (what an exec into a running container takes).
process_spec parse_process(std::string_view json, error& err);
process_spec parse_process(std::string_view json);

} // namespace cz::guest
