// Out-of-line definitions for cz/container/supervisor.hpp.
#pragma once

#include <cz/container/impl/ask.hpp>
#include <cz/container/live.hpp>
#include <cz/container/supervisor.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <deque>
#include <memory>

namespace cz::container {

CZ_DECL int parse_signal(std::string_view name) noexcept {
    if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
    static constexpr std::pair<const char*, int> names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"STOP", SIGSTOP},
        {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PWR", SIGPWR}};
    for (auto [n, v] : names)
        if (name == n) return v;
    int v = 0;
    for (char c : name) {
        if (c < '0' || c > '9' || v > 64) return 0;
        v = v * 10 + (c - '0');
    }
    return v >= 1 && v <= 64 ? v : 0;
}

CZ_DECL int exit_code_for(std::error_code ec) noexcept {
    if (ec == errc::command_not_found) return 127;
    if (ec == errc::command_not_executable) return 126;
    return 125;
}

namespace detail {

// A Unix socket address for `dir`/control.sock. sun_path holds 107 characters; a longer path
// goes through the directory's descriptor (/proc/self/fd/N/control.sock), which `dir_fd` keeps
// open for as long as the address is used.
inline sockaddr_un control_address(const std::filesystem::path& dir, unique_fd& dir_fd,
                                   std::error_code& ec) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    auto path = (dir / "control.sock").string();
    if (path.size() >= sizeof a.sun_path) {
        dir_fd.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dir_fd) {
            ec = last_system_error();
            return a;
        }
        path = "/proc/self/fd/" + std::to_string(dir_fd.get()) + "/control.sock";
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

// A connection to the supervisor of the container in `dir`.
inline unique_fd connect_control(const std::filesystem::path& dir, std::error_code& ec) {
    ec.clear();
    unique_fd dir_fd;
    auto a = control_address(dir, dir_fd, ec);
    if (ec) return {};
    unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) {
        ec = last_system_error();
        return {};
    }
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        // No one listens: the supervisor has gone (or never got as far).
        ec = errno == ECONNREFUSED || errno == ENOENT ? make_error_code(errc::not_running)
                                                      : last_system_error();
        return {};
    }
    return s;
}

inline void send_all(int fd, std::string_view data, std::error_code& ec) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ec = last_system_error();
            return;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Reads from `fd` into `reader` until it has a frame; nullopt at the end of the stream (ec
// errc::bad_frame when that end cuts a frame).
inline std::optional<control_frame> receive_frame(int fd, control_reader& reader,
                                                  std::error_code& ec, std::string* detail) {
    for (;;) {
        auto f = reader.next(ec, detail);
        if (ec || f) return f;
        char buf[65536];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ec = last_system_error();
            return std::nullopt;
        }
        if (n == 0) {
            if (reader.pending() > 0) {
                ec = make_error_code(errc::bad_frame);
                if (detail) *detail = "the supervisor's connection ended inside a frame";
            }
            return std::nullopt;
        }
        reader.feed(as_bytes(std::string_view(buf, static_cast<std::size_t>(n))));
    }
}

// Waits until the supervisor's end (its connections close when it exits).
inline void wait_for_close(int fd) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
    }
}

// Sends one request and reads the ok or error that answers it.
inline unique_fd request(const std::filesystem::path& dir, const std::string& frame,
                         std::error_code& ec, std::string* detail) {
    auto s = connect_control(dir, ec);
    if (ec) return {};
    send_all(s.get(), frame, ec);
    if (ec) return {};
    control_reader reader(true);
    auto f = receive_frame(s.get(), reader, ec, detail);
    if (ec) return {};
    if (!f) {
        ec = make_error_code(errc::not_running);
        return {};
    }
    if (f->type == control_type::error) {
        auto e = decode_control_error(f->payload, ec);
        if (!ec) {
            ec = make_error_code(errc::not_running);
            if (detail) *detail = e.message;
        } else if (detail) {
            *detail = "an error frame that does not decode";
        }
        return {};
    }
    if (f->type != control_type::ok) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = "answer of type " + std::to_string(int(f->type)) + ", not ok";
        return {};
    }
    return s;
}

// ---- the supervisor's side ---------------------------------------------------------------------

using tuple_t = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
inline constexpr tuple_t sv_tuple{};

// A timer used as a condition: waiters wait for expiry max, notify cancels.
struct signal_timer {
    explicit signal_timer(asio::io_context& io) : t(io, asio::steady_timer::time_point::max()) {}
    asio::awaitable<void> wait() {
        t.expires_at(asio::steady_timer::time_point::max());
        co_await t.async_wait(sv_tuple);
    }
    void notify() { t.cancel(); }
    asio::steady_timer t;
};

