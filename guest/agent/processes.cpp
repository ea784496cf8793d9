#include "processes.hpp"

#include "../init/log.hpp"
#include "copy.hpp"
#include "rpc.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/spec.hpp"
#include "runtime/terminal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace cz::guest {

namespace {

using agent::get_string;

// How much one read of a process's output takes: bounded by the stream's credit and the frame.
// The output pipes are made this large too (F_SETPIPE_SZ; 64 KiB by default): a producer that
// writes fast fills more of the pipe between two of our reads, so each read and each frame
// carries more, for as many system calls.
constexpr std::size_t output_chunk = 256u << 10;

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void fail(agent::response& resp, cz_agent_ErrorCode code, const std::string& message, int err = 0) {
    set_error(resp, code, err, message);
}

// A runtime failure as an answer. The program itself could not be executed (e.exec_failed):
// NOT_FOUND when it does not exist (the host reports 127, as docker does), FAILED_PRECONDITION
// when it is not executable (126); both carry the errno. A bad spec is INVALID_ARGUMENT, a
// failed setup step SYSTEM with its errno.
void fail_runtime(agent::response& resp, const error& e) {
    bool sys =
        e.code.category() == std::system_category() || e.code.category() == std::generic_category();
    cz_agent_ErrorCode code =
        sys ? cz_agent_ErrorCode_ERROR_SYSTEM : cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT;
    if (e.exec_failed)
        code = e.code.value() == ENOENT ? cz_agent_ErrorCode_ERROR_NOT_FOUND
                                        : cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION;
    else if (e.code == guest::errc::setup_failed || e.code == guest::errc::cgroup_unavailable)
        code = cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION;
    set_error(resp, code, sys ? e.code.value() : 0, e.message);
}

// A pipe whose both ends are close-on-exec: the runtime dup2()s the child's end onto 0, 1 or 2.
bool make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_end = unique_fd(fds[0]);
    write_end = unique_fd(fds[1]);
    return true;
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// What a copy helper reports when it fails: its answer's code and errno, then the message.
struct copy_report {
    std::int32_t code;
    std::int32_t sys_errno;
    char message[1016];
};

// Forks a copy helper: `data` becomes its fd `data_target` (0: it reads the archive, 1: it
// writes one), `report` its fd 2, every other fd of cz-init is closed in it (a copy of another
// process's pipe end would keep that pipe open), and `work(copy_error&)` runs. The helper exits 0
// when work succeeded, else 1 after writing a copy_report.
template <class Work>
pid_t fork_copy_helper(int data, int data_target, int report, Work work) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    // A host that went away is a write error the helper reports, not a signal that kills it.
    ::signal(SIGPIPE, SIG_IGN);
    if (::dup2(data, data_target) < 0 || ::dup2(report, 2) < 0) ::_exit(2);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    copy_error err;
    bool ok = false;
    try {
        ok = work(err);
    } catch (const std::exception& e) {
        err = {cz_agent_ErrorCode_ERROR_INTERNAL, 0, e.what()};
    }
    if (!ok) {
        copy_report r{};
        r.code = err.code;
        r.sys_errno = err.sys_errno;
        std::size_t n = std::min(err.message.size(), sizeof r.message);
        std::memcpy(r.message, err.message.data(), n);
        [[maybe_unused]] auto w = ::write(2, &r, offsetof(copy_report, message) + n);
    }
    ::_exit(ok ? 0 : 1);
}

} // namespace

template <class F>
void process_table::for_each_process(F f) {
    for (auto& [k, p] : processes_)
        f(*p);
    for (auto& [k, p] : copies_)
        f(*p);
}

process_table::process_table(event_loop& loop, std::string cgroup_root)
    : loop_(loop), cgroup_root_(std::move(cgroup_root)) {}

process_table::~process_table() {
    for_each_process([this](process& p) {
        loop_.unwatch(p.out.fd.get());
        loop_.unwatch(p.err.fd.get());
        loop_.unwatch(p.in.fd.get());
    });
    loop_.unwatch(inotify_.get());
}

