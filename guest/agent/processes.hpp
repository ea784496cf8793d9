// guest/agent/processes.hpp — the containers and processes cz-init runs for the host, and their
// stdio as streams of the agent connection.
//
// A process goes through: created (CreateProcess: config parsed, pipes made, streams registered)
// -> running (StartProcess: cz::guest::spawn for a container's first process, exec for the rest)
// -> exited (the reaper saw it) -> finished (its output streams have sent eof too: only then is
// ProcessExited sent and WaitProcess answered, so the host has all output before the status) ->
// deleted (DeleteProcess).
//
// Streams follow cz/agent/credit.hpp: output (stdout, stderr) is read from its pipe only while
// the host has granted credit for it, so a host that does not read one stream stops that process's
// writes to it, and nothing else; input (stdin) is held up to the window and written to the pipe
// as it takes it, with credit granted back as it drains.
//
// A process with a terminal (process.terminal in its config) has one stream instead of three, used
// both ways: its input is written to the pty master the runtime made inside the container
// (runtime/terminal.hpp), and what the master reads (the process's stdout and stderr, and the
// terminal's echo) is its output. The host ending its input ends only the input: the terminal stays
// open. The output ends when the last holder of the pty's slave closes it (the master then reads
// EIO). ResizeProcess sets the window size through the master.
//
// Each container is born in a cgroup of its own under the table's cgroup root (its limits come
// from the spec's linux.resources). The kernel counts the OOM killer's kills in that cgroup's
// memory.events (oom_kill), and notifies a change of the file as inotify's IN_MODIFY; the kernel
// raises the count before it sends the SIGKILL, so a process reaped after an OOM kill always
// finds it counted. The table sends an OomKilled event each time the count grows (at the latest
// before the ProcessExited of any process of the container), and marks a process's exit
// oom_killed when it ended with 137 (SIGKILL) and the count grew while it ran. Statistics reads
// the same cgroup's files.
#pragma once

#include "copy.hpp"
#include "event_loop.hpp"
#include "runtime/container.hpp"