// One client connection: frames in through `reader`, frames out through a queue that one
// coroutine writes in order (the exec's stdout and stderr pumps both send).
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(asio::io_context& io, asio::local::stream_protocol::socket s)
        : socket_(std::move(s)), changed_(io), drained_(io) {}

    // The next frame from the client (an owned copy), or nullopt at its end or on bad bytes.
    asio::awaitable<std::optional<std::pair<control_type, std::string>>> read() {
        for (;;) {
            std::error_code ec;
            auto f = reader_.next(ec);
            if (ec) co_return std::nullopt;
            if (f) co_return std::make_pair(f->type, std::string(as_chars(f->payload)));
            char buf[65536];
            auto [rec, n] = co_await socket_.async_read_some(asio::buffer(buf), sv_tuple);
            if (rec) co_return std::nullopt;
            reader_.feed(as_bytes(std::string_view(buf, n)));
        }
    }

    // Queues a frame; waits while more than 1 MiB is queued (a slow client slows its exec only).
    asio::awaitable<void> send(std::string frame) {
        if (closed_) co_return;
        queued_ += frame.size();
        queue_.push_back(std::move(frame));
        changed_.notify();
        while (queued_ > (1u << 20) && !closed_)
            co_await drained_.wait();
    }

    // Writes the queue until finish() and the queue is empty, or the client went away.
    asio::awaitable<void> write_loop() {
        auto self = shared_from_this();
        for (;;) {
            while (!queue_.empty() && !closed_) {
                auto [ec, n] =
                    co_await asio::async_write(socket_, asio::buffer(queue_.front()), sv_tuple);
                (void)n;
                queued_ -= queue_.front().size();
                queue_.pop_front();
                drained_.notify();
                if (ec) closed_ = true;
            }
            if (closed_ || finishing_) break;
            co_await changed_.wait();
        }
        closed_ = true;
        drained_.notify();
        std::error_code ignored;
        socket_.shutdown(asio::socket_base::shutdown_both, ignored);
        socket_.close(ignored);
    }

    // No more frames: the connection closes once the queue is written.
    void finish() {
        finishing_ = true;
        changed_.notify();
    }

private:
    asio::local::stream_protocol::socket socket_;
    control_reader reader_{false};
    std::deque<std::string> queue_;
    std::size_t queued_ = 0;
    bool closed_ = false, finishing_ = false;
    signal_timer changed_, drained_;
};

// The process.json of an exec: the container's process, with the request over it.
inline std::string exec_process_json(const std::string& spec_json, const exec_request& r) {
    auto spec = nlohmann::json::parse(spec_json);
    auto p = spec.at("process");
    p["args"] = r.args;
    auto env = p.value("env", std::vector<std::string>{});
    for (const auto& e : r.env) {
        auto name = e.substr(0, e.find('='));
        std::erase_if(env, [&](const std::string& x) { return x.substr(0, x.find('=')) == name; });
        env.push_back(e);
    }
    p["env"] = env;
    if (!r.working_dir.empty()) p["cwd"] = r.working_dir;
    if (!r.user.empty()) p["user"] = {{"uid", 0}, {"gid", 0}, {"username", r.user}};
    p["terminal"] = r.terminal;
    p.erase("consoleSize");
    if (r.terminal && r.rows > 0 && r.columns > 0)
        p["consoleSize"] = {{"height", r.rows}, {"width", r.columns}};
    return p.dump();
}

class control_server {
public:
    control_server(live_container& live, int listen_fd) : live_(live), acceptor_(live.io) {
        acceptor_.assign(asio::local::stream_protocol(), listen_fd);
    }

    // Serves the socket; SIGTERM, SIGINT or SIGHUP to the supervisor stop the container as
    // `cz stop` does (10 s), rather than killing its VM.
    void start() {
        asio::co_spawn(live_.io, accept_loop(), asio::detached);
        signals_.async_wait([this](std::error_code ec, int) {
            if (ec || stopping_) return;
            stopping_ = true;
            asio::co_spawn(live_.io, stop(std::chrono::seconds(10)), asio::detached);
        });
    }

private:
    template <std::size_t N>
    static bool put(char (&field)[N], std::string_view value) {
        std::error_code ec;
        agent::set_string(field, value, ec);
        return !ec;
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor_.async_accept(sv_tuple);
            if (ec == asio::error::operation_aborted) co_return;
            if (ec) continue;
            auto c = std::make_shared<connection>(live_.io, std::move(s));
            asio::co_spawn(live_.io, c->write_loop(), asio::detached);
            asio::co_spawn(live_.io, serve(c), asio::detached);
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<connection> c) {
        auto first = co_await c->read();
        if (!first) {
            c->finish();
            co_return;
        }
        auto& [type, payload] = *first;
        std::error_code ec;
        if (type == control_type::exec) {
            std::string why;
            auto r = exec_request_from_json(payload, ec, &why);
            if (ec)
                co_await c->send(encode_control_error(125, why));
            else
                co_await exec(c, r);
        } else if (type == control_type::kill) {
            auto sig = decode_i32(as_bytes(payload), ec);
            if (ec || sig < 1 || sig > 64)
                co_await c->send(encode_control_error(125, "kill: not a signal number"));
            else
                co_await c->send(co_await kill(sig, false));
        } else if (type == control_type::stop) {
            auto secs = decode_i32(as_bytes(payload), ec);
            if (ec || secs < 0) {
                co_await c->send(encode_control_error(125, "stop: not a number of seconds"));
            } else {
                co_await c->send(encode_control_frame(control_type::ok));
                if (!stopping_) {
                    stopping_ = true;
                    asio::co_spawn(live_.io, stop(std::chrono::seconds(secs)), asio::detached);
                }
            }
        } else if (type == control_type::stats) {
            co_await c->send(co_await stats());
        } else if (type == control_type::wait) {
            co_await c->send(co_await wait_exit());
        } else if (type == control_type::path_stat || type == control_type::copy_out ||
                   type == control_type::copy_in) {
            auto path = decode_container_path(as_bytes(payload), ec);
            if (ec)
                co_await c->send(
                    encode_control_error(125, "not an absolute path in the container"));
            else if (type == control_type::path_stat)
                co_await c->send(co_await path_stat(path));
            else if (type == control_type::copy_out)
                co_await copy_out(c, path);
            else
                co_await copy_in(c, path);
        } else {
            co_await c->send(encode_control_error(125, "not a request"));
        }
        c->finish();
    }

