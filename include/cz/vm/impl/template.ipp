// Out-of-line definitions for cz/vm/template.hpp.
#pragma once

#include <cz/vm/template.hpp>

#include <cz/core/unique_fd.hpp>
#include <cz/vm/accel.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/run.hpp>

#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <sstream>

namespace cz::vm {

namespace detail {

// tmpfs's f_type (linux/magic.h), re-declared: public headers never include <linux/*>.
inline constexpr long tmpfs_magic = 0x01021994;

inline std::uint64_t fnv1a64(std::string_view data, std::uint64_t h = 0xcbf29ce484222325ull) {
    for (unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

// "path size mtime_ns inode" of a file, or "path missing".
inline std::string file_identity(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return p.string() + " missing";
    return fmt::format("{} {} {} {}", p.string(), st.st_size,
                       std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                       st.st_ino);
}

// The size and FNV-1a 64 hash of a file's content.
inline bool hash_file(const std::filesystem::path& p, std::uint64_t& size, std::uint64_t& hash) {
    unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    size = 0;
    hash = 0xcbf29ce484222325ull;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) return true;
        size += static_cast<std::uint64_t>(n);
        hash = fnv1a64(std::string_view(buf, static_cast<std::size_t>(n)), hash);
    }
}

inline std::string random_hex(std::size_t bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i) {
        unsigned char b = 0;
        if (::getrandom(&b, 1, 0) != 1) b = static_cast<unsigned char>(std::rand());
        out += fmt::format("{:02x}", b);
    }
    return out;
}

// A word for /bin/sh (QEMU runs `exec:` URIs through it).
inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

inline bool on_tmpfs(const std::filesystem::path& p) {
    struct statfs fs {};
    return ::statfs(p.c_str(), &fs) == 0 && static_cast<long>(fs.f_type) == tmpfs_magic;
}

// /dev/shm/cz-<uid>, made 0700 and checked to be this user's own directory.
inline std::filesystem::path user_shm_dir(std::error_code& ec, error_info& detail) {
    std::filesystem::path dir = fmt::format("/dev/shm/cz-{}", ::getuid());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        ec = last_system_error();
        detail.message = "mkdir " + dir.string();
        return {};
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
        (st.st_mode & 077) != 0) {
        ec = std::make_error_code(std::errc::permission_denied);
        detail.message = dir.string() + ": not a directory of this user's alone (mode 0700)";
        return {};
    }
    return dir;
}

// This root's memory files: /dev/shm/cz-<uid>/<hash of the templates directory>, so that roots
// never sweep each other's.
inline std::filesystem::path root_shm_dir(const std::filesystem::path& templates,
                                          std::error_code& ec, error_info& detail) {
    auto user = user_shm_dir(ec, detail);
    if (ec) return {};
    std::error_code canon_ec;
    auto canonical = std::filesystem::weakly_canonical(templates, canon_ec);
    auto dir = user / fmt::format("{:016x}", fnv1a64((canon_ec ? templates : canonical).string()));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        ec = last_system_error();
        detail.message = "mkdir " + dir.string();
        return {};
    }
    // Whose it is: a directory whose templates directory is gone is swept (remove_gone_roots).
    std::ofstream((dir / "templates").string()) << (canon_ec ? templates : canonical).string();
    return dir;
}

// Removes the memory files of cz roots that no longer exist (a test's root, removed with its
// templates directory), as their directories in /dev/shm/cz-<uid> record them.
inline void remove_gone_roots() {
    std::error_code ec;
    std::filesystem::path user = fmt::format("/dev/shm/cz-{}", ::getuid());
    std::vector<std::filesystem::path> gone;
    for (std::filesystem::directory_iterator it(user, ec), end; !ec && it != end;
         it.increment(ec)) {
        std::ifstream in(it->path() / "templates");
        std::string templates;
        if (std::getline(in, templates) && !templates.empty() &&
            !std::filesystem::exists(templates))
            gone.push_back(it->path());
    }
    for (const auto& dir : gone)
        std::filesystem::remove_all(dir, ec);
}