void process_table::retire(std::uint32_t stream) {
    if (stream == 0 || streams_.erase(stream) == 0) return;
    retired_.push_back(stream);
    if (retired_.size() > 4096) retired_.pop_front();
}

bool process_table::retired(std::uint32_t stream) const {
    return std::find(retired_.begin(), retired_.end(), stream) != retired_.end();
}

void process_table::attach(host_link* link, std::uint32_t send_window,
                           std::uint32_t receive_window) {
    link_ = link;
    send_window_ = send_window;
    receive_window_ = receive_window;
    if (link_) resume_outputs();
}

process_table::process* process_table::find(std::string_view container_id,
                                            std::string_view process_id) {
    auto it = processes_.find(key(container_id, process_id));
    return it == processes_.end() ? nullptr : it->second.get();
}

void process_table::create(const cz_agent_CreateProcess& req, agent::response& resp) {
    std::string cid(get_string(req.container_id)), pid(get_string(req.process_id));
    if (cid.empty() || pid.empty())
        return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                    "container and process ids are required");
    if (find(cid, pid))
        return fail(resp, cz_agent_ErrorCode_ERROR_ALREADY_EXISTS,
                    "process " + cid + "/" + pid + " exists");
    // The container's cgroup is named after it.
    if (cid == "." || cid == ".." || cid.find('/') != std::string::npos)
        return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                    "container id \"" + cid + "\": must not be . or .. or contain /");
    auto p = std::make_unique<process>();
    p->container_id = cid;
    p->process_id = pid;
    p->is_container_init = cid == pid;
    std::string_view config(reinterpret_cast<const char*>(req.config.data), req.config.size);
    error err;
    if (p->is_container_init) {
        p->spec = parse_spec(config, err);
    } else {
        auto* init = find(cid, cid);
        if (!init || !init->owned || init->st != process::state::running)
            return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no running container " + cid);
        p->exec_process = parse_process(config, err);
    }
    if (err) return fail_runtime(resp, err);
    p->terminal = p->spec ? p->spec->process.terminal : p->exec_process->terminal;
    if (req.terminal != p->terminal)
        return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                    std::string("terminal is ") + (req.terminal ? "true" : "false") +
                        " but the config's process.terminal is " +
                        (p->terminal ? "true" : "false"));

    // The stream ids: new, and distinct, except that a terminal's input and output share one.
    std::uint32_t ids[] = {req.stdin_stream, req.stdout_stream, req.stderr_stream};
    if (p->terminal) {
        if (req.stdout_stream == 0 || req.stderr_stream != 0 ||
            (req.stdin_stream != 0 && req.stdin_stream != req.stdout_stream))
            return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                        "a terminal has one stream: stdout_stream, and stdin_stream the same or "
                        "0; stderr_stream 0");
        ids[0] = 0; // counted once, as stdout
    }
    for (int i = 0; i < 3; ++i) {
        if (ids[i] == 0) continue;
        if (streams_.count(ids[i]) || (i > 0 && ids[i] == ids[i - 1]) ||
            (i == 2 && ids[2] == ids[0]))
            return fail(resp, cz_agent_ErrorCode_ERROR_ALREADY_EXISTS,
                        "stream " + std::to_string(ids[i]) + " is in use");
    }

    if (req.stdin_stream) {
        p->in.stream = req.stdin_stream;
        p->in.buffer = std::make_unique<agent::stream_buffer>(receive_window_);
    }
    for (auto [stream, o] :
         {std::pair{req.stdout_stream, &p->out}, std::pair{req.stderr_stream, &p->err}}) {
        if (!stream) continue;
        o->stream = stream;
        o->credit.emplace(send_window_);
    }
    // stdio without a terminal: a pipe per stream, /dev/null for 0. With one, the runtime makes
    // the pty in the container and hands back its master when the process starts.
    if (!p->terminal) {
        auto devnull = [](int flags) { return unique_fd(::open("/dev/null", flags | O_CLOEXEC)); };
        bool ok = true;
        if (req.stdin_stream)
            ok = ok && make_pipe(p->child_in, p->in.fd);
        else
            p->child_in = devnull(O_RDONLY);
        for (auto [ours, theirs] :
             {std::pair{&p->out, &p->child_out}, std::pair{&p->err, &p->child_err}}) {
            if (ours->stream) {
                ok = ok && make_pipe(ours->fd, *theirs);
                if (ok) ::fcntl(ours->fd.get(), F_SETPIPE_SZ, static_cast<int>(output_chunk));
            } else
                *theirs = devnull(O_WRONLY);
        }
        if (!ok || !p->child_in || !p->child_out || !p->child_err)
            return fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "making the stdio pipes", errno);
    }
    for (auto id : ids)
        if (id) streams_[id] = p.get();
    processes_[key(cid, pid)] = std::move(p);
    resp.which_result = cz_agent_Response_done_tag;
}