    // KillProcess of the container's first process: an ok frame, or the guest's error.
    asio::awaitable<std::string> kill(int sig, bool all) {
        cz_agent_KillProcess k{};
        put(k.container_id, live_.id);
        put(k.process_id, live_.id);
        k.signal = sig;
        k.all = all;
        auto [ec, r] = co_await live_.agent.async_call(k, sv_tuple);
        if (ec) {
            std::string m = r.which_result == cz_agent_Response_error_tag
                                ? std::string(agent::get_string(r.result.error.message))
                                : ec.message();
            co_return encode_control_error(125, "kill: " + m);
        }
        co_return encode_control_frame(control_type::ok);
    }

    // The agent's Statistics, as a stats_result frame.
    asio::awaitable<std::string> stats() {
        cz_agent_Statistics q{};
        put(q.container_id, live_.id);
        auto [ec, r] = co_await live_.agent.async_call(q, sv_tuple);
        if (ec) co_return encode_control_error(125, "stats: " + describe(ec, r));
        const auto& st = r.result.statistics;
        container_stats s;
        s.time = now_ns();
        if (st.has_cpu) s.cpu_usec = st.cpu.usage_usec;
        if (st.has_memory) {
            s.memory_current = st.memory.current;
            s.memory_max = st.memory.max;
        }
        if (st.has_pids) {
            s.pids_current = st.pids.current;
            s.pids_max = st.pids.max;
        }
        for (pb_size_t i = 0; i < st.io_count && i < 16; ++i) {
            s.block_read += st.io[i].rbytes;
            s.block_write += st.io[i].wbytes;
        }
        for (pb_size_t i = 0; i < st.links_count && i < 8; ++i) {
            if (std::string_view(st.links[i].interface) == "lo") continue;
            s.net_rx += st.links[i].rx_bytes;
            s.net_tx += st.links[i].tx_bytes;
        }
        co_return encode_control_frame(control_type::stats_result, as_bytes(to_json(s)));
    }

    // The container's exit code, once its process has exited (an exit frame): what `cz wait`
    // reads when the state it would read is removed with the container (--rm).
    asio::awaitable<std::string> wait_exit() {
        cz_agent_WaitProcess w{};
        put(w.container_id, live_.id);
        put(w.process_id, live_.id);
        auto [ec, r] = co_await live_.agent.async_call(w, sv_tuple);
        if (ec) co_return encode_control_error(125, "wait: " + describe(ec, r));
        co_return encode_control_frame(
            control_type::exit,
            as_bytes(encode_i32(static_cast<std::int32_t>(r.result.wait_process.status))));
    }

    // Stat of a path in the container (symlinks followed): a path_info frame; a path that is not
    // there is one too (exists false), anything else an error.
    asio::awaitable<std::string> path_stat(const std::string& path) {
        cz_agent_Stat q{};
        put(q.path, path);
        put(q.container_id, live_.id);
        q.follow_symlinks = true;
        auto [ec, r] = co_await live_.agent.async_call(q, sv_tuple);
        path_info info;
        if (ec && r.which_result == cz_agent_Response_error_tag &&
            r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND)
            co_return encode_control_frame(control_type::path_info, as_bytes(to_json(info)));
        if (ec) co_return encode_control_error(125, describe(ec, r));
        info.exists = true;
        info.mode = r.result.stat.mode;
        info.size = r.result.stat.size;
        info.mtime = r.result.stat.mtime_ns;
        co_return encode_control_frame(control_type::path_info, as_bytes(to_json(info)));
    }

    // An RPC whose answer comes while its stream flows: a coroutine of its own on the run's
    // io_context awaits it and keeps it here; `answered` wakes the one coroutine that waits for
    // it (a second waiter would cancel the first's wait: signal_timer has one waiter).
    struct pending_answer {
        explicit pending_answer(asio::io_context& io) : answered(io) {}
        std::optional<std::pair<std::error_code, agent::response>> answer;
        signal_timer answered;
    };

    template <class Rpc>
    std::shared_ptr<pending_answer> call_in_background(const Rpc& rpc) {
        auto p = std::make_shared<pending_answer>(live_.io);
        // The request is encoded and queued before the coroutine first waits, so the stream's
        // data that follows cannot overtake it.
        asio::co_spawn(
            live_.io,
            [](agent::client& agent, Rpc rpc,
               std::shared_ptr<pending_answer> p) -> asio::awaitable<void> {
                auto [ec, r] = co_await agent.async_call(rpc, sv_tuple);
                p->answer.emplace(ec, std::move(r));
                p->answered.notify();
            }(live_.agent, rpc, p),
            asio::detached);
        return p;
    }

    // ok, or the error the guest answered with. (A frame built outside the co_await: GCC 12
    // destroys a conditional's temporary twice inside one.)
    static std::string answer_frame(const pending_answer& p) {
        const auto& [ec, r] = *p.answer;
        if (ec) return encode_control_error(125, describe(ec, r));
        return encode_control_frame(control_type::ok);
    }

    // Lets what was spawned before run first (the request goes out before its stream's data).
    asio::awaitable<void> yield() { co_await asio::post(live_.io, asio::use_awaitable); }

    static asio::awaitable<void> wait_answer(std::shared_ptr<pending_answer> p) {
        while (!p->answer)
            co_await p->answered.wait();
    }

