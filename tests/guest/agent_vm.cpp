// cz-init as PID 1 of a real VM (QEMU, TCG here), driven by cz::agent::client over each of the
// two transports: vsock (cz's device; the host dials guest port 1024) and virtio-serial (a
// virtserialport on a Unix socket). Debian's kernel: cz-init loads the drivers itself. The image
// disk (/dev/vda, read-only) becomes the container's root file system under an overlay. A third
// VM runs containers with limits from their specs (cgroup memory, cpu and pids, an OOM kill and its
// reports, Statistics, rlimits, seccomp).
//
// Threads: the VM's io_context serves the vsock device while wait_for() runs on the test thread;
// the client runs on an io_context of its own, on a second thread. Its findings are collected as
// text and checked on the test thread (doctest's assertions are not for other threads).
#include "guest/vm/agent_harness.hpp"
#include "support/support.hpp"

#include <cz/agent/client.hpp>
#include <cz/tar/writer.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <fstream>

using namespace cz_test;
using namespace cz::guest::test;
namespace agent = cz::agent;
using asio::experimental::as_tuple;

namespace {

// The containers' root file system: busybox_image's, with /etc/passwd and /etc/group (alice: uid
// 1000, in wheel) and alice's home.
std::filesystem::path image_disk() {
    static const auto path = [] {
        const std::string users = (test_root() / "guest-agent-users").string();
        sh_ok(
            "rm -rf " + quote(users) + " && mkdir -p " + quote(users + "/etc") + " " +
            quote(users + "/home/alice") + " && printf " +
            quote("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n") +
            " > " + quote(users + "/etc/passwd") + " && printf " +
            quote("root:x:0:\nwheel:x:10:alice\nalice:x:1000:\nstaff:x:50:\n") + " > " +
            quote(users + "/etc/group"));
        return busybox_image("guest-agent-image",
                             {{"etc", users + "/etc"}, {"home", users + "/home"}});
    }();
    return path;
}

// The tree that CopyIn and CopyOut carry: directories, files of several modes and owners (one of
// them larger than a stream window), an empty file, a hard link, and symlinks (relative, absolute,
// dangling). Made on the test thread, once; GNU tar packs it for CopyIn.
struct copy_fixture {
    std::string dir;     // holds src/ (the tree under src/tree) and the archives
    std::string archive; // src/tree as GNU tar packs it
};

const copy_fixture& copy_source() {
    static const copy_fixture f = [] {
        copy_fixture f;
        f.dir = (test_root() / "guest-agent-copy").string();
        const std::string t = quote(f.dir + "/src/tree");
        sh_ok("rm -rf " + quote(f.dir) + " && mkdir -p " + t + "/sub/deeper " + t + "/empty-dir" +
              " && printf 'plain\\n' > " + t + "/plain.txt && chmod 0640 " + t + "/plain.txt" +
              " && printf '#!/bin/sh\\necho run\\n' > " + t + "/sub/run.sh && chmod 0755 " + t +
              "/sub/run.sh && : > " + t + "/sub/deeper/empty && chmod 4755 " + t +
              "/sub/deeper/empty && head -c 300000 /dev/urandom > " + t + "/sub/big.bin" +
              " && ln " + t + "/sub/big.bin " + t + "/big-again.bin && ln -s sub/run.sh " + t +
              "/rel-link && ln -s /etc/passwd " + t + "/abs-link && ln -s nowhere " + t +
              "/dangling && chmod 0700 " + t + "/sub/deeper && chown 1234:5678 " + t +
              "/plain.txt && touch -h -d '2001-02-03 04:05:06' " + t + "/rel-link " + t +
              "/sub/run.sh " + t + "/sub");
        sh_ok("tar -C " + quote(f.dir + "/src") + " -cf " + quote(f.dir + "/tree.tar") + " tree");
        f.archive = read_file(f.dir + "/tree.tar");
        return f;
    }();
    return f;
}

// One line per file under `dir`: path, type, mode, owner, size, link target, mtime (seconds),
// link count; sorted.
std::string listing(const std::string& dir) {
    std::string out;
    int rc = sh("cd " + quote(dir) +
                    " && find . -mindepth 1 -printf '%P %y %m %U:%G %s %l %Ts %n\\n' | sort",
                &out);
    return rc == 0 ? out : "(listing " + dir + " failed)";
}

// The same with a terminal: /dev and a devpts instance of its own, as runc's default spec has.
std::string terminal_config(const std::vector<std::string>& args, int rows, int columns) {
    auto spec = nlohmann::json::parse(container_config(args));
    spec["process"]["terminal"] = true;
    spec["process"]["consoleSize"] = {{"height", rows}, {"width", columns}};
    spec["mounts"].push_back({{"destination", "/dev"},
                              {"type", "tmpfs"},
                              {"source", "tmpfs"},
                              {"options", {"nosuid", "mode=755"}}});
    spec["mounts"].push_back(
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}});
    return spec.dump();
}

struct run_result {
    std::string container, process;
    std::error_code create_ec, start_ec, wait_ec;
    agent::response start;
    int status = -1;
    bool oom_killed = false; // WaitProcessResult.oom_killed
    std::string out, err;
    int readers = 0; // output streams still being read
};
using running = std::shared_ptr<run_result>;

// Reads stream `id` to its end into `text`.
asio::awaitable<void> read_all(agent::client& c, std::uint32_t id, running r, std::string& text) {
    std::byte buf[65536];
    for (;;) {
        auto [e, n] = co_await c.async_read_stream(id, buf, as_tuple(asio::use_awaitable));
        text.append(reinterpret_cast<const char*>(buf), n);
        if (e) break;
    }
    --r->readers;
}

// Writes `input` to stream `id`, then eof. The coroutine keeps its own copy: the caller's may be
// gone before the stream has taken it all.
asio::awaitable<void> write_input(agent::client& c, std::uint32_t id, std::string input) {
    co_await c.async_write_stream(id, cz::as_bytes(input), true, as_tuple(asio::use_awaitable));
}

