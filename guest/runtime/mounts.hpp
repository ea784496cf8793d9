// guest/runtime/mounts.hpp — the container's filesystem view, built in its new mount namespace.
//
// Order, as runc does it:
//   1. make every mount private, so nothing the container mounts leaks back to cz-init;
//   2. bind the root filesystem onto itself (pivot_root needs a mount point);
//   3. the spec's mounts, each target resolved inside the root filesystem (a symlink in the
//      image such as /proc -> /etc must not send a mount outside it), created when missing;
//   4. when /dev is a fresh tmpfs, the standard device nodes and links (devices.hpp);
//   5. pivot_root into it and detach the old root;
//   6. masked paths (/dev/null over files, an empty read-only tmpfs over directories),
//      read-only paths (read-only bind mounts onto themselves), then a read-only root if asked.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

#include <string>

namespace cz::guest {

// Steps 1-4; runs in the child before pivot_root.
bool prepare_rootfs(const runtime_spec& spec, error& err);

// Step 5.
bool pivot_into(const std::string& rootfs, error& err);

// Step 6; runs after pivot_root.
bool protect_paths(const runtime_spec& spec, error& err);

// Resolves `path` (absolute in the container) inside `rootfs` the way the kernel would if
// `rootfs` were "/" (symlinks, "..", all clamped to it), creating missing directories and, when
// `last_is_file`, an empty file as the last component. Returns the resolved host path.
// Safe without a race only while no container process runs yet, which is when it is used.
std::string resolve_in_root(const std::string& rootfs, const std::string& path, bool last_is_file,
                            error& err);

} // namespace cz::guest