inline nlohmann::json to_json(const template_info& t) {
    return {{"key", t.key_text},
            {"memory", t.memory.string()},
            {"state_size", t.state_size},
            {"state_hash", fmt::format("{:016x}", t.state_hash)},
            {"memory_size", t.memory_size},
            {"memory_inode", t.memory_inode},
            {"memory_mtime_ns", t.memory_mtime_ns},
            {"created", t.created}};
}

// Reads <dir>/info.json; false when it is missing or not as to_json writes it.
inline bool read_info(const std::filesystem::path& dir, template_info& t) {
    std::ifstream in(dir / "info.json");
    if (!in) return false;
    std::stringstream text;
    text << in.rdbuf();
    auto j = nlohmann::json::parse(text.str(), nullptr, false);
    if (!j.is_object()) return false;
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
    auto num = [&](const char* k) { return j.contains(k) && j[k].is_number_integer(); };
    if (!str("key") || !str("memory") || !str("state_hash") || !num("state_size") ||
        !num("memory_size") || !num("memory_inode") || !num("memory_mtime_ns") || !num("created"))
        return false;
    t.dir = dir;
    t.key = dir.filename().string();
    t.state = dir / "state";
    t.key_text = j["key"].get<std::string>();
    t.memory = j["memory"].get<std::string>();
    t.state_size = j["state_size"].get<std::uint64_t>();
    t.memory_size = j["memory_size"].get<std::uint64_t>();
    t.memory_inode = j["memory_inode"].get<std::uint64_t>();
    t.memory_mtime_ns = j["memory_mtime_ns"].get<std::int64_t>();
    t.created = j["created"].get<std::int64_t>();
    auto hash = j["state_hash"].get<std::string>();
    char* end = nullptr;
    t.state_hash = std::strtoull(hash.c_str(), &end, 16);
    return end && *end == '\0' && hash.size() == 16;
}

// Whether a template's files are those it recorded; `why` says what differs.
inline bool check_files(const template_info& t, std::string& why) {
    std::uint64_t size = 0, hash = 0;
    if (!hash_file(t.state, size, hash)) {
        why = t.state.string() + ": " + last_system_error().message();
        return false;
    }
    if (size != t.state_size || hash != t.state_hash) {
        why = fmt::format("{}: {} bytes, hash {:016x}; recorded {} bytes, hash {:016x}",
                          t.state.string(), size, hash, t.state_size, t.state_hash);
        return false;
    }
    struct stat st {};
    if (::stat(t.memory.c_str(), &st) != 0) {
        why = t.memory.string() + ": " + last_system_error().message();
        return false;
    }
    std::int64_t mtime = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (static_cast<std::uint64_t>(st.st_size) != t.memory_size || st.st_ino != t.memory_inode ||
        mtime != t.memory_mtime_ns) {
        why = t.memory.string() + ": not the memory file the template was saved with";
        return false;
    }
    return true;
}

// Removes a template directory and the memory file it records (when that lies in this user's
// /dev/shm directory or in the template's own directory).
inline void remove_template_dir(const std::filesystem::path& dir) {
    template_info t;
    std::error_code ignored;
    if (read_info(dir, t)) {
        auto parent = t.memory.parent_path();
        if (parent == dir ||
            parent.parent_path().filename().string() == fmt::format("cz-{}", ::getuid()))
            std::filesystem::remove(t.memory, ignored);
    }
    std::filesystem::remove_all(dir, ignored);
}