// Creates and starts one process with stdin, stdout and stderr streams; `input` is written to its
// stdin, then eof, while its output is read.
asio::awaitable<running> begin_process(agent::client& c, const std::string& container,
                                       const std::string& process, const std::string& config,
                                       const std::string& input) {
    static std::uint32_t next_stream = 1;
    std::uint32_t in = next_stream++, out = next_stream++, err = next_stream++;
    std::error_code ec;
    auto r = std::make_shared<run_result>();
    r->container = container;
    r->process = process;
    for (auto id : {in, out, err})
        c.open_stream(id, ec);
    cz_agent_CreateProcess create{};
    agent::set_string(create.container_id, container, ec);
    agent::set_string(create.process_id, process, ec);
    create.config.data = reinterpret_cast<const std::byte*>(config.data());
    create.config.size = config.size();
    create.stdin_stream = in;
    create.stdout_stream = out;
    create.stderr_stream = err;
    auto [create_ec, create_r] = co_await c.async_call(create, as_tuple(asio::use_awaitable));
    r->create_ec = create_ec;
    if (create_ec) co_return r;
    cz_agent_StartProcess start = cz_agent_StartProcess_init_zero;
    agent::set_string(start.container_id, container, ec);
    agent::set_string(start.process_id, process, ec);
    auto [start_ec, start_r] = co_await c.async_call(start, as_tuple(asio::use_awaitable));
    r->start_ec = start_ec;
    r->start = start_r;
    if (start_ec) co_return r;
    r->readers = 2;
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, read_all(c, out, r, r->out), asio::detached);
    asio::co_spawn(ex, read_all(c, err, r, r->err), asio::detached);
    asio::co_spawn(ex, write_input(c, in, input), asio::detached);
    co_return r;
}

// Waits for a begun process and for all its output.
asio::awaitable<running> finish_process(agent::client& c, running r) {
    if (r->create_ec || r->start_ec) co_return r;
    std::error_code ec;
    cz_agent_WaitProcess wait = cz_agent_WaitProcess_init_zero;
    agent::set_string(wait.container_id, r->container, ec);
    agent::set_string(wait.process_id, r->process, ec);
    auto [wait_ec, wait_r] = co_await c.async_call(wait, as_tuple(asio::use_awaitable));
    r->wait_ec = wait_ec;
    r->status = wait_r.result.wait_process.status;
    r->oom_killed = wait_r.result.wait_process.oom_killed;
    // The guest sent every byte before the answer; the readers may not have taken them yet.
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (r->readers > 0) {
        t.expires_after(std::chrono::milliseconds(5));
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return r;
}

asio::awaitable<running> run_process(agent::client& c, const std::string& container,
                                     const std::string& process, const std::string& config,
                                     const std::string& input) {
    auto r = co_await begin_process(c, container, process, config, input);
    co_return co_await finish_process(c, r);
}

asio::awaitable<bool> delete_process(agent::client& c, const std::string& container,
                                     const std::string& process) {
    std::error_code ec;
    cz_agent_DeleteProcess del = cz_agent_DeleteProcess_init_zero;
    agent::set_string(del.container_id, container, ec);
    agent::set_string(del.process_id, process, ec);
    auto [e, r] = co_await c.async_call(del, as_tuple(asio::use_awaitable));
    co_return !e;
}

std::uint64_t fnv(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : s)
        h = (h ^ ch) * 1099511628211ull;
    return h;
}

// A process with a terminal: one stream both ways. It prints its tty and the size the config
// gave, waits for a line, prints the size again (after the host's resize) and exits 5.
asio::awaitable<void> exercise_terminal(agent::client& c, std::vector<std::string>& problems,
                                        std::vector<std::string> script) {
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back("terminal: " + what);
    };
    std::error_code ec;
    const std::uint32_t tty = 900;
    c.open_stream(tty, ec);
    auto config = terminal_config(script, 30, 100);
    auto ids = [&](auto& m, const char* process) {
        agent::set_string(m.container_id, "t1", ec);
        agent::set_string(m.process_id, process, ec);
    };
    cz_agent_CreateProcess create{};
    ids(create, "t1");
    create.config.data = reinterpret_cast<const std::byte*>(config.data());
    create.config.size = config.size();
    create.stdin_stream = tty;
    create.stdout_stream = tty;
    create.stderr_stream = tty + 1;
    create.terminal = true;
    auto [bad_ec, bad_r] = co_await c.async_call(create, as_tuple(asio::use_awaitable));
    expect(bad_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
           "a stderr stream beside a terminal is INVALID_ARGUMENT");
    create.stderr_stream = 0;
    create.terminal = false;
    auto [mismatch_ec, mismatch_r] = co_await c.async_call(create, as_tuple(asio::use_awaitable));
    expect(mismatch_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
           "terminal=false with process.terminal=true is INVALID_ARGUMENT");
    create.terminal = true;
    auto [create_ec, create_r] = co_await c.async_call(create, as_tuple(asio::use_awaitable));
    expect(!create_ec, "create: " + std::string(agent::get_string(create_r.result.error.message)));

    cz_agent_ResizeProcess resize = cz_agent_ResizeProcess_init_zero;
    ids(resize, "t1");
    resize.rows = 40;
    resize.columns = 120;
    auto [early_ec, early_r] = co_await c.async_call(resize, as_tuple(asio::use_awaitable));
    expect(early_r.result.error.code == cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
           "a resize before the start is FAILED_PRECONDITION");

    cz_agent_StartProcess start = cz_agent_StartProcess_init_zero;
    ids(start, "t1");
    auto [start_ec, start_r] = co_await c.async_call(start, as_tuple(asio::use_awaitable));
    expect(!start_ec, "start: " + std::string(agent::get_string(start_r.result.error.message)));
    if (create_ec || start_ec) co_return;

    // Reads the terminal until `text` shows up (or the output ends).
    std::string seen;
    bool ended = false;
    auto read_until = [&](std::string_view text) -> asio::awaitable<bool> {
        std::byte buf[4096];
        while (seen.find(text) == std::string::npos && !ended) {
            auto [e, n] = co_await c.async_read_stream(tty, buf, as_tuple(asio::use_awaitable));
            seen.append(reinterpret_cast<const char*>(buf), n);
            ended = e.operator bool();
        }
        co_return seen.find(text) != std::string::npos;
    };
    expect(co_await read_until("30 100\r\n"), "stty size at the start: '" + seen + "'");
    expect(seen.find("/dev/pts/0") != std::string::npos, "tty names /dev/pts/0: '" + seen + "'");

    auto [resize_ec, resize_r] = co_await c.async_call(resize, as_tuple(asio::use_awaitable));
    expect(!resize_ec, "resize: " + std::string(agent::get_string(resize_r.result.error.message)));
    resize.rows = 0;
    auto [zero_ec, zero_r] = co_await c.async_call(resize, as_tuple(asio::use_awaitable));
    expect(zero_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
           "a resize to 0 rows is INVALID_ARGUMENT");
    const std::string line = "go\n";
    auto [write_ec, written] =
        co_await c.async_write_stream(tty, cz::as_bytes(line), true, as_tuple(asio::use_awaitable));
    expect(!write_ec && written == line.size(), "typing a line: " + write_ec.message());
    expect(co_await read_until("40 120\r\n"), "stty size after the resize: '" + seen + "'");
    co_await read_until("the output never holds this");
    expect(ended, "the terminal's output ended");

    cz_agent_WaitProcess wait = cz_agent_WaitProcess_init_zero;
    ids(wait, "t1");
    auto [wait_ec, wait_r] = co_await c.async_call(wait, as_tuple(asio::use_awaitable));
    expect(!wait_ec && wait_r.result.wait_process.status == 5,
           "exit status " + std::to_string(wait_r.result.wait_process.status));
    // The echo of the typed line came back through the same stream.
    expect(seen.find("go\r\n") != std::string::npos, "the echo of the input: '" + seen + "'");
    c.close_stream(tty);
    expect(co_await delete_process(c, "t1", "t1"), "delete t1");
}