void process_table::start(const cz_agent_StartProcess& req, agent::response& resp) {
    auto* p = find(get_string(req.container_id), get_string(req.process_id));
    if (!p) return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
    if (p->st != process::state::created)
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION, "already started");
    stdio_fds stdio{p->child_in.get(), p->child_out.get(), p->child_err.get()};
    error err;
    if (p->is_container_init) {
        spawn_options opts;
        opts.cgroup_root = cgroup_root_;
        opts.id = p->container_id;
        p->owned = spawn(*p->spec, stdio, opts, err);
        if (!err) {
            p->pid = p->owned->init.pid;
            p->pty_master = std::move(p->owned->init.terminal);
            watch_oom(*p);
        }
    } else {
        auto* init = find(p->container_id, p->container_id);
        if (!init || !init->owned)
            return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "the container is gone");
        if (!init->owned->cgroup_path.empty()) p->oom_kills_at_start = oom_kills(*init);
        auto handle = exec(*init->owned, *p->exec_process, init->spec->seccomp, stdio, err);
        if (!err) {
            p->pid = handle.pid;
            p->pty_master = std::move(handle.terminal);
        }
    }
    if (err) return fail_runtime(resp, err);
    if (p->terminal) {
        // Input and output get fds of their own (the event loop watches each fd for one
        // direction); closing either leaves the master, and the terminal, open.
        if (!p->pty_master) {
            ::kill(p->pid, SIGKILL);
            p->st = process::state::running; // the reaper finishes it
            return fail(resp, cz_agent_ErrorCode_ERROR_INTERNAL,
                        "the runtime made no terminal for " + p->container_id + "/" +
                            p->process_id);
        }
        p->out.fd.reset(::fcntl(p->pty_master.get(), F_DUPFD_CLOEXEC, 3));
        if (p->in.stream) p->in.fd.reset(::fcntl(p->pty_master.get(), F_DUPFD_CLOEXEC, 3));
        if (!p->out.fd || (p->in.stream && !p->in.fd)) {
            int e = errno;
            ::kill(p->pid, SIGKILL);
            p->out.fd.reset();
            p->in.fd.reset();
            p->st = process::state::running; // the reaper finishes it
            return fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "dup of the pty master", e);
        }
    }
    // The child has its copies; ours would keep the pipes open after it exits.
    p->child_in.reset();
    p->child_out.reset();
    p->child_err.reset();
    p->st = process::state::running;
    if (p->in.fd) set_nonblocking(p->in.fd.get());
    for (auto* o : {&p->out, &p->err}) {
        if (!o->fd) continue;
        set_nonblocking(o->fd.get());
        watch_output(*p, *o);
    }
    pump_input(*p);
    resp.which_result = cz_agent_Response_start_process_tag;
    resp.result.start_process.pid = p->pid;
    log(log_level::debug, "started {}/{} as pid {}", p->container_id, p->process_id, p->pid);
}

void process_table::watch_output(process& p, output& o) {
    if (!o.fd || o.eof_sent) return;
    bool want = link_ && o.credit && o.credit->available() > 0;
    if (want == o.watching) return;
    o.watching = want;
    if (want)
        loop_.watch(o.fd.get(), EPOLLIN, [this, &p, &o](std::uint32_t) { pump_output(p, o); });
    else
        loop_.unwatch(o.fd.get());
}