// Removes the .new-* directories (and their memory files) that makers killed before they
// finished left behind: those older than ten minutes, which no maker still works on.
inline void remove_abandoned_templates(const std::filesystem::path& parent) {
    std::error_code ec;
    std::vector<std::filesystem::path> old;
    for (std::filesystem::directory_iterator it(parent, ec), end; !ec && it != end;
         it.increment(ec)) {
        struct stat st {};
        if (!it->path().filename().string().starts_with(".new-") ||
            ::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
            ::time(nullptr) - st.st_mtime < 600)
            continue;
        old.push_back(it->path());
    }
    for (const auto& dir : old)
        std::filesystem::remove_all(dir, ec);
    // Memory files in /dev/shm that no template records, as old.
    error_info ignored;
    auto shm = root_shm_dir(parent, ec, ignored);
    if (ec) return;
    std::vector<std::filesystem::path> recorded;
    for (std::filesystem::directory_iterator it(parent, ec), end; !ec && it != end;
         it.increment(ec)) {
        template_info t;
        if (read_info(it->path(), t)) recorded.push_back(t.memory);
    }
    std::vector<std::filesystem::path> orphans;
    for (std::filesystem::directory_iterator it(shm, ec), end; !ec && it != end; it.increment(ec)) {
        struct stat st {};
        if (it->path().extension() != ".mem" || ::lstat(it->path().c_str(), &st) != 0 ||
            ::time(nullptr) - st.st_mtime < 600 ||
            std::find(recorded.begin(), recorded.end(), it->path()) != recorded.end())
            continue;
        orphans.push_back(it->path());
    }
    for (const auto& f : orphans)
        std::filesystem::remove(f, ec);
}

// Runs `ctx` until `done`, and leaves it ready to run again (an io_context that ran out of work
// is stopped, and its next run() would return at once).
inline void run_template_until(asio::io_context& ctx, const bool& done) {
    ctx.restart();
    while (!done)
        if (ctx.run_one() == 0) break;
    ctx.restart();
}

inline asio::awaitable<std::pair<std::error_code, nlohmann::json>>
qmp_call(qemu_vm& vm, std::string command, nlohmann::json args) {
    std::error_code ec;
    auto r = co_await vm.qmp().async_execute(std::move(command), std::move(args),
                                             asio::redirect_error(asio::use_awaitable, ec));
    co_return std::pair{ec, std::move(r)};
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    std::error_code ignored;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

inline nlohmann::json ignore_shared_capability() {
    return {{"capabilities",
             nlohmann::json::array({{{"capability", "x-ignore-shared"}, {"state", true}}})}};
}

// {"uri": uri}, made outside the coroutines (g++ 12 rejects braced JSON with string literals
// inside one).
inline nlohmann::json uri_argument(std::string uri) {
    nlohmann::json j = nlohmann::json::object();
    j["uri"] = std::move(uri);
    return j;
}

// Waits for the guest's ready port, then saves the VM's state to `state_file`.
inline asio::awaitable<std::error_code> save_when_ready(qemu_vm& vm, const bool& ready,
                                                        const template_options& t,
                                                        const std::filesystem::path& state_file,
                                                        error_info& detail) {
    auto deadline = std::chrono::steady_clock::now() + t.ready_timeout;
    while (!ready) {
        if (t.cancelled && t.cancelled()) {
            detail.message = "cancelled while the guest booted";
            co_return asio::error::operation_aborted;
        }
        if (!vm.running()) {
            detail.message = "the VM ended before its guest was ready";
            co_return errc::vmm_start_failed;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            detail.message = fmt::format("the guest did not open port {} within {} ms",
                                         t.ready_port, t.ready_timeout.count());
            co_return errc::timed_out;
        }
        co_await sleep_for(std::chrono::milliseconds(5));
    }
    auto [cec, cr] = co_await qmp_call(vm, "migrate-set-capabilities", ignore_shared_capability());
    if (!cec) {
        auto [mec, mr] = co_await qmp_call(
            vm, "migrate", uri_argument("exec:cat > " + shell_quote(state_file.string())));
        cec = mec;
    }
    if (cec) {
        detail.message = to_string(vm.qmp().error_detail());
        co_return cec;
    }
    for (;;) {
        auto [qec, r] = co_await qmp_call(vm, "query-migrate", nullptr);
        if (qec) {
            detail.message = "query-migrate: " + to_string(vm.qmp().error_detail());
            co_return qec;
        }
        std::string status = r.is_object() && r.contains("status") && r["status"].is_string()
                                 ? r["status"].get<std::string>()
                                 : std::string();
        if (status == "completed") co_return std::error_code{};
        if (status == "failed" || status == "cancelled") {
            detail.message = r.contains("error-desc") && r["error-desc"].is_string()
                                 ? r["error-desc"].get<std::string>()
                                 : "migrate: " + status;
            co_return errc::migration_failed;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            detail.message = "saving the VM's state took too long";
            co_return errc::timed_out;
        }
        co_await sleep_for(std::chrono::milliseconds(2));
    }
}

} // namespace detail