    // CopyOut of `path`: its archive to the client as stdout_data, then ok or the error.
    asio::awaitable<void> copy_out(std::shared_ptr<connection> c, const std::string& path) {
        const std::uint32_t stream = next_stream_++;
        std::error_code ec;
        live_.agent.open_stream(stream, ec);
        if (ec) {
            co_await c->send(encode_control_error(125, "copy: opening a stream: " + ec.message()));
            co_return;
        }
        cz_agent_CopyOut q{};
        put(q.path, path);
        put(q.container_id, live_.id);
        q.stream = stream;
        auto pending = call_in_background(q);
        co_await yield();
        // The guest ends the stream (eof) whether the copy succeeds or fails, then answers.
        std::vector<std::byte> buf(64 * 1024);
        for (;;) {
            auto [rec, n] = co_await live_.agent.async_read_stream(stream, buf, sv_tuple);
            if (n > 0)
                co_await c->send(
                    encode_control_frame(control_type::stdout_data, bytes_view(buf.data(), n)));
            if (rec) break;
        }
        co_await wait_answer(pending);
        live_.agent.close_stream(stream);
        co_await c->send(answer_frame(*pending));
    }

    // CopyIn under `path`: the client's stdin_data frames are the archive, stdin_eof its end.
    asio::awaitable<void> copy_in(std::shared_ptr<connection> c, const std::string& path) {
        const std::uint32_t stream = next_stream_++;
        std::error_code ec;
        live_.agent.open_stream(stream, ec);
        if (ec) {
            co_await c->send(encode_control_error(125, "copy: opening a stream: " + ec.message()));
            co_return;
        }
        cz_agent_CopyIn q{};
        put(q.path, path);
        put(q.container_id, live_.id);
        q.stream = stream;
        auto pending = call_in_background(q);
        co_await yield();
        bool ended = false;
        for (;;) {
            // A client that goes away before stdin_eof ends the archive where it stopped.
            auto f = co_await c->read();
            if (!f || f->first != control_type::stdin_data) break;
            if (ended) continue; // the guest's stream failed: read on to the client's end
            auto [wec, n] = co_await live_.agent.async_write_stream(stream, as_bytes(f->second),
                                                                    false, sv_tuple);
            (void)n;
            if (wec) ended = true;
        }
        if (!ended) co_await live_.agent.async_write_stream(stream, {}, true, sv_tuple);
        co_await wait_answer(pending);
        live_.agent.close_stream(stream);
        co_await c->send(answer_frame(*pending));
    }

    // docker stop: the stop signal, SIGKILL after the timeout, then the VM's power. The run ends
    // (and the io_context with it) as soon as the process has exited, cutting this short.
    asio::awaitable<void> stop(std::chrono::seconds timeout) {
        int sig = live_.stop_signal.empty() ? SIGTERM : parse_signal(live_.stop_signal);
        co_await kill(sig == 0 ? SIGTERM : sig, false);
        asio::steady_timer t(live_.io);
        t.expires_after(timeout);
        co_await t.async_wait(sv_tuple);
        co_await kill(SIGKILL, true);
        t.expires_after(std::chrono::seconds(10));
        co_await t.async_wait(sv_tuple);
        if (live_.vm.running())
            co_await live_.vm.async_stop(vm::stop_options{std::chrono::milliseconds(0)}, sv_tuple);
    }

    asio::awaitable<void> exec(std::shared_ptr<connection> c, const exec_request& r) {
        std::string config, bad;
        try {
            config = exec_process_json(live_.spec_json, r);
        } catch (const std::exception& e) {
            bad = std::string("exec: ") + e.what();
        }
        if (!bad.empty()) {
            co_await c->send(encode_control_error(125, bad));
            co_return;
        }
        auto pid = "exec-" + std::to_string(++execs_);
        const std::uint32_t out = next_stream_++;
        const std::uint32_t err = r.terminal ? 0 : next_stream_++;
        const std::uint32_t in = !r.interactive ? 0 : r.terminal ? out : next_stream_++;
        std::error_code ec;
        live_.agent.open_stream(out, ec);
        if (!ec && err) live_.agent.open_stream(err, ec);
        if (!ec && in && in != out) live_.agent.open_stream(in, ec);
        if (ec) {
            co_await c->send(encode_control_error(125, "exec: opening streams: " + ec.message()));
            co_return;
        }
        cz_agent_CreateProcess create{};
        put(create.container_id, live_.id);
        put(create.process_id, pid);
        create.config.data = reinterpret_cast<const std::byte*>(config.data());
        create.config.size = static_cast<pb_size_t>(config.size());
        create.terminal = r.terminal;
        create.stdout_stream = out;
        create.stderr_stream = err;
        create.stdin_stream = in;
        cz_agent_StartProcess start{};
        put(start.container_id, live_.id);
        put(start.process_id, pid);
        // Both in one round trip: cz-init takes requests in the order they arrive, so Start finds
        // the process Create made (or fails after it, and Create's error is the one told).
        using namespace asio::experimental::awaitable_operators;
        auto [created, started] =
            co_await (detail::ask(live_.agent, create) && detail::ask(live_.agent, start));
        int code = 0;
        std::string failure;
        if (created.ec) {
            code = 125;
            failure = describe(created.ec, created.r);
        } else if (started.ec) {
            code = 125;
            const auto& sr = started.r;
            if (sr.which_result == cz_agent_Response_error_tag) {
                if (sr.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND) code = 127;
                if (sr.result.error.code == cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION)
                    code = 126;
            }
            failure = describe(started.ec, sr);
        }
        if (!failure.empty()) {
            co_await c->send(encode_control_error(code, failure));
            co_await delete_process(pid);
            close_streams(out, err, in);
            co_return;
        }
        co_await c->send(encode_control_frame(control_type::started));
        auto done = std::make_shared<bool>(false);
        asio::co_spawn(live_.io, input(c, pid, in, done), asio::detached);
        auto pump = [this, c](std::uint32_t stream, control_type type) -> asio::awaitable<void> {
            std::vector<std::byte> buf(64 * 1024);
            for (;;) {
                auto [ec, n] = co_await live_.agent.async_read_stream(stream, buf, sv_tuple);
                if (n > 0) co_await c->send(encode_control_frame(type, bytes_view(buf.data(), n)));
                if (ec) break;
            }
        };
        // Asked now and answered when the process exits (cz-init sends a process's output before
        // its exit), so that the exit code needs no round trip of its own once the output ends.
        cz_agent_WaitProcess wait{};
        put(wait.container_id, live_.id);
        put(wait.process_id, pid);
        detail::rpc_answer waited;
        if (err)
            waited =
                co_await (pump(out, control_type::stdout_data) &&
                          pump(err, control_type::stderr_data) && detail::ask(live_.agent, wait));
        else
            waited =
                co_await (pump(out, control_type::stdout_data) && detail::ask(live_.agent, wait));
        const auto& [wec, wr] = waited;
        *done = true;
        if (wec)
            co_await c->send(encode_control_error(125, "exec: waiting: " + describe(wec, wr)));
        else
            co_await c->send(encode_control_frame(
                control_type::exit,
                as_bytes(encode_i32(static_cast<std::int32_t>(wr.result.wait_process.status)))));
        co_await delete_process(pid);
        close_streams(out, err, in);
    }