void process_table::pump_output(process& p, output& o) {
    // Read after room for the frame's head: the link sends head and data as they lie.
    constexpr std::size_t room = agent::stream_data_head_max;
    if (!output_buffer_) output_buffer_ = std::make_unique<std::byte[]>(room + output_chunk);
    std::byte* buf = output_buffer_.get();
    while (link_ && link_->can_send() && o.fd && !o.eof_sent && o.credit->available() > 0) {
        std::size_t want = std::min<std::size_t>(output_chunk, o.credit->available());
        ssize_t n = ::read(o.fd.get(), buf + room, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) { // end of output (or a read error, which ends it too)
            link_->send_stream_data(o.stream, {}, true);
            o.eof_sent = true;
            loop_.unwatch(o.fd.get());
            o.watching = false;
            o.fd.reset();
            maybe_finish(p);
            return;
        }
        o.credit->take(static_cast<std::size_t>(n));
        if (p.copy) p.copy->bytes += static_cast<std::uint64_t>(n);
        link_->send_output(o.stream, std::span(buf, room + static_cast<std::size_t>(n)));
        // Less than asked for: the pipe is empty now, and epoll says when it is not (one read
        // that would fail with EAGAIN saved per wake-up).
        if (static_cast<std::size_t>(n) < want) break;
    }
    // Out of credit or the link is full: stop watching until a grant or resume_outputs().
    if (link_ && !link_->can_send()) {
        if (o.watching) loop_.unwatch(o.fd.get());
        o.watching = false;
        return;
    }
    watch_output(p, o);
}

void process_table::resume_outputs() {
    for_each_process([this](process& p) {
        if (p.st == process::state::created) return;
        for (auto* o : {&p.out, &p.err})
            if (o->fd && !o->eof_sent) pump_output(p, *o);
    });
}

void process_table::pump_input(process& p) {
    auto& in = p.in;
    if (!in.fd || p.st == process::state::created) return;
    while (in.buffer && in.buffer->held() > 0) {
        auto data = in.buffer->front();
        ssize_t n = ::write(in.fd.get(), data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            loop_.watch(in.fd.get(), EPOLLOUT, [this, &p](std::uint32_t) { pump_input(p); });
            return;
        }
        if (n < 0) { // the process closed its stdin: what it did not read is dropped
            log(log_level::debug, "stdin of {}/{}: {}", p.container_id, p.process_id,
                std::generic_category().message(errno));
            in.close_when_drained = true;
            std::uint32_t grant = in.buffer->consume(data.size());
            if (grant && link_) link_->send_stream_credit(in.stream, grant);
            break;
        }
        std::uint32_t grant = in.buffer->consume(static_cast<std::size_t>(n));
        if (grant && link_) link_->send_stream_credit(in.stream, grant);
    }
    loop_.unwatch(in.fd.get());
    if (in.close_when_drained || (in.buffer && in.buffer->finished())) end_input(p);
}

void process_table::end_input(process& p) {
    loop_.unwatch(p.in.fd.get());
    p.in.fd.reset();
    // A terminal's one stream carries its output too: it stays open until that has ended.
    if (p.in.stream != p.out.stream || p.out.eof_sent) retire(p.in.stream);
}

void process_table::on_stream_data(std::uint32_t stream, bytes_view data, bool eof,
                                   std::error_code& ec) {
    auto it = streams_.find(stream);
    if (it == streams_.end() && retired(stream)) {
        ec.clear(); // the process is gone or stopped reading: what the host still sends is dropped
        return;
    }
    if (it == streams_.end() || it->second->in.stream != stream || !it->second->in.buffer) {
        ec = agent::errc::bad_stream;
        return;
    }
    auto& p = *it->second;
    if (!p.in.fd && p.st != process::state::created) {
        ec.clear(); // stdin is closed (the process exited or stopped reading): dropped
        return;
    }
    p.in.buffer->push(data, eof, ec);
    if (ec) return;
    if (p.copy) p.copy->bytes += data.size();
    pump_input(p);
}

