// Out-of-line definitions for cz/container/state.hpp.
#pragma once

#include <cz/container/run.hpp>
#include <cz/container/state.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

namespace cz::container {

CZ_DECL const char* status_name(container_status s) noexcept {
    switch (s) {
    case container_status::created:
        return "created";
    case container_status::running:
        return "running";
    case container_status::exited:
        return "exited";
    }
    return "unknown";
}

CZ_DECL std::string to_json(const container_state& s) {
    nlohmann::json j = {
        {"id", s.id},
        {"name", s.name},
        {"image", s.image},
        {"command", s.command},
        {"created", s.created},
        {"started", s.started},
        {"finished", s.finished},
        {"status", status_name(s.status)},
        {"exit_code", s.exit_code},
        {"oom_killed", s.oom_killed},
        {"error", s.error},
        {"supervisor_pid", s.supervisor_pid},
        {"auto_remove", s.auto_remove},
    };
    // Invalid UTF-8 (a command line's bytes) is replaced rather than refused.
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace detail {

inline bool state_fail(std::error_code& ec, std::string* detail, std::string what) {
    ec = make_error_code(errc::bad_state);
    if (detail) *detail = std::move(what);
    return false;
}

template <class T>
bool state_field(const nlohmann::json& j, const char* key, T& out, std::error_code& ec,
                 std::string* detail) {
    auto it = j.find(key);
    if (it == j.end()) return state_fail(ec, detail, std::string("field \"") + key + "\" missing");
    try {
        out = it->get<T>();
    } catch (const nlohmann::json::exception&) {
        return state_fail(ec, detail, std::string("field \"") + key + "\" has the wrong type");
    }
    return true;
}

inline bool is_hex_id(std::string_view id) {
    return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

} // namespace detail

CZ_DECL container_state state_from_json(std::string_view text, std::error_code& ec,
                                        std::string* detail) {
    ec.clear();
    container_state s;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        detail::state_fail(ec, detail, "not a JSON object");
        return {};
    }
    std::string status;
    if (!detail::state_field(j, "id", s.id, ec, detail) ||
        !detail::state_field(j, "name", s.name, ec, detail) ||
        !detail::state_field(j, "image", s.image, ec, detail) ||
        !detail::state_field(j, "command", s.command, ec, detail) ||
        !detail::state_field(j, "created", s.created, ec, detail) ||
        !detail::state_field(j, "started", s.started, ec, detail) ||
        !detail::state_field(j, "finished", s.finished, ec, detail) ||
        !detail::state_field(j, "status", status, ec, detail) ||
        !detail::state_field(j, "exit_code", s.exit_code, ec, detail) ||
        !detail::state_field(j, "oom_killed", s.oom_killed, ec, detail) ||
        !detail::state_field(j, "error", s.error, ec, detail) ||
        !detail::state_field(j, "supervisor_pid", s.supervisor_pid, ec, detail) ||
        !detail::state_field(j, "auto_remove", s.auto_remove, ec, detail))
        return {};
    if (!detail::is_hex_id(s.id)) {
        detail::state_fail(ec, detail, "field \"id\" is not 64 hex digits");
        return {};
    }
    if (!valid_container_name(s.name)) {
        detail::state_fail(ec, detail, "field \"name\" is not a container name");
        return {};
    }
    if (status == "created")
        s.status = container_status::created;
    else if (status == "running")
        s.status = container_status::running;
    else if (status == "exited")
        s.status = container_status::exited;
    else {
        detail::state_fail(ec, detail, "field \"status\": \"" + status + "\" is not a status");
        return {};
    }
    return s;
}

CZ_DECL std::filesystem::path containers_dir(const std::filesystem::path& root) {
    return root / "containers";
}

CZ_DECL std::filesystem::path container_dir(const std::filesystem::path& root,
                                            std::string_view id) {
    return containers_dir(root) / std::string(id);
}

CZ_DECL std::string new_container_id() {
    unsigned char bytes[32];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n > 0)
            got += static_cast<std::size_t>(n);
        else if (errno != EINTR)
            throw std::system_error(errno, std::system_category(), "getrandom");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char b : bytes) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    return id;
}

CZ_DECL std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

CZ_DECL std::string format_time(std::int64_t ns) {
    std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
    long frac = static_cast<long>(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        --secs;
    }
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

CZ_DECL file_lock::file_lock(const std::filesystem::path& path, bool exclusive, bool try_only,
                             std::error_code& ec) {
    ec.clear();
    unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) {
        ec = last_system_error();
        return;
    }
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (try_only ? LOCK_NB : 0);
    while (::flock(fd.get(), op) != 0) {
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) ec = last_system_error();
        return;
    }
    fd_ = std::move(fd);
}

CZ_DECL container_state read_state(const std::filesystem::path& dir, std::error_code& ec,
                                   std::string* detail) {
    ec.clear();
    auto path = dir / "state.json";
    std::ifstream in(path);
    if (!in) {
        ec = errno == ENOENT ? make_error_code(errc::no_such_container) : last_system_error();
        if (detail) *detail = path.string();
        return {};
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string why;
    auto s = state_from_json(text.str(), ec, &why);
    if (ec && detail) *detail = path.string() + ": " + why;
    return s;
}

CZ_DECL void write_state(const std::filesystem::path& dir, const container_state& s,
                         std::error_code& ec) {
    ec.clear();
    auto tmp = dir / "state.json.tmp";
    auto text = to_json(s);
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
        ec = last_system_error();
        return;
    }
    std::string_view rest = text;
    while (!rest.empty()) {
        ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ec = last_system_error();
            return;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), (dir / "state.json").c_str()) != 0) {
        ec = last_system_error();
        return;
    }
    unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) ::fsync(d.get());
}