    // The client's frames during an exec: stdin, its end, terminal sizes.
    asio::awaitable<void> input(std::shared_ptr<connection> c, std::string pid, std::uint32_t in,
                                std::shared_ptr<bool> done) {
        bool ended = in == 0;
        for (;;) {
            auto f = co_await c->read();
            if (!f || *done) break;
            auto& [type, payload] = *f;
            if (type == control_type::stdin_data && !ended) {
                auto [ec, n] =
                    co_await live_.agent.async_write_stream(in, as_bytes(payload), false, sv_tuple);
                (void)n;
                if (ec) ended = true;
            } else if (type == control_type::stdin_eof && !ended) {
                ended = true;
                co_await live_.agent.async_write_stream(in, {}, true, sv_tuple);
            } else if (type == control_type::resize) {
                std::uint16_t rows = 0, cols = 0;
                std::error_code ec;
                decode_resize(as_bytes(payload), rows, cols, ec);
                if (ec) continue;
                cz_agent_ResizeProcess rz{};
                put(rz.container_id, live_.id);
                put(rz.process_id, pid);
                rz.rows = rows;
                rz.columns = cols;
                co_await live_.agent.async_call(rz, sv_tuple);
            }
        }
        // The client went away (or the exec ended): its input ends, the process goes on.
        if (!ended && !*done) co_await live_.agent.async_write_stream(in, {}, true, sv_tuple);
    }

    asio::awaitable<void> delete_process(const std::string& pid) {
        cz_agent_DeleteProcess del{};
        put(del.container_id, live_.id);
        put(del.process_id, pid);
        co_await live_.agent.async_call(del, sv_tuple);
    }

    void close_streams(std::uint32_t out, std::uint32_t err, std::uint32_t in) {
        live_.agent.close_stream(out);
        if (err) live_.agent.close_stream(err);
        if (in && in != out) live_.agent.close_stream(in);
    }

    static std::string describe(std::error_code ec, const agent::response& r) {
        if (r.which_result == cz_agent_Response_error_tag)
            return std::string(agent::get_string(r.result.error.message));
        return ec.message();
    }

    live_container& live_;
    asio::local::stream_protocol::acceptor acceptor_;
    asio::signal_set signals_{live_.io, SIGTERM, SIGINT, SIGHUP};
    std::uint32_t next_stream_ = 16;
    unsigned execs_ = 0;
    bool stopping_ = false;
};

// Writes all of `data` to a pipe (the parent waiting for the start).
inline void tell_parent(int& fd, const std::string& data) {
    if (fd < 0) return;
    std::string_view rest = data;
    while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
    fd = -1;
}

// Closes every descriptor but 0-2 and those in `keep`.
inline void close_other_fds(std::initializer_list<int> keep) {
    std::vector<int> fds;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (auto* e = ::readdir(d)) {
            char* end = nullptr;
            long fd = std::strtol(e->d_name, &end, 10);
            if (*end != '\0' || end == e->d_name || fd <= 2 || fd == ::dirfd(d)) continue;
            fds.push_back(static_cast<int>(fd));
        }
        ::closedir(d);
    }
    for (int fd : fds)
        if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
}

