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
// Reading a cgroup back: its interface files are text (cgroup-v2.rst, "Interface Files"): flat
// keyed ones ("oom_kill 2\n": a key and a number a line: memory.events, memory.stat, cpu.stat),
// single values ("123\n", or "max\n" for no limit: memory.max, pids.max), nested keyed ones
// ("254:0 rbytes=1 wbytes=2 ...\n": io.stat). The parsers below take the text and do no I/O;
// read_cgroup_file() and read_cgroup_statistics() do the reading.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

#include <cz/core/unique_fd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// A single-value file's text: the number, or `when_max` for "max"; nullopt for anything else.
std::optional<std::uint64_t> single_value(std::string_view text, std::uint64_t when_max = 0);

// One line of io.stat: a device and the figures cz reports of it.
struct io_stat_line {
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    std::uint64_t rbytes = 0;
    std::uint64_t wbytes = 0;
    std::uint64_t rios = 0;
    std::uint64_t wios = 0;
};

// io.stat's text, a line per device. Keys it does not know (dbytes, dios) are skipped; a line
// that does not start with "major:minor" is left out.
std::vector<io_stat_line> parse_io_stat(std::string_view text);

// Reads `<cgroup_path>/<file>` whole into `out` (interface files are small: at most 64 KiB is
// read); false with `err` naming the file when it cannot be read (a controller that is not
// enabled has no files).
bool read_cgroup_file(const std::string& cgroup_path, const char* file, std::string& out,
                      error& err);

// memory.events' oom_kill of the cgroup at `cgroup_path`: how many of its processes the kernel's
// OOM killer has killed. 0 when the file cannot be read (no memory controller).
std::uint64_t oom_kill_count(const std::string& cgroup_path);
// The same from `memory_events`, that file kept open (read again from its start: every read of
// an interface file from offset 0 is the current content). Cheaper where every process exit
// asks: no path to resolve, no open and close.
std::uint64_t oom_kill_count(int memory_events);

// What Statistics reports of a cgroup. A controller that is not enabled has no files: its
// figures stay 0 and its has_ flag false. Limits of "max" are 0.
struct cgroup_statistics {
    bool has_memory = false; // memory.current was read
    std::uint64_t memory_current = 0, memory_max = 0, swap_current = 0;
    std::uint64_t anon = 0, file = 0;                                   // memory.stat
    std::uint64_t high_events = 0, max_events = 0, oom_events = 0;      // memory.events
    std::uint64_t oom_kill_events = 0;                                  // memory.events
    bool has_cpu = false;                                               // cpu.stat was read
    std::uint64_t usage_usec = 0, user_usec = 0, system_usec = 0;       // always there
    std::uint64_t nr_periods = 0, nr_throttled = 0, throttled_usec = 0; // with the cpu controller
    bool has_pids = false;                                              // pids.current was read
    std::uint64_t pids_current = 0, pids_max = 0;
    std::vector<io_stat_line> io;
};

cgroup_statistics read_cgroup_statistics(const std::string& cgroup_path);

} // namespace cz::guest
