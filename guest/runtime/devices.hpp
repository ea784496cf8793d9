// guest/runtime/devices.hpp — the device nodes every container's /dev has.
//
// When a spec mounts a fresh tmpfs on /dev, runc fills it with the devices runtime-spec calls
// the default ones (null, zero, full, random, urandom, tty; mode 0666, owned by root) and the
// links /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr and /dev/ptmx -> pts/ptmx (so that opening
// /dev/ptmx reaches the container's own devpts instance). cz does the same.
#pragma once

#include "runtime/error.hpp"

#include <string>

namespace cz::guest {

// `dev` is the host path of the container's /dev, before pivot_root.
bool create_devices(const std::string& dev, error& err);

} // namespace cz::guest