CZ_DECL bool supervisor_alive(const std::filesystem::path& dir) {
    std::error_code ec;
    file_lock probe(dir / "supervisor.lock", false, true, ec);
    // A lock that cannot even be opened is taken as held: never declare a live one dead.
    return ec || !probe.held();
}

CZ_DECL container_state load_container(const std::filesystem::path& dir, std::error_code& ec,
                                       std::string* detail) {
    auto s = read_state(dir, ec, detail);
    if (ec || s.status == container_status::exited || supervisor_alive(dir)) return s;
    return update_state(
        dir,
        [](container_state& st) {
            // Checked again under the lock: the supervisor may have recorded its exit since.
            if (st.status == container_status::exited) return;
            st.status = container_status::exited;
            st.exit_code = 137;
            st.finished = now_ns();
            st.error = "the supervisor (pid " + std::to_string(st.supervisor_pid) +
                       ") died: the VM went with it";
        },
        ec, detail);
}

CZ_DECL std::vector<container_state> list_containers(const std::filesystem::path& root,
                                                     std::error_code& ec, std::string* detail) {
    ec.clear();
    std::vector<container_state> out;
    auto dir = containers_dir(root);
    std::error_code it_ec;
    for (auto it = std::filesystem::directory_iterator(dir, it_ec);
         !it_ec && it != std::filesystem::directory_iterator(); it.increment(it_ec)) {
        auto name = it->path().filename().string();
        if (!detail::is_hex_id(name)) continue;
        std::error_code one;
        auto s = load_container(it->path(), one, detail);
        if (one == errc::no_such_container) continue; // being made, or being removed
        if (one) {
            ec = one;
            return {};
        }
        out.push_back(std::move(s));
    }
    if (it_ec && it_ec != std::errc::no_such_file_or_directory) {
        ec = it_ec;
        if (detail) *detail = dir.string();
        return {};
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.created < b.created; });
    return out;
}

CZ_DECL std::size_t match_container(const std::vector<container_state>& all, std::string_view ref,
                                    std::error_code& ec, std::string* detail) {
    ec.clear();
    for (std::size_t i = 0; i < all.size(); ++i)
        if (all[i].id == ref || all[i].name == ref) return i;
    std::size_t found = all.size();
    std::string ids;
    if (!ref.empty())
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (all[i].id.compare(0, ref.size(), ref) != 0) continue;
            ids += (ids.empty() ? "" : ", ") + all[i].id.substr(0, 12);
            if (found != all.size()) {
                ec = make_error_code(errc::ambiguous_container);
            }
            found = i;
        }
    if (ec) {
        if (detail) *detail = "\"" + std::string(ref) + "\" starts the ids " + ids;
        return all.size();
    }
    if (found == all.size()) {
        ec = make_error_code(errc::no_such_container);
        if (detail) *detail = std::string(ref);
    }
    return found;
}

CZ_DECL container_state find_container(const std::filesystem::path& root, std::string_view ref,
                                       std::error_code& ec, std::string* detail) {
    auto all = list_containers(root, ec, detail);
    if (ec) return {};
    auto i = match_container(all, ref, ec, detail);
    if (ec) return {};
    return all[i];
}

CZ_DECL unique_fd create_container(const std::filesystem::path& root, container_state& s,
                                   std::error_code& ec, std::string* detail) {
    ec.clear();
    auto dir = containers_dir(root);
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        if (detail) *detail = dir.string();
        return {};
    }
    ::chmod(dir.c_str(), 0700);
    file_lock names(dir / ".lock", true, false, ec);
    if (ec) {
        if (detail) *detail = (dir / ".lock").string();
        return {};
    }
    if (s.name.empty()) s.name = s.id.substr(0, 12);
    auto all = list_containers(root, ec, detail);
    if (ec) return {};
    for (const auto& c : all)
        if (c.name == s.name) {
            ec = make_error_code(errc::name_in_use);
            if (detail) *detail = "\"" + s.name + "\" (container " + c.id.substr(0, 12) + ")";
            return {};
        }
    auto here = container_dir(root, s.id);
    if (::mkdir(here.c_str(), 0700) != 0) {
        ec = last_system_error();
        if (detail) *detail = here.string();
        return {};
    }
    file_lock supervisor(here / "supervisor.lock", true, true, ec);
    if (!ec && !supervisor.held()) ec = make_error_code(std::errc::resource_unavailable_try_again);
    if (!ec) {
        s.status = container_status::created;
        if (s.created == 0) s.created = now_ns();
        write_state(here, s, ec);
    }
    if (ec) {
        if (detail) *detail = here.string();
        std::error_code ignored;
        std::filesystem::remove_all(here, ignored);
        return {};
    }
    return supervisor.release();
}

CZ_DECL void remove_container(const std::filesystem::path& root, const container_state& s,
                              std::error_code& ec) {
    ec.clear();
    auto dir = container_dir(root, s.id);
    if (supervisor_alive(dir)) {
        ec = make_error_code(errc::still_running);
        return;
    }
    // Renamed first, so that a listing never sees a half-removed directory.
    auto doomed = containers_dir(root) / (".removing-" + s.id);
    if (::rename(dir.c_str(), doomed.c_str()) != 0) {
        ec = errno == ENOENT ? make_error_code(errc::no_such_container) : last_system_error();
        return;
    }
    std::filesystem::remove_all(doomed, ec);
}

} // namespace cz::container