asio::awaitable<void> exercise_processes(agent::client& c, std::vector<std::string>& problems) {
    std::error_code ec;
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    };
    // (Argument lists are built here, not as braced lists inside co_await expressions: g++ 12
    // miscompiles array temporaries in coroutines.)
    auto sh = [](const std::string& script) {
        std::vector<std::string> args;
        args.push_back("/bin/sh");
        args.push_back("-c");
        args.push_back(script);
        return args;
    };

    auto r = co_await run_process(c, "c1", "c1",
                                  container_config(sh("echo hello; echo oops >&2; exit 3")), "");
    expect(!r->create_ec && !r->start_ec && !r->wait_ec,
           "c1 ran: " + r->create_ec.message() + "/" + r->start_ec.message() + " (" +
               std::string(agent::get_string(r->start.result.error.message)) + " errno " +
               std::to_string(r->start.result.error.sys_errno) + ")/" + r->wait_ec.message());
    expect(r->status == 3, "exit 3 -> " + std::to_string(r->status));
    expect(r->out == "hello\n", "stdout: '" + r->out + "'");
    expect(r->err == "oops\n", "stderr: '" + r->err + "'");
    expect(co_await delete_process(c, "c1", "c1"), "delete c1");

    r = co_await run_process(c, "c2", "c2", container_config(sh("exec /bin/false")), "");
    expect(r->status == 1, "false -> " + std::to_string(r->status));
    co_await delete_process(c, "c2", "c2");

    r = co_await run_process(c, "c3", "c3", container_config(sh("kill -9 $$")), "");
    expect(r->status == 137, "kill -9 $$ -> " + std::to_string(r->status));
    co_await delete_process(c, "c3", "c3");

    // 64 MiB through cat and back, many windows' worth each way (under TCG here: about 2 s over
    // vsock, 4 s over virtio-serial).
    std::string data(64u << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>((i * 2654435761u) >> 13);
    r = co_await run_process(c, "c4", "c4", container_config(sh("exec /bin/cat")), data);
    expect(r->status == 0 && r->out.size() == data.size() && fnv(r->out) == fnv(data),
           "cat round trip: " + std::to_string(r->out.size()) + " bytes, status " +
               std::to_string(r->status));
    co_await delete_process(c, "c4", "c4");

    // An exec into a running container: it sees the container's processes (its program is pid 2,
    // after the shim: looking for one of the program's short sleeps instead failed whenever the
    // exec looked between two of them), and the container goes on afterwards. The container waits
    // for a file the host writes after the exec, through the same overlay.
    auto c6 = co_await begin_process(
        c, "c6", "c6",
        container_config(sh("while [ ! -e /tmp/go ]; do sleep 0.1; done; echo got go")), "");
    auto e1 = co_await run_process(
        c, "c6", "e1", process_config(sh("echo from exec; tr '\\0' ' ' </proc/2/cmdline")), "");
    expect(!e1->start_ec && e1->status == 0 &&
               e1->out == "from exec\n/bin/sh -c while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                          "echo got go ",
           "exec: status " + std::to_string(e1->status) + ", out '" + e1->out + "'");
    co_await delete_process(c, "c6", "e1");
    cz_agent_WriteFile go{};
    agent::set_string(go.path, "/run/cz/rootfs/merged/tmp/go", ec);
    auto [go_ec, go_r] = co_await c.async_call(go, as_tuple(asio::use_awaitable));
    expect(!go_ec, "writing /tmp/go: " + go_ec.message());
    c6 = co_await finish_process(c, c6);
    expect(c6->status == 0 && c6->out == "got go\n",
           "the container after the exec: '" + c6->out + "'");
    co_await delete_process(c, "c6", "c6");

    // Twenty execs at once in one container, each with output on both streams and an exit
    // status of its own; then users, the working directory and the environment.
    auto c8 = co_await begin_process(
        c, "c8", "c8",
        container_config(sh("while [ ! -e /tmp/go8 ]; do sleep 0.1; done; echo done")), "");
    std::vector<running> execs;
    for (int i = 0; i < 20; ++i) {
        auto n = std::to_string(i);
        execs.push_back(co_await begin_process(
            c, "c8", "x" + n,
            process_config(sh("echo out-" + n + "; echo err-" + n + " >&2; exit " + n)), ""));
    }
    for (int i = 0; i < 20; ++i) {
        auto n = std::to_string(i);
        auto x = co_await finish_process(c, execs[static_cast<std::size_t>(i)]);
        expect(!x->create_ec && !x->start_ec && !x->wait_ec && x->status == i &&
                   x->out == "out-" + n + "\n" && x->err == "err-" + n + "\n",
               "exec " + n + " of 20: status " + std::to_string(x->status) + ", out '" + x->out +
                   "', err '" + x->err + "'");
        co_await delete_process(c, "c8", "x" + n);
    }
    const std::string ids = "echo $HOME; id -u; id -g; id -G; pwd; echo \"$GREETING\"";
    // (Configurations made outside the co_await expressions: see sh above.)
    const nlohmann::json alice = {{"username", "alice"}}, uid_1000 = {{"uid", 1000}, {"gid", 50}},
                         mallory = {{"username", "mallory"}};
    const std::vector<std::string> greeting_env = {"PATH=/bin", "GREETING=hello there"},
                                   plain_env = {"PATH=/bin"};
    const auto alice_config = process_config(sh(ids), alice, "/work/made/here", greeting_env);
    const auto uid_config = process_config(sh(ids), uid_1000, "/tmp", plain_env);
    const auto mallory_config = process_config(sh("id"), mallory, "/", plain_env);
    auto by_name = co_await run_process(c, "c8", "alice", alice_config, "");
    expect(by_name->status == 0 &&
               by_name->out == "/home/alice\n1000\n1000\n1000 10\n/work/made/here\nhello there\n",
           "user by name, a cwd made for it, env: status " + std::to_string(by_name->status) +
               ", out '" + by_name->out + "', err '" + by_name->err + "'");
    co_await delete_process(c, "c8", "alice");
    auto by_uid = co_await run_process(c, "c8", "uid", uid_config, "");
    expect(by_uid->status == 0 && by_uid->out == "/home/alice\n1000\n50\n50\n/tmp\n\n",
           "user by uid: status " + std::to_string(by_uid->status) + ", out '" + by_uid->out +
               "', err '" + by_uid->err + "'");
    co_await delete_process(c, "c8", "uid");
    auto stranger = co_await run_process(c, "c8", "mallory", mallory_config, "");
    expect(stranger->start_ec == agent::errc::rpc_failed &&
               agent::get_string(stranger->start.result.error.message).find("mallory") !=
                   std::string_view::npos,
           "an unknown user name fails the start, naming it");
    co_await delete_process(c, "c8", "mallory");
    agent::set_string(go.path, "/run/cz/rootfs/merged/tmp/go8", ec);
    auto [go8_ec, go8_r] = co_await c.async_call(go, as_tuple(asio::use_awaitable));
    expect(!go8_ec, "writing /tmp/go8: " + go8_ec.message());
    c8 = co_await finish_process(c, c8);
    expect(c8->status == 0 && c8->out == "done\n",
           "the container of the 20 execs: '" + c8->out + "'");
    co_await delete_process(c, "c8", "c8");

    co_await exercise_terminal(c, problems, sh("tty; stty size; read line; stty size; exit 5"));

    // ResizeProcess on a process without a terminal, and on none.
    cz_agent_ResizeProcess resize = cz_agent_ResizeProcess_init_zero;
    agent::set_string(resize.container_id, "c7", ec);
    agent::set_string(resize.process_id, "c7", ec);
    resize.rows = resize.columns = 10;
    auto c7 = co_await begin_process(c, "c7", "c7", container_config(sh("read x")), "");
    auto [pipe_ec, pipe_r] = co_await c.async_call(resize, as_tuple(asio::use_awaitable));
    expect(pipe_r.result.error.code == cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION,
           "resizing a process without a terminal is FAILED_PRECONDITION");
    c7 = co_await finish_process(c, c7);
    co_await delete_process(c, "c7", "c7");
    auto [gone_ec, gone_r] = co_await c.async_call(resize, as_tuple(asio::use_awaitable));
    expect(gone_r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND,
           "resizing a process that does not exist is NOT_FOUND");

    r = co_await run_process(
        c, "c5", "c5", container_config(std::vector<std::string>(1, "/bin/no-such-program")), "");
    expect(r->start_ec == agent::errc::rpc_failed &&
               r->start.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND,
           "a missing program: StartProcess fails with NOT_FOUND");
}