CZ_DECL std::filesystem::path templates_dir(const std::filesystem::path& root) {
    return root / "templates" / std::to_string(::getuid());
}

CZ_DECL std::string template_key_text(const config& cfg, const qemu_options& q,
                                      const template_options& t, std::error_code& ec,
                                      error_info& detail) {
    ec.clear();
    if (cfg.vsock || q.memory_file || q.incoming) {
        ec = errc::invalid_config;
        detail.message = cfg.vsock ? "a VM template needs config::vsock off (vhost-user maps "
                                     "guest RAM shared)"
                                   : "qemu_options already set up for a template";
        return {};
    }
    auto accel = resolve_accel(cfg.accel);
    auto tsc = accel == accel_mode::tcg ? host_tsc_khz() : 0;
    std::string text;
    auto qemu = find_program(q.binary);
    text += "qemu=" + detail::file_identity(qemu.empty() ? q.binary : qemu) + "\n";
    text += "kernel=" + detail::file_identity(cfg.kernel) + "\n";
    text +=
        "initrd=" + (cfg.initrd.empty() ? std::string() : detail::file_identity(cfg.initrd)) + "\n";
    text += "cmdline=" + qemu_kernel_cmdline(cfg, q, accel, tsc) + "\n";
    text += fmt::format("cpus={}\nmemory={}\naccel={}\nacpi={}\n", cfg.cpus, cfg.memory_mib,
                        accel == accel_mode::kvm ? "kvm" : "tcg", q.acpi ? "on" : "off");
    text += "disks=";
    for (const auto& d : cfg.disks)
        text += d.read_only ? "ro " : "rw ";
    text += fmt::format("\nnetwork={}\nlayout={}\nready={}\n", cfg.network ? "user" : "none",
                        t.layout, t.ready_port);
    return text;
}

CZ_DECL std::string template_key(std::string_view key_text) {
    return fmt::format("{:016x}", detail::fnv1a64(key_text));
}

CZ_DECL template_info find_template(const config& cfg, const qemu_options& q,
                                    const template_options& t, std::error_code& ec,
                                    error_info& detail) {
    auto text = template_key_text(cfg, q, t, ec, detail);
    if (ec) return {};
    auto root = cfg.root.empty() ? default_root() : cfg.root;
    auto dir = templates_dir(root) / template_key(text);
    template_info info;
    if (!detail::read_info(dir, info)) {
        ec = errc::template_not_found;
        detail.message = dir.string();
        return {};
    }
    std::string why;
    if (info.key_text != text) {
        why = "its key differs (a hash collision)";
    } else if (!detail::check_files(info, why)) {
    } else {
        return info;
    }
    ec = errc::template_invalid;
    detail.message = "template " + dir.string() + ": " + why;
    return info;
}