void process_table::on_stream_credit(std::uint32_t stream, std::uint32_t bytes,
                                     std::error_code& ec) {
    auto it = streams_.find(stream);
    if (it == streams_.end()) {
        // Credit for a stream that has just ended crosses its eof: harmless.
        if (retired(stream))
            ec.clear();
        else
            ec = agent::errc::bad_stream;
        return;
    }
    auto& p = *it->second;
    output* o = p.out.stream == stream ? &p.out : p.err.stream == stream ? &p.err : nullptr;
    if (!o || !o->credit) {
        ec = agent::errc::bad_stream;
        return;
    }
    o->credit->grant(bytes, ec);
    if (!ec && p.st != process::state::created) pump_output(p, *o);
}

void process_table::on_child_exit(pid_t pid, int wait_status) {
    process* found = nullptr;
    for_each_process([&](process& p) {
        if (p.pid == pid && p.st == process::state::running) found = &p;
    });
    if (!found) return;
    auto& p = *found;
    p.st = process::state::exited;
    p.exit_status = exit_status(wait_status);
    p.exited_at_ns = now_ns();
    log(log_level::debug, "{}/{} exited: {}", p.container_id, p.process_id, p.exit_status);
    if (auto* init = container_init(p); init && init->owned && !init->owned->cgroup_path.empty()) {
        // The count is raised before the kill's signal is sent: an OOM kill of this process is
        // in it by now.
        auto count = oom_kills(*init);
        p.oom_killed = p.exit_status == 128 + SIGKILL && count > p.oom_kills_at_start;
        report_oom(*init, count);
    }
    // Its stdin has no reader any more.
    if (p.in.fd) {
        loop_.unwatch(p.in.fd.get());
        p.in.fd.reset();
    }
    maybe_finish(p);
}

void process_table::maybe_finish(process& p) {
    if (p.st != process::state::exited) return;
    if ((p.out.fd && !p.out.eof_sent) || (p.err.fd && !p.err.eof_sent)) return;
    p.st = process::state::finished;
    retire(p.out.stream);
    retire(p.err.stream);
    retire(p.in.stream);
    if (!link_) return;
    if (p.copy) return answer_copy(p);
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_event_tag;
    m->kind.event.which_kind = cz_agent_Event_process_exited_tag;
    auto& e = m->kind.event.kind.process_exited;
    std::error_code ec;
    agent::set_string(e.container_id, p.container_id, ec);
    agent::set_string(e.process_id, p.process_id, ec);
    e.status = p.exit_status;
    e.exited_at_ns = p.exited_at_ns;
    e.oom_killed = p.oom_killed;
    link_->send(*m);
    for (auto id : p.waiters)
        answer_wait(id, p);
    p.waiters.clear();
}

void process_table::answer_wait(std::uint64_t id, const process& p) {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_response_tag;
    m->kind.response.id = id;
    m->kind.response.which_result = cz_agent_Response_wait_process_tag;
    m->kind.response.result.wait_process.status = p.exit_status;
    m->kind.response.result.wait_process.exited_at_ns = p.exited_at_ns;
    m->kind.response.result.wait_process.oom_killed = p.oom_killed;
    if (link_) link_->send(*m);
}

process_table::process* process_table::container_init(const process& p) {
    if (p.copy) return nullptr;
    if (p.is_container_init) return const_cast<process*>(&p);
    return find(p.container_id, p.container_id);
}

void process_table::watch_oom(process& init) {
    const auto& cgroup = init.owned->cgroup_path;
    if (cgroup.empty()) return;
    auto file = cgroup + "/memory.events";
    init.memory_events.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!inotify_) {
        inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
        if (!inotify_) {
            log(log_level::warn, "inotify for OOM kills: {}",
                std::generic_category().message(errno));
            return;
        }
        loop_.watch(inotify_.get(), EPOLLIN, [this](std::uint32_t) { on_inotify(); });
    }
    init.oom_watch = ::inotify_add_watch(inotify_.get(), file.c_str(), IN_MODIFY);
    // Without the memory controller there is no such file, and no OOM kill to report.
    if (init.oom_watch < 0)
        log(log_level::debug, "watching {}: {}", file, std::generic_category().message(errno));
}

void process_table::on_inotify() {
    // Which file changed does not matter much: every watched container is checked.
    alignas(inotify_event) char buf[4096];
    while (::read(inotify_.get(), buf, sizeof buf) > 0) {
    }
    for (auto& [k, p] : processes_)
        if (p->oom_watch >= 0) report_oom(*p, oom_kills(*p));
}