// Sends `rpc` (a CopyIn or CopyOut) and runs `traffic` (its stream's bytes) while it is in flight;
// returns its answer. The request goes out first: async_call writes it before it first waits, and
// the guest refuses data on a stream no request has named.
template <class Rpc, class Traffic>
asio::awaitable<std::pair<std::error_code, agent::response>>
call_with_stream(agent::client& c, const Rpc& rpc, Traffic traffic) {
    auto answer = std::make_shared<std::optional<std::pair<std::error_code, agent::response>>>();
    c.async_call(rpc, [answer](std::error_code e, agent::response r) { answer->emplace(e, r); });
    co_await traffic();
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!*answer) {
        t.expires_after(std::chrono::milliseconds(5));
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return **answer;
}

// CopyIn of GNU tar's archive of a tree, CopyOut of it back, unpacked by GNU tar and compared
// with the source; then hostile archives.
asio::awaitable<void> exercise_copies(agent::client& c, std::vector<std::string>& problems,
                                      const copy_fixture& fixture) {
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back("copy: " + what);
    };
    std::error_code ec;
    auto message = [](const agent::response& r) {
        return std::string(agent::get_string(r.result.error.message));
    };
    // Writes `archive` into `path` of the VM through CopyIn on stream `id`.
    auto copy_in = [&](std::uint32_t id, const std::string& path, const std::string& archive)
        -> asio::awaitable<std::pair<std::error_code, agent::response>> {
        c.open_stream(id, ec);
        cz_agent_CopyIn in = cz_agent_CopyIn_init_zero;
        agent::set_string(in.path, path, ec);
        in.stream = id;
        auto answer = co_await call_with_stream(c, in, [&]() -> asio::awaitable<void> {
            auto [e, n] = co_await c.async_write_stream(id, cz::as_bytes(archive), true,
                                                        as_tuple(asio::use_awaitable));
            expect(!e && n == archive.size(), "CopyIn's stream to " + path + ": " + e.message());
        });
        c.close_stream(id);
        co_return answer;
    };

    auto [in_ec, in_r] = co_await copy_in(960, "/run/copy/in", fixture.archive);
    expect(!in_ec && in_r.which_result == cz_agent_Response_copy_tag &&
               in_r.result.copy.bytes == fixture.archive.size(),
           "CopyIn: " + in_ec.message() + " " + message(in_r));

    c.open_stream(961, ec);
    cz_agent_CopyOut out = cz_agent_CopyOut_init_zero;
    agent::set_string(out.path, "/run/copy/in/tree", ec);
    out.stream = 961;
    std::string archive;
    auto [out_ec, out_r] = co_await call_with_stream(c, out, [&]() -> asio::awaitable<void> {
        std::byte buf[65536];
        for (;;) {
            auto [e, n] = co_await c.async_read_stream(961, buf, as_tuple(asio::use_awaitable));
            archive.append(reinterpret_cast<const char*>(buf), n);
            if (e) break;
        }
    });
    c.close_stream(961);
    expect(!out_ec && out_r.which_result == cz_agent_Response_copy_tag &&
               out_r.result.copy.bytes == archive.size() && !archive.empty(),
           "CopyOut: " + out_ec.message() + " " + message(out_r) + ", " +
               std::to_string(archive.size()) + " bytes");
    {
        std::ofstream f(fixture.dir + "/back.tar", std::ios::binary);
        f.write(archive.data(), static_cast<std::streamsize>(archive.size()));
    }
    std::string back = fixture.dir + "/back";
    std::string tar_out;
    int rc = sh("rm -rf " + quote(back) + " && mkdir " + quote(back) + " && tar -C " + quote(back) +
                    " -xpf " + quote(fixture.dir + "/back.tar") + " 2>&1",
                &tar_out);
    expect(rc == 0, "GNU tar unpacks CopyOut's archive: " + tar_out);
    auto want = listing(fixture.dir + "/src"), got = listing(back);
    expect(want == got, "the tree after the round trip:\n" + got + "the source:\n" + want);
    std::string diff;
    expect(sh("diff -r --no-dereference " + quote(fixture.dir + "/src/tree") + " " +
                  quote(back + "/tree") + " 2>&1",
              &diff) == 0,
           "contents differ: " + diff);

    // CopyOut of a path that is not there.
    c.open_stream(962, ec);
    agent::set_string(out.path, "/run/copy/no-such-path", ec);
    out.stream = 962;
    auto [missing_ec, missing_r] =
        co_await call_with_stream(c, out, [&]() -> asio::awaitable<void> {
            std::byte buf[4096];
            for (;;) {
                auto [e, n] = co_await c.async_read_stream(962, buf, as_tuple(asio::use_awaitable));
                if (e) break;
            }
        });
    c.close_stream(962);
    expect(missing_r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND &&
               message(missing_r).find("no-such-path") != std::string::npos,
           "CopyOut of a missing path: NOT_FOUND naming it, not '" + message(missing_r) + "'");

    // Hostile archives: a member that climbs out with "..", and a symlink to "/" followed by a
    // member through it (which lands inside the target: symlinks resolve as if it were "/").
    auto make_tar = [](auto add) {
        std::string out;
        cz::byte_buffer bytes;
        cz::buffer_sink sink(bytes);
        cz::tar::writer w(sink);
        add(w);
        w.finish();
        out.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return out;
    };
    auto file = [](cz::tar::writer& w, const std::string& name, const std::string& data) {
        cz::tar::entry e;
        e.name = name;
        e.size = data.size();
        e.mode = 0644;
        w.add(e);
        w.write(cz::as_bytes(data));
    };
    auto climbing = make_tar([&](cz::tar::writer& w) {
        file(w, "fine.txt", "fine\n");
        file(w, "sub/../../escaped.txt", "out\n");
    });
    auto [evil_ec, evil_r] = co_await copy_in(963, "/run/copy/evil", climbing);
    expect(evil_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT &&
               message(evil_r).find("sub/../../escaped.txt") != std::string::npos,
           "a member with '..' out of the target: INVALID_ARGUMENT naming it, not '" +
               message(evil_r) + "'");
    cz_agent_Stat st = cz_agent_Stat_init_zero;
    agent::set_string(st.path, "/run/copy/escaped.txt", ec);
    auto [esc_ec, esc_r] = co_await c.async_call(st, as_tuple(asio::use_awaitable));
    expect(esc_r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND,
           "nothing was written outside the target");

    auto through_link = make_tar([&](cz::tar::writer& w) {
        cz::tar::entry link;
        link.name = "up";
        link.type = cz::tar::entry_type::symlink;
        link.typeflag = '2';
        link.linkname = "/";
        link.mode = 0777;
        w.add(link);
        file(w, "up/run/pwned.txt", "inside\n");
    });
    auto [link_ec, link_r] = co_await copy_in(964, "/run/copy/linked", through_link);
    expect(!link_ec, "a member through a symlink to /: " + message(link_r));
    agent::set_string(st.path, "/run/pwned.txt", ec);
    auto [pwn_ec, pwn_r] = co_await c.async_call(st, as_tuple(asio::use_awaitable));
    expect(pwn_r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND,
           "the symlink did not lead out of the target");
    agent::set_string(st.path, "/run/copy/linked/run/pwned.txt", ec);
    auto [in_target_ec, in_target_r] = co_await c.async_call(st, as_tuple(asio::use_awaitable));
    expect(!in_target_ec && in_target_r.result.stat.size == 7,
           "the member through the symlink landed inside the target");
}