CZ_DECL template_info make_template(asio::io_context& ctx, const config& cfg, const qemu_options& q,
                                    const template_options& t, std::error_code& ec,
                                    error_info& detail) {
    namespace fs = std::filesystem;
    auto text = template_key_text(cfg, q, t, ec, detail);
    if (ec) return {};
    auto root = cfg.root.empty() ? default_root() : cfg.root;
    auto key = template_key(text);
    auto parent = templates_dir(root);
    fs::create_directories(parent, ec);
    if (!ec) fs::permissions(parent, fs::perms::owner_all, ec);
    if (ec) {
        detail.message = parent.string();
        return {};
    }
    detail::remove_abandoned_templates(parent);
    detail::remove_gone_roots();
    // Being made: .new-<key>-<random>, removed whatever happens unless renamed into place.
    auto work = parent / (".new-" + key + "-" + detail::random_hex(4));
    if (::mkdir(work.c_str(), 0700) != 0) {
        ec = last_system_error();
        detail.message = "mkdir " + work.string();
        return {};
    }
    fs::path memory;
    if (detail::on_tmpfs(parent)) {
        memory = work / "memory";
    } else {
        auto shm = detail::root_shm_dir(parent, ec, detail);
        if (ec) {
            fs::remove_all(work, ec);
            ec = errc::invalid_config;
            return {};
        }
        memory = shm / (key + "." + detail::random_hex(6) + ".mem");
    }
    bool placed = false;
    struct cleanup {
        fs::path work, memory;
        const bool& placed;
        ~cleanup() {
            if (placed) return;
            std::error_code ignored;
            fs::remove(memory, ignored);
            fs::remove_all(work, ignored);
        }
    } guard{work, memory, placed};

    config c = cfg;
    c.root = root;
    for (std::size_t i = 0; i < c.disks.size(); ++i) {
        auto placeholder = work / fmt::format("disk{}", i);
        unique_fd fd(::open(placeholder.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(placeholder_disk_bytes)) != 0) {
            ec = last_system_error();
            detail.message = "placeholder disk " + placeholder.string();
            return {};
        }
        c.disks[i].path = placeholder;
    }
    bool ready = false;
    qemu_options o = q;
    o.memory_file = qemu_options::memory_file_backing{memory, true};
    o.on_event = [&ready, port = t.ready_port, user = q.on_event](const qmp_message& m) {
        if (m.name == "VSERPORT_CHANGE" && m.value.is_object() && m.value.contains("id") &&
            m.value["id"] == port && m.value.contains("open") && m.value["open"] == true)
            ready = true;
        if (user) user(m);
    };
    qemu_vm vm(ctx, c, o);
    vm.start(ec);
    if (ec) {
        detail = vm.error_detail();
        return {};
    }
    auto state_tmp = work / "state";
    bool done = false;
    asio::co_spawn(ctx, detail::save_when_ready(vm, ready, t, state_tmp, detail),
                   [&](std::exception_ptr e, std::error_code r) {
                       ec = e ? make_error_code(errc::migration_failed) : r;
                       done = true;
                   });
    detail::run_template_until(ctx, done);
    std::error_code stop_ec;
    auto status =
        vm.stop(stop_options{std::chrono::milliseconds(0), std::chrono::seconds(3)}, stop_ec);
    ctx.restart(); // stop() ran it until QEMU was gone: ready for the caller's next run()
    if (ec) {
        if (ec == errc::vmm_start_failed)
            detail.message += ": " + status.describe() + "\n" + console_tail(vm.console(), 10);
        return {};
    }
    for (std::size_t i = 0; i < c.disks.size(); ++i)
        fs::remove(c.disks[i].path, stop_ec);

    template_info info;
    info.key = key;
    info.key_text = text;
    info.memory = memory.parent_path() == work ? parent / key / "memory" : memory;
    info.created = static_cast<std::int64_t>(::time(nullptr));
    struct stat st {};
    if (!detail::hash_file(state_tmp, info.state_size, info.state_hash) ||
        ::stat(memory.c_str(), &st) != 0) {
        ec = last_system_error();
        detail.message = "reading back " + state_tmp.string();
        return {};
    }
    info.memory_size = static_cast<std::uint64_t>(st.st_size);
    info.memory_inode = st.st_ino;
    info.memory_mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    {
        std::ofstream out(work / "info.json");
        out << detail::to_json(info).dump(2) << "\n";
        if (!out.flush()) {
            ec = std::make_error_code(std::errc::io_error);
            detail.message = "writing " + (work / "info.json").string();
            return {};
        }
    }
    // Into place: a template of this key made meanwhile (or a damaged one) is swapped out and
    // removed; a clone of it keeps its memory file open.
    auto final_dir = parent / key;
    if (::renameat2(AT_FDCWD, work.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno != EEXIST || ::renameat2(AT_FDCWD, work.c_str(), AT_FDCWD, final_dir.c_str(),
                                           RENAME_EXCHANGE) != 0) {
            ec = last_system_error();
            detail.message = "rename " + work.string() + " to " + final_dir.string();
            return {};
        }
        detail::remove_template_dir(work); // the old one, now under the work name
    }
    placed = true;
    info.dir = final_dir;
    info.state = final_dir / "state";
    ec.clear();
    return info;
}