std::uint64_t process_table::oom_kills(const process& init) const {
    if (init.memory_events) return oom_kill_count(init.memory_events.get());
    return oom_kill_count(init.owned->cgroup_path); // 0 without the memory controller
}

void process_table::report_oom(process& init, std::uint64_t count) {
    if (!link_ || !init.owned || init.owned->cgroup_path.empty()) return;
    if (count <= init.oom_kills_reported) return;
    init.oom_kills_reported = count;
    log(log_level::info, "container {}: the OOM killer has killed {} of its processes so far",
        init.container_id, count);
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_event_tag;
    m->kind.event.which_kind = cz_agent_Event_oom_killed_tag;
    auto& e = m->kind.event.kind.oom_killed;
    std::error_code ec;
    agent::set_string(e.container_id, init.container_id, ec);
    agent::set_string(e.process_id, init.process_id, ec);
    e.count = count;
    link_->send(*m);
}

bool process_table::wait(std::uint64_t request_id, const cz_agent_WaitProcess& req,
                         agent::response& resp) {
    auto* p = find(get_string(req.container_id), get_string(req.process_id));
    if (!p) {
        fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
        return true;
    }
    if (p->st == process::state::finished) {
        resp.which_result = cz_agent_Response_wait_process_tag;
        resp.result.wait_process.status = p->exit_status;
        resp.result.wait_process.exited_at_ns = p->exited_at_ns;
        resp.result.wait_process.oom_killed = p->oom_killed;
        return true;
    }
    p->waiters.push_back(request_id);
    return false;
}

void process_table::kill(const cz_agent_KillProcess& req, agent::response& resp) {
    auto* p = find(get_string(req.container_id), get_string(req.process_id));
    if (!p) return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
    if (p->st != process::state::running)
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION, "not running");
    if (req.signal <= 0 || req.signal >= NSIG)
        return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                    "no signal " + std::to_string(req.signal));
    if (::kill(p->pid, req.signal) != 0)
        return fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "kill", errno);
    // all: every other running process of the container too (its execs).
    if (req.all) {
        for (auto& [k, other] : processes_)
            if (other.get() != p && other->container_id == p->container_id &&
                other->st == process::state::running)
                ::kill(other->pid, req.signal);
    }
    resp.which_result = cz_agent_Response_done_tag;
}

void process_table::close_stdin(const cz_agent_CloseProcessStdin& req, agent::response& resp) {
    auto* p = find(get_string(req.container_id), get_string(req.process_id));
    if (!p) return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
    p->in.close_when_drained = true;
    if (p->in.fd) pump_input(*p);
    resp.which_result = cz_agent_Response_done_tag;
}

std::string process_table::root_of(std::string_view container_id, agent::response& resp) {
    if (container_id.empty()) return "/";
    auto* p = find(container_id, container_id);
    if (!p || p->st != process::state::running || p->pid <= 0) {
        fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
             "container " + std::string(container_id) + " is not running");
        return {};
    }
    return "/proc/" + std::to_string(p->pid) + "/root";
}

void process_table::stat_in_container(const cz_agent_Stat& req, agent::response& resp) {
    auto root = root_of(get_string(req.container_id), resp);
    if (root.empty()) return;
    struct stat st {};
    copy_error err;
    if (!stat_path(std::string(get_string(req.path)), req.follow_symlinks, root, st, err))
        return fail(resp, err.code, err.message, err.sys_errno);
    resp.which_result = cz_agent_Response_stat_tag;
    resp.result.stat = cz_agent_StatResult_init_zero;
    fill_stat_result(st, resp.result.stat);
}