// The checks, run against one connected client; each failure appends a line to `problems`.
asio::awaitable<void> exercise(agent::client& c, std::vector<std::string>& problems) {
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    };
    std::error_code ec;
    auto session = co_await c.async_handshake(asio::use_awaitable);
    expect(session.version == agent::max_protocol_version, "protocol version");
    c.async_run([&](std::error_code e) {
        if (e) problems.push_back("connection: " + e.message());
    });
    auto stat = [&](const std::string& path) -> asio::awaitable<agent::response> {
        cz_agent_Stat s = cz_agent_Stat_init_zero;
        agent::set_string(s.path, path, ec);
        s.follow_symlinks = true;
        auto [e, r] = co_await c.async_call(s, as_tuple(asio::use_awaitable));
        co_return r;
    };

    cz_agent_Mkdir mkdir = cz_agent_Mkdir_init_zero;
    agent::set_string(mkdir.path, "/run/t/deep", ec);
    mkdir.parents = true;
    auto [mkdir_ec, mkdir_r] = co_await c.async_call(mkdir, as_tuple(asio::use_awaitable));
    expect(!mkdir_ec && mkdir_r.which_result == cz_agent_Response_done_tag, "mkdir -p");

    cz_agent_WriteFile wf{}; // not _init_zero: its NULL for the view's size does not compile as C++
    agent::set_string(wf.path, "/run/t/deep/f", ec);
    std::string contents = "written through the agent\n";
    wf.data.data = reinterpret_cast<const std::byte*>(contents.data());
    wf.data.size = contents.size();
    wf.mode = 0600;
    auto [wf_ec, wf_r] = co_await c.async_call(wf, as_tuple(asio::use_awaitable));
    expect(!wf_ec, "write file: " + wf_ec.message());
    auto st = co_await stat("/run/t/deep/f");
    expect(st.which_result == cz_agent_Response_stat_tag &&
               st.result.stat.size == contents.size() && (st.result.stat.mode & 07777) == 0600 &&
               S_ISREG(st.result.stat.mode),
           "stat of the written file");

    auto missing = co_await stat("/no/such/file");
    expect(missing.which_result == cz_agent_Response_error_tag &&
               missing.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND &&
               missing.result.error.sys_errno == ENOENT &&
               agent::get_string(missing.result.error.message).find("/no/such/file") !=
                   std::string_view::npos,
           "stat of a missing file: NOT_FOUND naming it");

    cz_agent_Mkdir relative = cz_agent_Mkdir_init_zero;
    agent::set_string(relative.path, "run/x", ec);
    auto [rel_ec, rel_r] = co_await c.async_call(relative, as_tuple(asio::use_awaitable));
    expect(rel_ec == agent::errc::rpc_failed &&
               rel_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
           "a relative path is INVALID_ARGUMENT");

    cz_agent_Mount mount = cz_agent_Mount_init_zero;
    agent::set_string(mount.source, "tmpfs", ec);
    agent::set_string(mount.target, "/run/m", ec);
    agent::set_string(mount.fstype, "tmpfs", ec);
    mount.create_target = true;
    auto [mount_ec, mount_r] = co_await c.async_call(mount, as_tuple(asio::use_awaitable));
    expect(!mount_ec, "mount tmpfs: " + mount_ec.message());
    auto run = co_await stat("/run");
    auto m = co_await stat("/run/m");
    expect(run.result.stat.dev != m.result.stat.dev, "the tmpfs is a file system of its own");

    cz_agent_SetHostname host = cz_agent_SetHostname_init_zero;
    agent::set_string(host.hostname, "cz-agent-test", ec);
    auto [host_ec, host_r] = co_await c.async_call(host, as_tuple(asio::use_awaitable));
    expect(!host_ec, "sethostname: " + host_ec.message());

    cz_agent_ConfigureHosts hosts = cz_agent_ConfigureHosts_init_zero;
    agent::set_string(hosts.root, "/run/cz/rootfs/merged", ec);
    hosts.entries_count = 1;
    agent::set_string(hosts.entries[0].address, "10.0.2.15", ec);
    hosts.entries[0].names_count = 1;
    agent::set_string(hosts.entries[0].names[0], "cz-agent-test", ec);
    auto [hosts_ec, hosts_r] = co_await c.async_call(hosts, as_tuple(asio::use_awaitable));
    expect(!hosts_ec, "configure hosts: " + hosts_ec.message());
    std::string expected_hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                 "10.0.2.15\tcz-agent-test\n";
    auto hosts_st = co_await stat("/run/cz/rootfs/merged/etc/hosts");
    expect(hosts_st.result.stat.size == expected_hosts.size(),
           "/etc/hosts in the container's root");

    cz_agent_ConfigureDns dns = cz_agent_ConfigureDns_init_zero;
    dns.nameservers_count = 1;
    agent::set_string(dns.nameservers[0], "10.0.2.3", ec);
    auto [dns_ec, dns_r] = co_await c.async_call(dns, as_tuple(asio::use_awaitable));
    auto dns_st = co_await stat("/etc/resolv.conf");
    expect(!dns_ec && dns_st.result.stat.size == std::string("nameserver 10.0.2.3\n").size(),
           "resolv.conf");

    auto image_file = co_await stat("/run/cz/rootfs/merged/hello.txt");
    expect(image_file.which_result == cz_agent_Response_stat_tag &&
               image_file.result.stat.size == image_hello_text.size(),
           "the image's file through the overlay");

    cz_agent_Sysctl sysctl = cz_agent_Sysctl_init_zero;
    agent::set_string(sysctl.key, "../../etc/passwd", ec);
    auto [sys_ec, sys_r] = co_await c.async_call(sysctl, as_tuple(asio::use_awaitable));
    expect(sys_r.result.error.code == cz_agent_ErrorCode_ERROR_INVALID_ARGUMENT,
           "a sysctl key that is a path is refused");

    // Every RPC is served now; the network ones are tested in agent_net_vm.cpp.
    cz_agent_IpLinkSet link = cz_agent_IpLinkSet_init_zero;
    agent::set_string(link.interface, "lo", ec);
    link.up = true;
    auto [link_ec, link_r] = co_await c.async_call(link, as_tuple(asio::use_awaitable));
    expect(!link_ec && link_r.which_result == cz_agent_Response_done_tag, "IpLinkSet lo up");

    co_await exercise_processes(c, problems);
    co_await exercise_copies(c, problems, copy_source());

    auto [down_ec, down_r] = co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                                   as_tuple(asio::use_awaitable));
    expect(!down_ec && down_r.which_result == cz_agent_Response_done_tag, "shutdown answered");
}

