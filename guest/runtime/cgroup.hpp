// guest/runtime/cgroup.hpp — one cgroup v2 directory per container, with its limits.
//
// The caller names a cgroup root (cz-init uses one under /sys/fs/cgroup); each container gets
// <root>/<name>, with the controllers its limits need enabled in the root's
// cgroup.subtree_control, and memory.max, cpu.max ("<quota> <period>"), pids.max written before
// any process joins. The container's first process is born in it (clone3 CLONE_INTO_CGROUP), so
// there is no moment when it runs unlimited, and its cgroup namespace makes it see that
// directory as the root of /sys/fs/cgroup.
//
// A limit whose controller is not available (cgroup v1 hosts, no delegation) is an error:
// cz-init never silently runs a container without the limits it was given.
//
// Reading a cgroup back: its interface files are text (cgroup-v2.rst, "Interface Files"), such
// as the flat keyed memory.events ("oom_kill 2\n": a key and a number a line). The parsers below
// take the text and do no I/O; read_cgroup_file() does the reading.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

#include <cz/core/unique_fd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cz::guest {

struct cgroup {
    std::string path;
    unique_fd dir; // O_DIRECTORY, for CLONE_INTO_CGROUP
};

// The cgroup v2 controllers `resources` needs ("memory", "cpu", "pids"), space-separated.
std::string needed_controllers(const resources_spec& resources);

// Checks that `root` is on cgroup v2 and offers every controller in `controllers`; fills `err`
// (errc::cgroup_unavailable, naming what is missing) when not.
bool check_cgroup_root(const std::string& root, const std::string& controllers, error& err);

// `name` must be a single path component (a container id), not "." or "..".
bool create_cgroup(const std::string& root, const std::string& name,
                   const resources_spec& resources, cgroup& out, error& err);

// Removes the directory; the cgroup must have no processes left.
bool remove_cgroup(const std::string& path, error& err);

// The value of `key` in a flat keyed file's text ("key value" a line); nullopt when the key is
// not there or its value is no unsigned decimal number.
std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key);

// Reads `<cgroup_path>/<file>` whole into `out` (interface files are small: at most 64 KiB is
// read); false with `err` naming the file when it cannot be read (a controller that is not
// enabled has no files).
bool read_cgroup_file(const std::string& cgroup_path, const char* file, std::string& out,
                      error& err);

// memory.events' oom_kill of the cgroup at `cgroup_path`: how many of its processes the kernel's
// OOM killer has killed. 0 when the file cannot be read (no memory controller).
std::uint64_t oom_kill_count(const std::string& cgroup_path);

} // namespace cz::guest