bool process_table::copy_in(std::uint64_t request_id, const cz_agent_CopyIn& req,
                            agent::response& resp) {
    auto root = root_of(get_string(req.container_id), resp);
    if (root.empty()) return true;
    auto p = std::make_unique<process>();
    p->copy.emplace().request_id = request_id;
    p->in.stream = req.stream;
    p->in.buffer = std::make_unique<agent::stream_buffer>(receive_window_);
    unique_fd helper_end;
    if (!make_pipe(helper_end, p->in.fd)) {
        fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "making the copy's pipe", errno);
        return true;
    }
    std::string path(get_string(req.path));
    p->process_id = "CopyIn " + path;
    auto work = [path, root](copy_error& err) {
        fd_source archive(0);
        bool ok = extract_tar(archive, path, err, root);
        if (!ok) { // answered after the host's eof all the same: read on to it
            std::byte sink[16384];
            while (::read(0, sink, sizeof sink) > 0) {
            }
        }
        return ok;
    };
    return start_copy(std::move(p), req.stream, std::move(helper_end), 0, work, resp);
}

bool process_table::copy_out(std::uint64_t request_id, const cz_agent_CopyOut& req,
                             agent::response& resp) {
    auto root = root_of(get_string(req.container_id), resp);
    if (root.empty()) return true;
    auto p = std::make_unique<process>();
    p->copy.emplace().request_id = request_id;
    p->out.stream = req.stream;
    p->out.credit.emplace(send_window_);
    unique_fd helper_end;
    if (!make_pipe(p->out.fd, helper_end)) {
        fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "making the copy's pipe", errno);
        return true;
    }
    std::string path(get_string(req.path));
    p->process_id = "CopyOut " + path;
    auto work = [path, root](copy_error& err) {
        fd_sink archive(1);
        return archive_path(path, archive, err, root);
    };
    return start_copy(std::move(p), req.stream, std::move(helper_end), 1, work, resp);
}

bool process_table::start_copy(std::unique_ptr<process> p, std::uint32_t stream,
                               unique_fd helper_end, int helper_fd,
                               const std::function<bool(copy_error&)>& work,
                               agent::response& resp) {
    // Finished copies are forgotten now: their answers are out.
    for (auto it = copies_.begin(); it != copies_.end();)
        it = it->second->st == process::state::finished ? copies_.erase(it) : std::next(it);
    if (stream == 0 || streams_.count(stream)) {
        fail(resp,
             stream ? cz_agent_ErrorCode_ERROR_ALREADY_EXISTS
                    : cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
             stream ? "stream " + std::to_string(stream) + " is in use" : "a copy needs a stream");
        return true;
    }
    unique_fd report_write;
    if (!make_pipe(p->copy->report, report_write)) {
        fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "making the copy's report pipe", errno);
        return true;
    }
    p->pid = fork_copy_helper(helper_end.get(), helper_fd, report_write.get(), work);
    if (p->pid < 0) {
        fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, "fork the copy helper", errno);
        return true;
    }
    p->st = process::state::running;
    log(log_level::debug, "{} on stream {}: helper pid {}", p->process_id, stream, p->pid);
    auto& ref = *p;
    streams_[stream] = p.get();
    copies_[stream] = std::move(p);
    if (ref.in.fd) {
        set_nonblocking(ref.in.fd.get());
        pump_input(ref);
    }
    if (ref.out.fd) {
        set_nonblocking(ref.out.fd.get());
        watch_output(ref, ref.out);
    }
    return false;
}

void process_table::answer_copy(process& p) {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_response_tag;
    auto& resp = m->kind.response;
    resp.id = p.copy->request_id;
    copy_report r{};
    ssize_t n = -1;
    do
        n = ::read(p.copy->report.get(), &r, sizeof r);
    while (n < 0 && errno == EINTR);
    constexpr auto head = static_cast<ssize_t>(offsetof(copy_report, message));
    if (p.exit_status == 0) {
        resp.which_result = cz_agent_Response_copy_tag;
        resp.result.copy.bytes = p.copy->bytes;
    } else if (n >= head) {
        fail(resp, static_cast<cz_agent_ErrorCode>(r.code),
             std::string(r.message, static_cast<std::size_t>(n - head)), r.sys_errno);
    } else {
        fail(resp, cz_agent_ErrorCode_ERROR_INTERNAL,
             p.process_id + ": the helper ended with status " + std::to_string(p.exit_status));
    }
    log(log_level::debug, "{}: {} bytes, status {}", p.process_id, p.copy->bytes, p.exit_status);
    p.copy->report.reset();
    link_->send(*m);
}