// Statistics of `container`, which must succeed.
asio::awaitable<cz_agent_StatisticsResult> statistics(agent::client& c,
                                                      const std::string& container) {
    cz_agent_Statistics req = cz_agent_Statistics_init_zero;
    std::error_code ec;
    agent::set_string(req.container_id, container, ec);
    auto r = co_await call(c, req, "statistics " + container);
    co_return r.result.statistics;
}

// Waits until a begun process has written `text` to its stdout (or ended, or 30 s have passed).
asio::awaitable<void> wait_for_output(running r, const std::string& text) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (int i = 0; i < 3000 && r->out.find(text) == std::string::npos && r->readers > 0; ++i) {
        t.expires_after(std::chrono::milliseconds(10));
        co_await t.async_wait(asio::use_awaitable);
    }
}

// container_config with linux.resources `resources`, a /dev of its own (tmpfs, with the default
// devices: /dev/zero), and its own view of its cgroup: a cgroup namespace, and cgroup2 on
// /sys/fs/cgroup (its cgroup is the root there).
std::string limited_config(const std::vector<std::string>& args, const nlohmann::json& resources) {
    const nlohmann::json mounts = {{{"destination", "/dev"},
                                    {"type", "tmpfs"},
                                    {"source", "tmpfs"},
                                    {"options", {"nosuid", "mode=755"}}},
                                   {{"destination", "/sys/fs/cgroup"},
                                    {"type", "cgroup"},
                                    {"source", "cgroup"},
                                    {"options", {"nosuid", "noexec", "nodev", "ro"}}}};
    auto spec = nlohmann::json::parse(container_config(args, mounts));
    spec["linux"]["namespaces"].push_back({{"type", "cgroup"}});
    spec["linux"]["resources"] = resources;
    return spec.dump();
}