// The supervisor's life, in the forked process: returns its exit status.
inline int supervise(const detached_options& o, const std::string& id, int ready_fd) {
    auto dir = container_dir(o.run.root, id);
    std::error_code ec;
    std::string why;
    update_state(
        dir, [](container_state& s) { s.supervisor_pid = ::getpid(); }, ec);

    auto fail_start = [&](int code, const std::string& message) {
        update_state(
            dir,
            [&](container_state& s) {
                s.status = container_status::exited;
                s.exit_code = code;
                s.finished = now_ns();
                s.error = message;
            },
            ec);
        tell_parent(ready_fd, encode_control_error(code, message));
        return 1;
    };

    log_writer log(dir, o.log, ec);
    if (ec) return fail_start(125, "the log in " + dir.string() + ": " + ec.message());

    unique_fd dir_fd;
    auto address = control_address(dir, dir_fd, ec);
    unique_fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!ec && !listener) ec = last_system_error();
    if (!ec) {
        mode_t old = ::umask(0177); // the socket: 0600
        if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) !=
                0 ||
            ::listen(listener.get(), 64) != 0)
            ec = last_system_error();
        ::umask(old);
    }
    if (ec) return fail_start(125, "the control socket in " + dir.string() + ": " + ec.message());

    run_options ro = o.run;
    ro.name = id.substr(0, 12);
    ro.stdin_fd = -1;
    int keep_open[2] = {-1, -1};
    if (o.open_stdin && ::pipe2(keep_open, O_CLOEXEC) == 0) ro.stdin_fd = keep_open[0];
    ro.stdout_fd = -1;
    ro.stderr_fd = -1;
    ro.raw_terminal = false;
    ro.forward_signals = false;
    ro.on_progress = nullptr;
    bool started = false;
    ro.on_output = [&](int stream, bytes_view data) {
        std::error_code lec;
        log.write(stream, data, now_ns(), lec); // a full disk loses output, not the container
    };
    ro.on_started = [&](live_container& live) {
        started = true;
        std::vector<std::string> argv;
        auto spec = nlohmann::json::parse(live.spec_json, nullptr, false);
        if (!spec.is_discarded() && spec.contains("process"))
            argv = spec["process"].value("args", std::vector<std::string>{});
        std::error_code sec;
        update_state(
            dir,
            [&](container_state& s) {
                s.status = container_status::running;
                s.started = now_ns();
                s.command = argv;
            },
            sec);
        // Kept by the run, which destroys it before its io_context.
        auto server = std::make_shared<control_server>(live, listener.release());
        server->start();
        live.attachment = server;
        tell_parent(ready_fd, encode_control_frame(control_type::ok));
    };
    auto result = run(ro, ec, &why);
    ::unlink((dir / "control.sock").c_str());
    // The caller's error for 126 and 127 says what ec says; for 125 it is start_failed, so the
    // reason goes into the message.
    if (!started)
        return fail_start(exit_code_for(ec), why.empty() ? ec.message()
                                             : exit_code_for(ec) != 125
                                                 ? why
                                                 : why + ": " + ec.message());
    update_state(
        dir,
        [&](container_state& s) {
            s.status = container_status::exited;
            s.finished = now_ns();
            s.oom_killed = result.oom_killed;
            s.exit_code = ec ? 137 : result.exit_code;
            if (ec) s.error = why + ": " + ec.message();
        },
        ec);
    if (o.auto_remove) {
        auto doomed = containers_dir(o.run.root) / (".removing-" + id);
        if (::rename(dir.c_str(), doomed.c_str()) == 0) std::filesystem::remove_all(doomed, ec);
    }
    return 0;
}

} // namespace detail

CZ_DECL std::string start_detached(const detached_options& o, std::error_code& ec,
                                   std::string* detail, int* exit_code) {
    ec.clear();
    if (exit_code) *exit_code = 125;
    container_state s;
    s.id = new_container_id();
    s.name = o.name;
    s.image = o.run.image;
    s.command = o.run.spec.args;
    s.auto_remove = o.auto_remove;
    if (!s.name.empty() && !valid_container_name(s.name)) {
        ec = make_error_code(errc::bad_option);
        if (detail) *detail = "name \"" + s.name + "\"";
        return {};
    }
    // Relative paths would not survive the supervisor's chdir("/").
    detached_options absolute = o;
    absolute.run.root = std::filesystem::absolute(o.run.root, ec);
    if (!ec && !o.run.init.empty()) absolute.run.init = std::filesystem::absolute(o.run.init, ec);
    std::error_code exists_ec;
    if (!ec && !o.run.kernel.empty() &&
        (o.run.kernel.find('/') != std::string::npos ||
         std::filesystem::exists(o.run.kernel, exists_ec)))
        absolute.run.kernel = std::filesystem::absolute(o.run.kernel, ec).string();
    if (ec) {
        if (detail) *detail = "the current directory";
        return {};
    }
    auto lock = create_container(absolute.run.root, s, ec, detail);
    if (ec) return {};
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
        ec = last_system_error();
        return {};
    }
    pid_t child = ::fork();
    if (child < 0) {
        ec = last_system_error();
        ::close(ready[0]);
        ::close(ready[1]);
        return {};
    }
    if (child == 0) {
        // The first child: a new session, then the supervisor as its child, which init (or the
        // nearest subreaper) adopts once this one exits.
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
        int null = ::open("/dev/null", O_RDWR);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
            if (null > 2) ::close(null);
        }
        detail::close_other_fds({ready[1], lock.get()});
        // The supervisor holds no directory busy; its paths were made absolute for that.
        if (::chdir("/") != 0) ::_exit(1);
        ::signal(SIGPIPE, SIG_IGN);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH})
            ::signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        int rc = 1;
        try {
            rc = detail::supervise(absolute, s.id, ready[1]);
        } catch (...) {
        }
        ::_exit(rc);
    }
    ::close(ready[1]);
    lock.reset();
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    // The supervisor's word: ok, or the error that ended the start.
    std::string bytes;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(ready[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        bytes.append(buf, static_cast<std::size_t>(n));
        if (bytes.size() > 2 * max_control_message) break;
    }
    ::close(ready[0]);
    control_frame f;
    std::error_code fec;
    auto n = decode_control_frame(as_bytes(bytes), true, f, fec);
    if (!fec && n > 0 && f.type == control_type::ok) return s.id;
    if (!fec && n > 0 && f.type == control_type::error) {
        auto e = decode_control_error(f.payload, fec);
        if (!fec) {
            ec = make_error_code(e.exit_code == 127   ? errc::command_not_found
                                 : e.exit_code == 126 ? errc::command_not_executable
                                                      : errc::start_failed);
            if (detail) *detail = e.message;
            if (exit_code) *exit_code = e.exit_code;
            return {};
        }
    }
    ec = make_error_code(errc::start_failed);
    if (detail) *detail = "the supervisor of " + s.id.substr(0, 12) + " ended before the start";
    return {};
}