CZ_DECL void use_template(const template_info& t, qemu_options& q) {
    q.memory_file = qemu_options::memory_file_backing{t.memory, false};
    q.incoming = true;
}

CZ_DECL asio::awaitable<std::error_code> async_restore_clone(qemu_vm& vm, const template_info& t,
                                                             error_info& detail,
                                                             restore_timings* timings,
                                                             std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (timings) timings->start = std::chrono::steady_clock::now();
    auto [cec, cr] = co_await detail::qmp_call(vm, "migrate-set-capabilities",
                                               detail::ignore_shared_capability());
    if (!cec) {
        auto [iec, ir] = co_await detail::qmp_call(
            vm, "migrate-incoming",
            detail::uri_argument("exec:cat " + detail::shell_quote(t.state.string())));
        cec = iec;
    }
    if (cec) {
        detail.message = "restoring from " + t.state.string() + ": " +
                         (vm.running() ? to_string(vm.qmp().error_detail()) : "QEMU exited");
        co_return cec == errc::qmp_command_failed ? make_error_code(errc::migration_failed) : cec;
    }
    // Done when QEMU leaves "inmigrate": "running" (it starts the guest itself) or "paused"
    // (when started with -S). A state QEMU cannot load makes it exit.
    for (;;) {
        auto [qec, r] = co_await detail::qmp_call(vm, "query-status", nullptr);
        if (qec) {
            detail.message = "restoring from " + t.state.string() + ": QEMU refused the state";
            co_return make_error_code(errc::migration_failed);
        }
        auto status = r.is_object() && r.contains("status") && r["status"].is_string()
                          ? r["status"].get<std::string>()
                          : std::string();
        if (status == "running") break;
        if (status == "paused" || status == "prelaunch") {
            auto [ce, cres] = co_await detail::qmp_call(vm, "cont", nullptr);
            if (ce) {
                detail.message = "cont: " + to_string(vm.qmp().error_detail());
                co_return ce;
            }
            break;
        }
        if (status != "inmigrate") {
            detail.message = "restoring from " + t.state.string() + ": VM " + status;
            co_return make_error_code(errc::migration_failed);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            detail.message = "restoring from " + t.state.string() + " took too long";
            co_return make_error_code(errc::timed_out);
        }
        co_await detail::sleep_for(std::chrono::milliseconds(1));
    }
    if (timings) timings->incoming = std::chrono::steady_clock::now();
    co_return std::error_code{};
}

CZ_DECL void restore_clone(qemu_vm& vm, asio::io_context& ctx, const template_info& t,
                           std::error_code& ec, error_info& detail) {
    bool done = false;
    asio::co_spawn(ctx, async_restore_clone(vm, t, detail),
                   [&](std::exception_ptr e, std::error_code r) {
                       ec = e ? make_error_code(errc::migration_failed) : r;
                       done = true;
                   });
    detail::run_template_until(ctx, done);
}

CZ_DECL std::vector<template_info> list_templates(const std::filesystem::path& root,
                                                  std::error_code& ec) {
    ec.clear();
    std::vector<template_info> out;
    std::error_code it_ec;
    std::filesystem::directory_iterator it(templates_dir(root), it_ec), end;
    for (; !it_ec && it != end; it.increment(it_ec)) {
        auto name = it->path().filename().string();
        if (name.starts_with(".")) continue;
        template_info t;
        if (detail::read_info(it->path(), t)) out.push_back(std::move(t));
    }
    if (it_ec && it_ec != std::errc::no_such_file_or_directory) ec = it_ec;
    return out;
}

CZ_DECL void remove_template(const std::filesystem::path& root, std::string_view key,
                             std::error_code& ec) {
    ec.clear();
    auto dir = templates_dir(root) / std::string(key);
    if (key.empty() || key.find('/') != std::string_view::npos || key.starts_with(".") ||
        !std::filesystem::is_directory(dir)) {
        ec = errc::template_not_found;
        return;
    }
    detail::remove_template_dir(dir);
}

} // namespace cz::vm
