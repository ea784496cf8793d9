#include "runtime/names.hpp"

#include <array>
#include <sys/mount.h>
#include <sys/resource.h>
#include <utility>

namespace cz::guest {

namespace {

// Indexed by capability number (linux/capability.h).
constexpr std::array<std::string_view, last_known_capability + 1> capability_names = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

constexpr std::pair<std::string_view, int> rlimit_names[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

constexpr std::pair<std::string_view, namespace_kind> namespace_names[] = {
    {"pid", namespace_kind::pid},       {"network", namespace_kind::network},
    {"mount", namespace_kind::mount},   {"ipc", namespace_kind::ipc},
    {"uts", namespace_kind::uts},       {"user", namespace_kind::user},
    {"cgroup", namespace_kind::cgroup}, {"time", namespace_kind::time},
};

// runc's mount option table (libcontainer/specconv). Options not here are data for the
// filesystem ("mode=755", "size=65536k", "newinstance", ...).
constexpr std::pair<std::string_view, mount_option> mount_options[] = {
    {"async", {0, MS_SYNCHRONOUS, 0}},
    {"atime", {0, MS_NOATIME, 0}},
    {"bind", {MS_BIND, 0, 0}},
    {"defaults", {0, 0, 0}},
    {"dev", {0, MS_NODEV, 0}},
    {"diratime", {0, MS_NODIRATIME, 0}},
    {"dirsync", {MS_DIRSYNC, 0, 0}},
    {"exec", {0, MS_NOEXEC, 0}},
    {"mand", {MS_MANDLOCK, 0, 0}},
    {"noatime", {MS_NOATIME, 0, 0}},
    {"nodev", {MS_NODEV, 0, 0}},
    {"nodiratime", {MS_NODIRATIME, 0, 0}},
    {"noexec", {MS_NOEXEC, 0, 0}},
    {"nomand", {0, MS_MANDLOCK, 0}},
    {"norelatime", {0, MS_RELATIME, 0}},
    {"nostrictatime", {0, MS_STRICTATIME, 0}},
    {"nosuid", {MS_NOSUID, 0, 0}},
    {"rbind", {MS_BIND | MS_REC, 0, 0}},
    {"relatime", {MS_RELATIME, 0, 0}},
    {"remount", {MS_REMOUNT, 0, 0}},
    {"ro", {MS_RDONLY, 0, 0}},
    {"rw", {0, MS_RDONLY, 0}},
    {"strictatime", {MS_STRICTATIME, 0, 0}},
    {"suid", {0, MS_NOSUID, 0}},
    {"sync", {MS_SYNCHRONOUS, 0, 0}},
    {"private", {0, 0, MS_PRIVATE}},
    {"rprivate", {0, 0, MS_PRIVATE | MS_REC}},
    {"shared", {0, 0, MS_SHARED}},
    {"rshared", {0, 0, MS_SHARED | MS_REC}},
    {"slave", {0, 0, MS_SLAVE}},
    {"rslave", {0, 0, MS_SLAVE | MS_REC}},
    {"unbindable", {0, 0, MS_UNBINDABLE}},
    {"runbindable", {0, 0, MS_UNBINDABLE | MS_REC}},
};

constexpr std::pair<std::string_view, seccomp_action> seccomp_actions[] = {
    {"SCMP_ACT_KILL", seccomp_action::kill_thread},
    {"SCMP_ACT_KILL_THREAD", seccomp_action::kill_thread},
    {"SCMP_ACT_KILL_PROCESS", seccomp_action::kill_process},
    {"SCMP_ACT_TRAP", seccomp_action::trap},
    {"SCMP_ACT_ERRNO", seccomp_action::errno_ret},
    {"SCMP_ACT_TRACE", seccomp_action::trace},
    {"SCMP_ACT_ALLOW", seccomp_action::allow},
    {"SCMP_ACT_LOG", seccomp_action::log},
};

constexpr std::pair<std::string_view, seccomp_op> seccomp_ops[] = {
    {"SCMP_CMP_NE", seccomp_op::not_equal},           {"SCMP_CMP_LT", seccomp_op::less_than},
    {"SCMP_CMP_LE", seccomp_op::less_equal},          {"SCMP_CMP_EQ", seccomp_op::equal},
    {"SCMP_CMP_GE", seccomp_op::greater_equal},       {"SCMP_CMP_GT", seccomp_op::greater_than},
    {"SCMP_CMP_MASKED_EQ", seccomp_op::masked_equal},
};

// The architectures runtime-spec lists (libseccomp's names).
constexpr std::string_view seccomp_archs[] = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
};

template <class T, std::size_t N>
std::optional<T> find(const std::pair<std::string_view, T> (&table)[N], std::string_view name) {
    for (const auto& [n, v] : table)
        if (n == name) return v;
    return std::nullopt;
}

} // namespace

std::optional<int> capability_from_name(std::string_view name) {
    for (std::size_t i = 0; i < capability_names.size(); ++i)
        if (capability_names[i] == name) return static_cast<int>(i);
    return std::nullopt;
}

std::string_view capability_name(int cap) {
    if (cap < 0 || cap > last_known_capability) return "CAP_UNKNOWN";
    return capability_names[static_cast<std::size_t>(cap)];
}

std::optional<int> rlimit_from_name(std::string_view name) {
    return find(rlimit_names, name);
}

std::optional<namespace_kind> namespace_from_name(std::string_view name) {
    return find(namespace_names, name);
}

std::optional<mount_option> mount_option_from_name(std::string_view name) {
    return find(mount_options, name);
}

std::optional<seccomp_action> seccomp_action_from_name(std::string_view name) {
    return find(seccomp_actions, name);
}

std::optional<seccomp_op> seccomp_op_from_name(std::string_view name) {
    return find(seccomp_ops, name);
}

bool known_seccomp_arch(std::string_view name) {
    for (auto a : seccomp_archs)
        if (a == name) return true;
    return false;
}

} // namespace cz::guest
