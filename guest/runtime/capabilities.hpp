// guest/runtime/capabilities.hpp — a process's five capability sets, without libcap.
//
// libcap is not needed for five system calls, and Debian's libcap-dev static library would be
// one more thing in cz-init. The order matters and is runc's:
//   before the uid change: drop_bounding() (needs CAP_SETPCAP) and keep_capabilities(true), so
//     that setuid() to a non-root user does not clear the permitted set;
//   after it: keep_capabilities(false), then apply_capabilities(): capset() for effective,
//     permitted and inheritable, then the ambient set (each one must already be permitted and
//     inheritable).
// Capabilities above the running kernel's last one are skipped, as runc does, so a spec written
// for a newer kernel still runs.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

namespace cz::guest {

// The highest capability number the running kernel knows.
int last_capability();

bool drop_bounding(std::uint64_t keep, error& err);
bool keep_capabilities(bool on, error& err);
bool apply_capabilities(const capability_spec& caps, error& err);

} // namespace cz::guest