namespace detail {

// The supervisor still holds its lock (a container removed at its exit, --rm, has no lock left
// to hold: supervisor_alive() would take that for a lock held).
inline bool supervisor_lingers(const std::filesystem::path& dir) {
    std::error_code ec;
    return std::filesystem::exists(dir / "supervisor.lock", ec) && supervisor_alive(dir);
}

inline container_state running_container(const std::filesystem::path& root, std::string_view ref,
                                         std::error_code& ec, std::string* detail) {
    auto s = find_container(root, ref, ec, detail);
    if (!ec && s.status == container_status::exited) {
        ec = make_error_code(errc::not_running);
        if (detail) *detail = s.name;
    }
    return s;
}

} // namespace detail

CZ_DECL void kill_container(const std::filesystem::path& root, std::string_view ref, int sig,
                            std::error_code& ec, std::string* detail) {
    auto s = detail::running_container(root, ref, ec, detail);
    if (ec) return;
    detail::request(container_dir(root, s.id),
                    encode_control_frame(control_type::kill, as_bytes(encode_i32(sig))), ec,
                    detail);
    if (ec && detail) *detail = s.name + (detail->empty() ? "" : ": " + *detail);
}

CZ_DECL container_state wait_container(const std::filesystem::path& root, std::string_view ref,
                                       std::error_code& ec, std::string* detail) {
    auto s = find_container(root, ref, ec, detail);
    if (ec || s.status == container_status::exited) return s;
    auto dir = container_dir(root, s.id);
    std::error_code cec;
    auto c = detail::connect_control(dir, cec);
    std::optional<int> exit_code;
    if (c) {
        detail::send_all(c.get(), encode_control_frame(control_type::wait), cec);
        control_reader reader(true);
        std::optional<control_frame> f;
        if (!cec) f = detail::receive_frame(c.get(), reader, cec, nullptr);
        if (!cec && f && f->type == control_type::exit) {
            auto code = decode_i32(f->payload, cec);
            if (!cec && code >= 0 && code <= 255) exit_code = code;
        }
        detail::wait_for_close(c.get());
    }
    // The socket closes with the supervisor's process; its lock too, a moment later.
    while (detail::supervisor_lingers(dir))
        ::usleep(20000);
    auto last = load_container(dir, ec, detail);
    std::error_code gone;
    if (ec && exit_code && !std::filesystem::exists(dir, gone)) {
        // Removed at its exit (--rm): what the supervisor said before it went is all there is.
        ec.clear();
        if (detail) detail->clear();
        s.status = container_status::exited;
        s.exit_code = *exit_code;
        return s;
    }
    return last;
}

CZ_DECL container_state stop_container(const std::filesystem::path& root, std::string_view ref,
                                       std::chrono::seconds timeout, std::error_code& ec,
                                       std::string* detail) {
    auto s = find_container(root, ref, ec, detail);
    if (ec || s.status == container_status::exited) return s;
    auto dir = container_dir(root, s.id);
    auto c = detail::request(
        dir,
        encode_control_frame(control_type::stop,
                             as_bytes(encode_i32(static_cast<std::int32_t>(timeout.count())))),
        ec, detail);
    if (ec == errc::not_running) ec.clear(); // it ended meanwhile
    if (ec) return s;
    if (c) detail::wait_for_close(c.get());
    while (detail::supervisor_lingers(dir))
        ::usleep(20000);
    return load_container(dir, ec, detail);
}

CZ_DECL container_stats stats_container(const std::filesystem::path& root, std::string_view ref,
                                        std::error_code& ec, std::string* detail) {
    auto s = detail::running_container(root, ref, ec, detail);
    if (ec) return {};
    auto c = detail::connect_control(container_dir(root, s.id), ec);
    if (ec) return {};
    detail::send_all(c.get(), encode_control_frame(control_type::stats), ec);
    if (ec) return {};
    control_reader reader(true);
    auto f = detail::receive_frame(c.get(), reader, ec, detail);
    if (ec) return {};
    if (!f) {
        ec = make_error_code(errc::not_running);
        if (detail) *detail = s.name;
        return {};
    }
    if (f->type == control_type::error) {
        auto e = decode_control_error(f->payload, ec);
        if (!ec) {
            ec = make_error_code(errc::not_running);
            if (detail) *detail = e.message;
        }
        return {};
    }
    if (f->type != control_type::stats_result) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = "answer of type " + std::to_string(int(f->type)) + ", not stats";
        return {};
    }
    return stats_from_json(as_chars(f->payload), ec, detail);
}

CZ_DECL void rm_container(const std::filesystem::path& root, std::string_view ref, bool force,
                          std::error_code& ec, std::string* detail) {
    auto s = find_container(root, ref, ec, detail);
    if (ec) return;
    if (s.status != container_status::exited) {
        if (!force) {
            ec = make_error_code(errc::still_running);
            if (detail) *detail = s.name;
            return;
        }
        stop_container(root, s.id, std::chrono::seconds(0), ec, detail);
        if (ec) return;
    }
    remove_container(root, s, ec);
    if (ec && detail) *detail = s.name;
}