// Limits from the spec, in one VM: a memory limit that gets a process OOM-killed (reported in
// WaitProcess, ProcessExited and an OomKilled event) and one that is not reached; Statistics;
// cpu.max and its throttling, pids.max, an rlimit, a seccomp profile.
asio::awaitable<void> exercise_limits(agent::client& c, std::vector<std::string>& problems) {
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back("limits: " + what);
    };
    co_await c.async_handshake(asio::use_awaitable);
    // The events, in arrival order: "oom <container> <count>", "exit <container> <status> <oom>".
    std::vector<std::string> events;
    c.on_event([&](const agent::event& e) {
        if (e.which_kind == cz_agent_Event_oom_killed_tag)
            events.push_back("oom " +
                             std::string(agent::get_string(e.kind.oom_killed.container_id)) + " " +
                             std::to_string(e.kind.oom_killed.count));
        else if (e.which_kind == cz_agent_Event_process_exited_tag)
            events.push_back("exit " +
                             std::string(agent::get_string(e.kind.process_exited.container_id)) +
                             " " + std::to_string(e.kind.process_exited.status) + " " +
                             (e.kind.process_exited.oom_killed ? "oom" : "-"));
    });
    c.async_run([&](std::error_code e) {
        if (e) problems.push_back("connection: " + e.message());
    });
    auto sh = [](const std::string& script) {
        std::vector<std::string> args;
        args.push_back("/bin/sh");
        args.push_back("-c");
        args.push_back(script);
        return args;
    };
    auto joined = [&] {
        std::string all;
        for (const auto& e : events)
            all += "[" + e + "] ";
        return all;
    };
    // A finished container's status, oom_killed and stdout, and the events its exit brought:
    // an OomKilled (count 1) first when it was OOM-killed, then its ProcessExited.
    auto check_exit = [&](const running& r, int status, bool oom, const std::string& out,
                          const std::string& what) {
        expect(r->status == status && r->oom_killed == oom && r->out == out,
               what + ": status " + std::to_string(r->status) +
                   (r->oom_killed ? ", oom_killed" : ", not oom_killed") + ", out '" + r->out +
                   "', err '" + r->err + "'");
        std::vector<std::string> want;
        if (oom) want.push_back("oom " + r->container + " 1");
        want.push_back("exit " + r->container + " " + std::to_string(status) +
                       (oom ? " oom" : " -"));
        expect(events == want, what + ": events " + joined());
        events.clear();
    };
    const nlohmann::json memory_16m = {{"memory", {{"limit", 16 << 20}}}};

    // The program itself holds 64 MiB (dd's buffer, filled from /dev/zero): SIGKILL, 137.
    auto config = limited_config(sh("cat /sys/fs/cgroup/memory.max; "
                                    "exec dd if=/dev/zero of=/dev/null bs=64M count=1"),
                                 memory_16m);
    auto r = co_await run_process(c, "oom1", "oom1", config, "");
    check_exit(r, 137, true, "16777216\n", "dd of 64 MiB under a 16 MiB limit");
    // An exited container's figures stay until it is deleted: the kill is counted.
    auto st = co_await statistics(c, "oom1");
    expect(st.has_memory && st.memory.oom_kill_events == 1 && st.memory.max == 16u << 20,
           "Statistics of oom1: memory " + std::to_string(st.has_memory) + ", oom_kill " +
               std::to_string(st.memory.oom_kill_events) + ", max " +
               std::to_string(st.memory.max));
    co_await delete_process(c, "oom1", "oom1");

    // The shell's child is the one killed, and the shell passes its 137 on. (Not `head -c 64m
    // /dev/zero | tail`, which is OOM-killed the same way but took 35 s under TCG, against about
    // 1 s for dd.)
    config = limited_config(sh("dd if=/dev/zero of=/dev/null bs=64M count=1; s=$?; echo dd $s; "
                               "exit $s"),
                            memory_16m);
    r = co_await run_process(c, "oom2", "oom2", config, "");
    check_exit(r, 137, true, "dd 137\n", "a shell's dd of 64 MiB under a 16 MiB limit");
    co_await delete_process(c, "oom2", "oom2");

    // Under the limit: no kill, no flag, no event. And a SIGKILL that is not the OOM killer's.
    config = limited_config(sh("dd if=/dev/zero of=/dev/null bs=4M count=2 2>/dev/null && "
                               "echo fits; kill -9 $$"),
                            memory_16m);
    r = co_await run_process(c, "fits", "fits", config, "");
    check_exit(r, 137, false, "fits\n", "8 MiB in 4 MiB blocks under 16 MiB, then kill -9");
    co_await delete_process(c, "fits", "fits");

    // Statistics of a running container that holds 4 MiB in a shell variable, with limits.
    const nlohmann::json limits = {{"memory", {{"limit", 32 << 20}}}, {"pids", {{"limit", 20}}}};
    config = limited_config(sh("x=$(head -c 4m /dev/zero | tr '\\0' a); echo ready; "
                               "while [ ! -e /tmp/stats-go ]; do sleep 0.1; done"),
                            limits);
    auto held = co_await begin_process(c, "stats", "stats", config, "");
    co_await wait_for_output(held, "ready\n");
    st = co_await statistics(c, "stats");
    bool has_lo = false;
    for (pb_size_t i = 0; i < st.links_count; ++i)
        has_lo = has_lo || agent::get_string(st.links[i].interface) == "lo";
    expect(st.has_memory && st.memory.current >= (4u << 20) && st.memory.current <= (32u << 20) &&
               st.memory.anon >= (4u << 20) && st.memory.max == (32u << 20) &&
               st.memory.oom_kill_events == 0,
           "Statistics' memory: current " + std::to_string(st.memory.current) + ", anon " +
               std::to_string(st.memory.anon) + ", max " + std::to_string(st.memory.max) +
               ", oom_kill " + std::to_string(st.memory.oom_kill_events));
    expect(st.has_pids && st.pids.current >= 2 && st.pids.current <= 5 && st.pids.max == 20,
           "Statistics' pids: current " + std::to_string(st.pids.current) + ", max " +
               std::to_string(st.pids.max));
    expect(st.has_cpu && st.cpu.usage_usec > 0 &&
               st.cpu.usage_usec >= st.cpu.user_usec + st.cpu.system_usec - 1,
           "Statistics' cpu: usage " + std::to_string(st.cpu.usage_usec) + " us, user " +
               std::to_string(st.cpu.user_usec) + ", system " + std::to_string(st.cpu.system_usec));
    expect(has_lo, "Statistics' links include lo (" + std::to_string(st.links_count) + " links)");
    cz_agent_WriteFile go{};
    std::error_code ec;
    agent::set_string(go.path, "/run/cz/rootfs/merged/tmp/stats-go", ec);
    auto [go_ec, go_r] = co_await c.async_call(go, as_tuple(asio::use_awaitable));
    expect(!go_ec, "writing /tmp/stats-go: " + go_ec.message());
    held = co_await finish_process(c, held);
    expect(held->status == 0, "the stats container: status " + std::to_string(held->status) +
                                  ", err '" + held->err + "'");
    co_await delete_process(c, "stats", "stats");
    cz_agent_Statistics gone = cz_agent_Statistics_init_zero;
    agent::set_string(gone.container_id, "stats", ec);
    auto [gone_ec, gone_r] = co_await c.async_call(gone, as_tuple(asio::use_awaitable));
    expect(gone_r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND,
           "Statistics of a deleted container is NOT_FOUND");

    // cpu.max as the spec says, quota and period, or the quota with the default period; a busy
    // loop at a tenth of a CPU gets throttled.
    const nlohmann::json cpu_tenth = {{"cpu", {{"quota", 1000}, {"period", 10000}}}},
                         cpu_half = {{"cpu", {{"quota", 50000}}}};
    config = limited_config(sh("cat /sys/fs/cgroup/cpu.max; i=0; "
                               "while [ $i -lt 200 ]; do i=$((i+1)); done; "
                               "grep nr_throttled /sys/fs/cgroup/cpu.stat"),
                            cpu_tenth);
    r = co_await run_process(c, "cpu", "cpu", config, "");
    auto throttled = r->out.find("nr_throttled ");
    expect(r->status == 0 && r->out.rfind("1000 10000\n", 0) == 0 &&
               throttled != std::string::npos && r->out.compare(throttled, 15, "nr_throttled 0\n"),
           "cpu.max 1000 10000 and throttled: status " + std::to_string(r->status) + ", out '" +
               r->out + "', err '" + r->err + "'");
    co_await delete_process(c, "cpu", "cpu");
    config = limited_config(sh("cat /sys/fs/cgroup/cpu.max"), cpu_half);
    r = co_await run_process(c, "cpu2", "cpu2", config, "");
    expect(r->status == 0 && r->out == "50000 100000\n",
           "cpu.max of a quota alone: '" + r->out + "', err '" + r->err + "'");
    co_await delete_process(c, "cpu2", "cpu2");

    // pids.max 3: the shim, the shell and one more; the second background sleep cannot fork.
    const nlohmann::json pids_3 = {{"pids", {{"limit", 3}}}};
    config = limited_config(sh("read max </sys/fs/cgroup/pids.max; echo $max; "
                               "sleep 1 & sleep 1 & wait"),
                            pids_3);
    r = co_await run_process(c, "pids", "pids", config, "");
    expect(r->out == "3\n" && r->err.find("can't fork") != std::string::npos,
           "pids.max 3: status " + std::to_string(r->status) + ", out '" + r->out + "', err '" +
               r->err + "'");
    co_await delete_process(c, "pids", "pids");

    // process.rlimits: RLIMIT_NOFILE's soft and hard limits, as ulimit sees them.
    auto spec = nlohmann::json::parse(container_config(sh("ulimit -n; ulimit -Hn")));
    spec["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 512}, {"hard", 1024}}};
    r = co_await run_process(c, "rlimit", "rlimit", spec.dump(), "");
    expect(r->status == 0 && r->out == "512\n1024\n",
           "RLIMIT_NOFILE 512/1024: '" + r->out + "', err '" + r->err + "'");
    co_await delete_process(c, "rlimit", "rlimit");

    // A seccomp profile that lets everything through but mkdir (both system calls): EPERM for
    // mkdir, and the rest works.
    spec = nlohmann::json::parse(container_config(
        sh("mkdir /tmp/denied; echo mkdir $?; echo made > /tmp/allowed && cat /tmp/allowed; "
           "[ -e /tmp/denied ] || echo no dir")));
    spec["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"architectures", {"SCMP_ARCH_X86_64"}},
        {"syscalls",
         {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
    r = co_await run_process(c, "seccomp", "seccomp", spec.dump(), "");
    expect(r->status == 0 && r->out == "mkdir 1\nmade\nno dir\n" &&
               r->err.find("Operation not permitted") != std::string::npos,
           "seccomp denying mkdir: status " + std::to_string(r->status) + ", out '" + r->out +
               "', err '" + r->err + "'");
    co_await delete_process(c, "seccomp", "seccomp");

    c.on_event({}); // `events` ends with this coroutine
    auto [down_ec, down_r] = co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                                   as_tuple(asio::use_awaitable));
    expect(!down_ec, "shutdown: " + down_ec.message());
}

using exercise_fn = asio::awaitable<void> (*)(agent::client&, std::vector<std::string>&);

void run_agent_vm(transport t, exercise_fn talk = exercise) {
    copy_source(); // made here: doctest's assertions are for the test thread
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.via = t;
    cfg.image = image_disk();
    agent_vm vm(ctx, cfg);
    vm.start();

    std::vector<std::string> problems;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            asio::io_context io;
            std::error_code cec;
            auto socket = vm.connect(io, cec);
            if (cec) throw std::runtime_error("no connection to cz-init: " + cec.message());
            agent::client c(std::move(socket));
            run_talk(io, c, talk(c, problems));
        },
        std::chrono::minutes(2), ec);
    const auto& console = vm.vm().console();
    INFO(console);
    CHECK(!ec);
    CHECK(status.clean()); // cz-init powered the VM off after Shutdown
    for (const auto& p : problems)
        CHECK_MESSAGE(false, p);
    CHECK(console.find("cz-init: info: ready") != std::string::npos);
}

} // namespace

TEST_CASE("cz-init agent over vsock: file system, mounts, hosts, DNS, errors, shutdown") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    run_agent_vm(transport::vsock);
}

TEST_CASE("cz-init agent over virtio-serial: the same, on a virtserialport") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    run_agent_vm(transport::serial);
}

TEST_CASE("cz-init limits: a memory limit's OOM kill reported (WaitProcess, ProcessExited, "
          "OomKilled), one not reached; Statistics; cpu, pids, rlimits, seccomp") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    run_agent_vm(transport::vsock, exercise_limits);
}