#include <cz/agent/credit.hpp>
#include <cz/agent/frame.hpp>
#include <cz/agent/protocol.hpp>
#include <cz/core/bytes.hpp>

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cz::guest {

// What the process table needs from the host connection it reports to (the session).
class host_link {
public:
    virtual ~host_link() = default;
    // Whether more frames may be queued now (the host is reading what was queued).
    virtual bool can_send() const = 0;
    virtual void send_stream_data(std::uint32_t stream, bytes_view data, bool eof) = 0;
    // StreamData{stream, data, no eof} where `buffer` is agent::stream_data_head_max bytes of
    // room, which the link may overwrite, and then the data: the frame's head goes into that
    // room, so that head and data go out in one write without a copy.
    virtual void send_output(std::uint32_t stream, std::span<std::byte> buffer) = 0;
    virtual void send_stream_credit(std::uint32_t stream, std::uint32_t bytes) = 0;
    virtual void send(const agent::envelope& m) = 0;
};

// What the process table keeps of a CopyIn or CopyOut besides its helper process and stream.
// (At namespace scope: clang 14 takes a class nested in process_table, with default member
// initializers, for not default-constructible inside std::optional.)
struct copy_job {
    std::uint64_t request_id = 0;
    unique_fd report;        // the helper's error, if any
    std::uint64_t bytes = 0; // of archive, through the stream
};

class process_table {
public:
    // `cgroup_root`: the cgroup v2 directory under which each container gets its own
    // (<cgroup_root>/<container id>); "" for none (then no limits, and no OOM reports).
    process_table(event_loop& loop, std::string cgroup_root);
    ~process_table();
    process_table(const process_table&) = delete;
    process_table& operator=(const process_table&) = delete;

    // The connection outputs go to; nullptr between connections (outputs then wait). `windows`:
    // the credit each new stream starts with, as the handshake settled it.
    void attach(host_link* link, std::uint32_t send_window, std::uint32_t receive_window);
    void detach() { attach(nullptr, send_window_, receive_window_); }

    // The RPCs: each fills `resp` (its id already set). wait() may leave it unanswered (returns
    // false): the answer is sent through the link once the process has finished.
    void create(const cz_agent_CreateProcess& req, agent::response& resp);
    void start(const cz_agent_StartProcess& req, agent::response& resp);
    bool wait(std::uint64_t request_id, const cz_agent_WaitProcess& req, agent::response& resp);
    void kill(const cz_agent_KillProcess& req, agent::response& resp);
    void close_stdin(const cz_agent_CloseProcessStdin& req, agent::response& resp);
    void resize(const cz_agent_ResizeProcess& req, agent::response& resp);
    // Statistics of a container, running or exited (until it is deleted), and of the VM's links.
    void statistics(const cz_agent_Statistics& req, agent::response& resp);
    void remove(const cz_agent_DeleteProcess& req, agent::response& resp);

    // CopyIn and CopyOut: a helper process per copy (copy.hpp) reads its tar stream from a pipe
    // that the stream fills, or writes one into a pipe that the stream drains, within the
    // stream's credit as for stdio. Each returns true when `resp` holds the answer already (an
    // error), false when the answer is sent through the link once the copy has ended: CopyIn's
    // after the host's eof and the extraction, CopyOut's after the last byte of the archive.
    bool copy_in(std::uint64_t request_id, const cz_agent_CopyIn& req, agent::response& resp);
    bool copy_out(std::uint64_t request_id, const cz_agent_CopyOut& req, agent::response& resp);
    // Stat of a path in a container's file system (a Stat with a container_id).
    void stat_in_container(const cz_agent_Stat& req, agent::response& resp);

    // Stream frames from the host. A stream that is not an open input, data beyond its credit:
    // errors that end the connection (agent::errc).
    void on_stream_data(std::uint32_t stream, bytes_view data, bool eof, std::error_code& ec);
    void on_stream_credit(std::uint32_t stream, std::uint32_t bytes, std::error_code& ec);

    // A child exited (from the reaper). Unknown pids are ignored: orphans of the VM.
    void on_child_exit(pid_t pid, int wait_status);

    // The link can take frames again: resume outputs that waited for it.
    void resume_outputs();

private:
    struct output {
        std::uint32_t stream = 0;
        unique_fd fd;
        std::optional<agent::send_credit> credit;
        bool eof_sent = false;
        bool watching = false;
    };
    struct input {
        std::uint32_t stream = 0;
        unique_fd fd;
        std::unique_ptr<agent::stream_buffer> buffer;
        bool close_when_drained = false;
    };
    struct process {
        std::string container_id, process_id;
        bool is_container_init = false;
        std::optional<runtime_spec> spec;         // a container's
        std::optional<process_spec> exec_process; // an exec's
        bool terminal = false;
        unique_fd child_in, child_out, child_err; // the child's ends, until started (no terminal)
        unique_fd pty_master;                     // with a terminal, once started: for resizes
        input in;
        output out, err;
        enum class state { created, running, exited, finished } st = state::created;
        pid_t pid = -1;
        int exit_status = 0;
        // The container's memory.events oom_kill when the process started, and whether its exit
        // is the OOM killer's doing (see the top of this file).
        std::uint64_t oom_kills_at_start = 0;
        bool oom_killed = false;
        // A container's init: the oom_kill count that OomKilled events have reported, and the
        // inotify watch on its memory.events (-1: none).
        std::uint64_t oom_kills_reported = 0;
        int oom_watch = -1;
        unique_fd memory_events; // the cgroup's, kept open: read at every start and exit
        std::int64_t exited_at_ns = 0;
        std::vector<std::uint64_t> waiters;
        std::optional<container> owned; // a container's init holds its container
        // A copy's helper (CopyIn, CopyOut) rather than a container process.
        std::optional<copy_job> copy;
    };
    using key = std::pair<std::string, std::string>;

    process* find(std::string_view container_id, std::string_view process_id);
    // The root a copy or stat resolves in: "/" without a container id, else the container's as
    // its first process sees it (/proc/PID/root, its mounts included). "" with `resp` failed
    // when there is no such running container.
    std::string root_of(std::string_view container_id, agent::response& resp);
    void pump_output(process& p, output& o);
    void pump_input(process& p);
    void watch_output(process& p, output& o);
    void maybe_finish(process& p);
    void end_input(process& p);
    bool start_copy(std::unique_ptr<process> p, std::uint32_t stream, unique_fd helper_end,
                    int helper_fd, const std::function<bool(copy_error&)>& work,
                    agent::response& resp);
    void answer_copy(process& p);
    template <class F>
    void for_each_process(F f);
    void answer_wait(std::uint64_t id, const process& p);
    process* container_init(const process& p);
    void watch_oom(process& init);
    std::uint64_t oom_kills(const process& init) const;
    void report_oom(process& init, std::uint64_t count);
    void on_inotify();

    event_loop& loop_;
    std::string cgroup_root_;
    unique_fd inotify_; // memory.events of every container, once the first has started
    host_link* link_ = nullptr;
    std::uint32_t send_window_ = 256u << 10;
    std::uint32_t receive_window_ = 256u << 10;
    std::map<key, std::unique_ptr<process>> processes_;
    // Copies, by stream id; finished ones are forgotten when the next copy starts.
    std::map<std::uint32_t, std::unique_ptr<process>> copies_;
    std::map<std::uint32_t, process*> streams_; // open stream ids (both directions)
    // Streams that ended here while the host may still be sending on them (stdin data or eof
    // after the process exited, credit for output that has ended): such frames are dropped.
    // Bounded: the oldest are forgotten first.
    std::deque<std::uint32_t> retired_;
    // Where outputs are read into (pump_output), allocated on first use.
    std::unique_ptr<std::byte[]> output_buffer_;
    void retire(std::uint32_t stream);
    bool retired(std::uint32_t stream) const;
};

} // namespace cz::guest