void process_table::resize(const cz_agent_ResizeProcess& req, agent::response& resp) {
    auto* p = find(get_string(req.container_id), get_string(req.process_id));
    if (!p) return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
    if (!p->terminal)
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
                    p->container_id + "/" + p->process_id + " has no terminal");
    if (!p->pty_master)
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
                    p->container_id + "/" + p->process_id + " has not started");
    if (req.rows == 0 || req.columns == 0 || req.rows > 0xffff || req.columns > 0xffff)
        return fail(resp, cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
                    "window size " + std::to_string(req.rows) + "x" + std::to_string(req.columns) +
                        ": rows and columns must be 1-65535");
    error err;
    console_size size{static_cast<std::uint16_t>(req.rows),
                      static_cast<std::uint16_t>(req.columns)};
    if (!resize_terminal(p->pty_master.get(), size, err))
        return fail(resp, cz_agent_ErrorCode_ERROR_SYSTEM, err.message, err.code.value());
    resp.which_result = cz_agent_Response_done_tag;
}

void process_table::statistics(const cz_agent_Statistics& req, agent::response& resp) {
    std::string_view id = get_string(req.container_id);
    auto* init = find(id, id);
    if (!init)
        return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no container " + std::string(id));
    if (!init->owned || init->owned->cgroup_path.empty())
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
                    "container " + std::string(id) + " has no cgroup (not started)");
    auto st = read_cgroup_statistics(init->owned->cgroup_path);
    resp.which_result = cz_agent_Response_statistics_tag;
    auto& out = resp.result.statistics;
    out = cz_agent_StatisticsResult_init_zero;
    out.has_memory = st.has_memory;
    out.memory.current = st.memory_current;
    out.memory.max = st.memory_max;
    out.memory.swap_current = st.swap_current;
    out.memory.anon = st.anon;
    out.memory.file = st.file;
    out.memory.high_events = st.high_events;
    out.memory.max_events = st.max_events;
    out.memory.oom_events = st.oom_events;
    out.memory.oom_kill_events = st.oom_kill_events;
    out.has_cpu = st.has_cpu;
    out.cpu.usage_usec = st.usage_usec;
    out.cpu.user_usec = st.user_usec;
    out.cpu.system_usec = st.system_usec;
    out.cpu.nr_periods = st.nr_periods;
    out.cpu.nr_throttled = st.nr_throttled;
    out.cpu.throttled_usec = st.throttled_usec;
    out.has_pids = st.has_pids;
    out.pids.current = st.pids_current;
    out.pids.max = st.pids_max;
    constexpr std::size_t io_capacity = sizeof out.io / sizeof out.io[0];
    for (const auto& l : st.io) {
        if (out.io_count == io_capacity) break;
        auto& io = out.io[out.io_count++];
        io.major = l.major;
        io.minor = l.minor;
        io.rbytes = l.rbytes;
        io.wbytes = l.wbytes;
        io.rios = l.rios;
        io.wios = l.wios;
    }
    fill_link_statistics(out);
}

void process_table::remove(const cz_agent_DeleteProcess& req, agent::response& resp) {
    auto k = key(get_string(req.container_id), get_string(req.process_id));
    auto it = processes_.find(k);
    if (it == processes_.end())
        return fail(resp, cz_agent_ErrorCode_ERROR_NOT_FOUND, "no such process");
    auto& p = *it->second;
    if (p.st == process::state::running || p.st == process::state::exited)
        return fail(resp, cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION, "still running");
    for (auto* fd : {&p.out.fd, &p.err.fd, &p.in.fd})
        if (*fd) loop_.unwatch(fd->get());
    for (auto id : {p.in.stream, p.out.stream, p.err.stream})
        retire(id);
    if (p.oom_watch >= 0) ::inotify_rm_watch(inotify_.get(), p.oom_watch);
    if (p.owned) {
        error err;
        if (!destroy(*p.owned, err)) log(log_level::warn, "{}", err.message);
    }
    processes_.erase(it);
    resp.which_result = cz_agent_Response_done_tag;
}

} // namespace cz::guest
