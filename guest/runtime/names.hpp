// guest/runtime/names.hpp — the names config.json uses for kernel values, and their numbers.
//
// Capabilities ("CAP_NET_RAW" -> 13, linux/capability.h), rlimits ("RLIMIT_NOFILE" -> 7,
// asm-generic/resource.h), mount options ("nosuid" -> MS_NOSUID, as runc's table), seccomp
// actions, operators and architectures (libseccomp's names). Lookups only: no I/O, no state.
#pragma once

#include "runtime/spec.hpp"

#include <optional>
#include <string_view>

namespace cz::guest {

// The highest capability number cz knows (CAP_CHECKPOINT_RESTORE, Linux 5.9).
inline constexpr int last_known_capability = 40;

std::optional<int> capability_from_name(std::string_view name);
std::string_view capability_name(int cap);

std::optional<int> rlimit_from_name(std::string_view name);

std::optional<namespace_kind> namespace_from_name(std::string_view name);

// How one mount option changes a mount: flags to set or clear, or a propagation type.
struct mount_option {
    unsigned long set = 0;
    unsigned long clear = 0;
    unsigned long propagation = 0;
};
// Known flag options; nullopt for the others, which go to mount(2) as data.
std::optional<mount_option> mount_option_from_name(std::string_view name);

std::optional<seccomp_action> seccomp_action_from_name(std::string_view name);
std::optional<seccomp_op> seccomp_op_from_name(std::string_view name);
bool known_seccomp_arch(std::string_view name);

} // namespace cz::guest