namespace detail {

// SIGWINCH, noticed by exec_in_container's poll loop through a pipe.
inline int& winch_pipe() {
    static int fd = -1;
    return fd;
}
inline void on_winch(int) {
    int saved = errno;
    if (winch_pipe() >= 0) (void)!::write(winch_pipe(), "w", 1);
    errno = saved;
}

inline void write_fd(int fd, bytes_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        if (n <= 0) return; // a reader that went away: the rest is dropped
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

} // namespace detail

CZ_DECL int exec_in_container(const std::filesystem::path& root, std::string_view ref,
                              const exec_request& r, int stdin_fd, int stdout_fd, int stderr_fd,
                              std::error_code& ec, std::string* detail) {
    auto s = detail::running_container(root, ref, ec, detail);
    if (ec) return 125;
    auto c = detail::connect_control(container_dir(root, s.id), ec);
    if (ec) {
        if (detail) *detail = s.name;
        return 125;
    }
    exec_request req = r;
    req.interactive = stdin_fd >= 0;
    winsize ws{};
    const bool tty_in = req.terminal && stdin_fd >= 0 && ::isatty(stdin_fd);
    if (req.terminal && ::ioctl(stdout_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        req.rows = ws.ws_row;
        req.columns = ws.ws_col;
    }
    detail::send_all(c.get(), encode_control_frame(control_type::exec, as_bytes(to_json(req))), ec);
    if (ec) return 125;

    control_reader reader(true);
    auto first = detail::receive_frame(c.get(), reader, ec, detail);
    if (ec) return 125;
    if (!first) {
        ec = make_error_code(errc::not_running);
        if (detail) *detail = s.name;
        return 125;
    }
    if (first->type == control_type::error) {
        auto e = decode_control_error(first->payload, ec);
        if (ec) return 125;
        ec = make_error_code(e.exit_code == 127   ? errc::command_not_found
                             : e.exit_code == 126 ? errc::command_not_executable
                                                  : errc::start_failed);
        if (detail) *detail = e.message;
        return e.exit_code;
    }
    if (first->type != control_type::started) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = "expected started, got type " + std::to_string(int(first->type));
        return 125;
    }

    termios saved{};
    bool raw = false;
    if (tty_in && ::tcgetattr(stdin_fd, &saved) == 0) {
        termios t = saved;
        ::cfmakeraw(&t);
        raw = ::tcsetattr(stdin_fd, TCSADRAIN, &t) == 0;
    }
    int winch[2] = {-1, -1};
    struct sigaction old_winch {};
    if (req.terminal && ::pipe2(winch, O_CLOEXEC | O_NONBLOCK) == 0) {
        detail::winch_pipe() = winch[1];
        struct sigaction sa {};
        sa.sa_handler = detail::on_winch;
        ::sigaction(SIGWINCH, &sa, &old_winch);
    }

    int code = 125;
    bool input_open = stdin_fd >= 0;
    std::vector<char> buf(65536);
    for (;;) {
        std::error_code fec;
        auto f = reader.next(fec, detail);
        if (fec) {
            ec = fec;
            break;
        }
        if (f) {
            if (f->type == control_type::stdout_data) {
                detail::write_fd(stdout_fd, f->payload);
            } else if (f->type == control_type::stderr_data) {
                detail::write_fd(stderr_fd, f->payload);
            } else if (f->type == control_type::exit) {
                code = decode_i32(f->payload, ec);
                if (ec && detail) *detail = "an exit frame that does not decode";
                if (!ec && (code < 0 || code > 255)) {
                    ec = make_error_code(errc::bad_frame);
                    if (detail) *detail = "exit code " + std::to_string(code);
                }
                if (ec) code = 125;
                break;
            } else if (f->type == control_type::error) {
                auto e = decode_control_error(f->payload, ec);
                if (!ec) {
                    ec = make_error_code(errc::start_failed);
                    if (detail) *detail = e.message;
                }
                break;
            } else {
                ec = make_error_code(errc::bad_frame);
                if (detail) *detail = "unexpected frame type " + std::to_string(int(f->type));
                break;
            }
            continue;
        }
        pollfd p[3] = {
            {c.get(), POLLIN, 0}, {input_open ? stdin_fd : -1, POLLIN, 0}, {winch[0], POLLIN, 0}};
        if (::poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            ec = last_system_error();
            break;
        }
        if (p[2].revents & POLLIN) {
            char w[64];
            while (::read(winch[0], w, sizeof w) > 0) {
            }
            winsize now{};
            if (::ioctl(stdout_fd, TIOCGWINSZ, &now) == 0 && now.ws_row > 0)
                detail::send_all(c.get(), encode_resize(now.ws_row, now.ws_col), ec);
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(stdin_fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                input_open = false;
                detail::send_all(c.get(), encode_control_frame(control_type::stdin_eof), ec);
            } else {
                detail::send_all(
                    c.get(),
                    encode_control_frame(
                        control_type::stdin_data,
                        as_bytes(std::string_view(buf.data(), static_cast<std::size_t>(n)))),
                    ec);
            }
            if (ec == std::errc::broken_pipe) ec.clear(); // the process is gone: the rest is moot
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::recv(c.get(), buf.data(), buf.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ec = make_error_code(errc::bad_frame);
                if (detail)
                    *detail = "the supervisor's connection ended before the exec's exit code";
                break;
            }
            reader.feed(as_bytes(std::string_view(buf.data(), static_cast<std::size_t>(n))));
        }
        if (ec) break;
    }
    if (raw) ::tcsetattr(stdin_fd, TCSADRAIN, &saved);
    if (winch[0] >= 0) {
        ::sigaction(SIGWINCH, &old_winch, nullptr);
        detail::winch_pipe() = -1;
        ::close(winch[0]);
        ::close(winch[1]);
    }
    return ec ? 125 : code;
}

} // namespace cz::container
