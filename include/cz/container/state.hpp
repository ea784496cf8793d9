// cz/container/state.hpp — detached containers on disk: one directory per container under
// <root>/containers/<id>/ (mode 0700), holding
//   state.json       what the container is and how it stands (container_state), replaced whole:
//                    written to a temporary file, synced and renamed, under state.lock
//   state.lock       flock'ed by whoever reads, changes and writes state.json
//   supervisor.lock  flock'ed by the container's supervisor for as long as it lives: a state that
//                    says "running" with this lock free is a supervisor that died (kill -9), and
//                    is reported, and recorded, as exited with the reason
//   control.sock     the supervisor's Unix socket (mode 0600, cz/container/control.hpp)
//   container.log    the container's output (cz/container/log.hpp), with rotated older files
// Names are unique: a new container's name is checked and its directory made under
// <root>/containers/.lock. A container is found by its id, its name, or a prefix of its id that
// no other id starts with (docker's rules).
//
// Example:
//   std::error_code ec;
//   std::string why;
//   auto c = cz::container::find_container(root, "web", ec, &why);
//   if (!ec) fmt::print("{} {}\n", c.id, cz::container::status_name(c.status));
#pragma once

#include <cz/container/error.hpp>
#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::container {

enum class container_status {
    created, // its supervisor is starting it
    running, // its process has started and not yet exited
    exited,  // its process exited, or it never started, or its supervisor died
};

// "created", "running", "exited".
CZ_DECL const char* status_name(container_status s) noexcept;

struct container_state {
    std::string id;   // 64 lowercase hex digits
    std::string name; // unique among the root's containers (valid_container_name)
    std::string image;
    // The process's argv as started (the image's entrypoint and command merged with the run's).
    std::vector<std::string> command;
    // Nanoseconds since the Unix epoch; 0: not yet.
    std::int64_t created = 0, started = 0, finished = 0;
    container_status status = container_status::created;
    int exit_code = 0; // valid when exited
    bool oom_killed = false;
    // Why it exited other than by its process's own exit, when it did (a start that failed, the
    // VM that ended, the supervisor that died); empty otherwise.
    std::string error;
    int supervisor_pid = 0;
    // Remove the directory once the container has exited (run --rm).
    bool auto_remove = false;
};

CZ_DECL std::string to_json(const container_state& s);
// errc::bad_state for text that is not a state, with `*detail` saying which field.
CZ_DECL container_state state_from_json(std::string_view text, std::error_code& ec,
                                        std::string* detail = nullptr);

// <root>/containers and <root>/containers/<id>.
CZ_DECL std::filesystem::path containers_dir(const std::filesystem::path& root);
CZ_DECL std::filesystem::path container_dir(const std::filesystem::path& root, std::string_view id);

// 64 random hex digits.
CZ_DECL std::string new_container_id();

// Nanoseconds since the epoch, now; and as RFC 3339 in UTC with nanoseconds
// ("2026-12-01T00:53:05.123456789Z").
CZ_DECL std::int64_t now_ns() noexcept;
CZ_DECL std::string format_time(std::int64_t ns);

// An flock held until destruction (the lock files above). Blocking unless `try_only`; then
// held() says whether it was had.
class file_lock {
public:
    file_lock() = default;
    file_lock(const std::filesystem::path& path, bool exclusive, bool try_only,
              std::error_code& ec);
    bool held() const noexcept { return fd_.valid(); }
    // The descriptor (close-on-exec), for a process that hands the lock to a child it forks.
    unique_fd release() noexcept { return std::move(fd_); }

private:
    unique_fd fd_;
};

// state.json of the container in `dir`, as written (no liveness check).
CZ_DECL container_state read_state(const std::filesystem::path& dir, std::error_code& ec,
                                   std::string* detail = nullptr);
// Replaces state.json in `dir` (tmp + fsync + rename). The caller holds state.lock.
CZ_DECL void write_state(const std::filesystem::path& dir, const container_state& s,
                         std::error_code& ec);
// Reads, changes (with `change`) and writes state.json under state.lock.
template <class Change>
container_state update_state(const std::filesystem::path& dir, Change change, std::error_code& ec,
                             std::string* detail = nullptr) {
    file_lock lock(dir / "state.lock", true, false, ec);
    if (ec) return {};
    auto s = read_state(dir, ec, detail);
    if (ec) return s;
    change(s);
    write_state(dir, s, ec);
    return s;
}

// Whether the supervisor of the container in `dir` still lives (holds supervisor.lock).
CZ_DECL bool supervisor_alive(const std::filesystem::path& dir);

// The container in `dir` as it stands: a created or running one whose supervisor is gone is
// recorded as exited (exit code 137, "the supervisor (pid N) died") and returned so.
CZ_DECL container_state load_container(const std::filesystem::path& dir, std::error_code& ec,
                                       std::string* detail = nullptr);

// Every container of the root, oldest first (load_container each; a directory without a state
// yet is skipped).
CZ_DECL std::vector<container_state> list_containers(const std::filesystem::path& root,
                                                     std::error_code& ec,
                                                     std::string* detail = nullptr);

// Which of `all` `ref` names: the one whose id or name it is, else the one whose id starts with
// it. errc::no_such_container, or errc::ambiguous_container with `*detail` listing the ids.
// Pure: unit-tested without a root.
CZ_DECL std::size_t match_container(const std::vector<container_state>& all, std::string_view ref,
                                    std::error_code& ec, std::string* detail = nullptr);

// The container `ref` names (as match_container) under `root`, as load_container has it.
CZ_DECL container_state find_container(const std::filesystem::path& root, std::string_view ref,
                                       std::error_code& ec, std::string* detail = nullptr);

// A new container's directory and state (status created, `s.id` and `s.name` as given; an
// empty name becomes the id's first 12 digits): errc::name_in_use when another container has
// the name. Returns supervisor.lock, locked: whoever supervises the container holds it.
CZ_DECL unique_fd create_container(const std::filesystem::path& root, container_state& s,
                                   std::error_code& ec, std::string* detail = nullptr);

// Removes the container's directory: errc::still_running when its supervisor lives (the caller
// stops it first when forced).
CZ_DECL void remove_container(const std::filesystem::path& root, const container_state& s,
                              std::error_code& ec);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/state.ipp>
#endif
