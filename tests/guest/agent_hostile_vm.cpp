// cz-init against a hostile host, in one real VM (QEMU, TCG here; vsock): bytes that break the
// protocol in each way a host can break it. After each, cz-init drops that connection (the host
// sees it close, and cz-init logs why) or answers with an error, and then serves a fresh
// connection normally: it serves one connection after another (guest/cz_init.cpp). Then a
// process that writes forever to a stream the host never reads: credit stops it, cz-init's
// memory stays where it was, and the same connection keeps answering RPCs; that case runs over
// virtio-serial too.
//
// The broken inputs are written as raw bytes on the socket; cz/agent's frame.hpp encodes the
// well-formed ones.
#include "guest/vm/agent_harness.hpp"
#include "support/support.hpp"

#include <cz/agent/client.hpp>
#include <cz/agent/frame.hpp>
#include <cz/agent/handshake.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <poll.h>
#include <sys/stat.h>

#include <optional>
#include <sstream>

using namespace cz_test;
using namespace cz::guest::test;
namespace agent = cz::agent;
using asio::experimental::as_tuple;

namespace {

// How long cz-init gets to answer or to close, each time (TCG on a busy machine is slow).
constexpr auto io_timeout = std::chrono::seconds(20);

// --- protobuf wire format, for the messages no encoder would write --------------------------

std::string varint(std::uint64_t v) {
    std::string out;
    while (v >= 0x80) {
        out += static_cast<char>(v | 0x80);
        v >>= 7;
    }
    return out + static_cast<char>(v);
}

// A varint field, and a length-delimited one (protobuf's wire types 0 and 2).
std::string varint_field(std::uint32_t number, std::uint64_t v) {
    return varint(std::uint64_t(number) << 3) + varint(v);
}
std::string bytes_field(std::uint32_t number, const std::string& payload) {
    return varint((std::uint64_t(number) << 3) | 2) + varint(payload.size()) + payload;
}

std::string le32(std::uint32_t n) {
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i)
        out[i] = static_cast<char>(n >> (8 * i));
    return out;
}

std::string frame(const std::string& message) {
    return le32(static_cast<std::uint32_t>(message.size())) + message;
}

// --- a connection the test writes anything on ------------------------------------------------

class raw_connection {
public:
    explicit raw_connection(asio::local::stream_protocol::socket s)
        : s_(std::move(s)), msg_(std::make_unique<agent::envelope>()) {}

    void send(const std::string& bytes) { asio::write(s_, asio::buffer(bytes)); }
    void send(const agent::envelope& m) {
        cz::byte_buffer out;
        agent::encode_frame(m, agent::default_max_frame_size, out);
        asio::write(s_, asio::buffer(out.data(), out.size()));
    }
    void shutdown_send() { s_.shutdown(asio::socket_base::shutdown_send); }

    // Our Hello, then cz-init's.
    void handshake() {
        auto m = std::make_unique<agent::envelope>();
        *m = cz_agent_Envelope_init_zero;
        m->which_kind = cz_agent_Envelope_hello_tag;
        m->kind.hello = agent::make_hello(agent::role::host);
        send(*m);
        if (next().which_kind != cz_agent_Envelope_hello_tag)
            throw std::runtime_error("cz-init's first message is no Hello");
    }

    // cz-init's next message (valid until the next call); throws at eof, on a bad frame, or
    // after io_timeout.
    const agent::envelope& next() {
        for (;;) {
            std::error_code ec;
            auto f = reader_.next(ec);
            if (!ec) {
                agent::decode_message(f, *msg_);
                return *msg_;
            }
            if (ec != agent::errc::need_more)
                throw std::runtime_error("cz-init's frames: " + ec.message());
            if (!readable(io_timeout)) throw std::runtime_error("cz-init did not answer in time");
            auto space = reader_.prepare();
            auto n = s_.read_some(asio::buffer(space.data(), space.size()), ec);
            if (ec) throw std::runtime_error("reading from cz-init: " + ec.message());
            reader_.commit(n);
        }
    }

    // The answer to request `id`, skipping whatever else comes first.
    const agent::response& answer(std::uint64_t id) {
        for (;;) {
            const auto& m = next();
            if (m.which_kind == cz_agent_Envelope_response_tag && m.kind.response.id == id)
                return m.kind.response;
        }
    }

    // Whether cz-init closes the connection within io_timeout (what it sends first is dropped).
    bool closed_by_guest() {
        auto deadline = std::chrono::steady_clock::now() + io_timeout;
        char buf[4096];
        while (readable(std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now()))) {
            std::error_code ec;
            s_.read_some(asio::buffer(buf), ec);
            if (ec) return ec == asio::error::eof || ec == asio::error::connection_reset;
        }
        return false;
    }

private:
    bool readable(std::chrono::milliseconds timeout) {
        if (timeout.count() <= 0) return false;
        pollfd p{s_.native_handle(), POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
    }

    asio::local::stream_protocol::socket s_;
    agent::frame_reader reader_;
    std::unique_ptr<agent::envelope> msg_;
};

std::unique_ptr<agent::envelope> request_envelope(std::uint64_t id) {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_request_tag;
    m->kind.request.id = id;
    return m;
}

// Stat of "/" as request `id`, answered with a directory's stat.
bool stat_answers(raw_connection& c, std::uint64_t id) {
    auto m = request_envelope(id);
    m->kind.request.which_rpc = cz_agent_Request_stat_tag;
    m->kind.request.rpc.stat = stat_request("/");
    c.send(*m);
    const auto& r = c.answer(id);
    return r.which_result == cz_agent_Response_stat_tag && S_ISDIR(r.result.stat.mode);
}

// --- the cases ---------------------------------------------------------------------------------

// One way to break the protocol: what to send on a fresh connection, whether to shake hands
// first, and the reason cz-init logs when it drops the connection.
struct breakage {
    const char* name;
    bool handshake;
    std::string bytes;
    const char* logged;
};

std::vector<breakage> breakages() {
    // Envelope's fields (agent.proto): request 2, response 3, stream_data 5, stream_credit 6.
    return {
        {"a frame length above the maximum", true,
         le32(agent::default_max_frame_size + 1) + std::string(64, 'x'),
         "bad frame: frame larger than the maximum frame size"},
        {"a frame of length zero", true, le32(0), "bad frame: frame of length zero"},
        {"garbage instead of a Hello (an HTTP request)", false,
         "GET / HTTP/1.1\r\nHost: cz-init\r\n\r\n",
         "bad frame: frame larger than the maximum frame size"},
        {"a frame of garbage", true, frame(std::string(32, '\xff')),
         "decoding a message: malformed message"},
        {"an unknown message kind (Envelope field 15)", true, frame(bytes_field(15, "")),
         "a message the host may not send: unknown message kind"},
        {"a Response from the host", true,
         frame(bytes_field(3, varint_field(1, 5) + bytes_field(3, ""))),
         "a message the host may not send: message not allowed here"},
        {"data on a stream never opened", true,
         frame(bytes_field(5, varint_field(1, 4242) + bytes_field(3, "data"))),
         "stream data: unknown stream"},
        {"credit for a stream never opened", true,
         frame(bytes_field(6, varint_field(1, 4243) + varint_field(2, 4096))),
         "stream credit: unknown stream"},
        {"a frame cut mid-way, then the end of the stream", true, le32(100) + std::string(10, 'x'),
         "the host went away inside a frame: stream ended inside a frame"},
    };
}

// Every breakage on a connection of its own; after each, a fresh connection that must work.
void break_protocol(const agent_vm& vm, std::vector<std::string>& problems) {
    asio::io_context io;
    auto fresh = [&] {
        std::error_code ec;
        auto s = vm.connect(io, ec);
        if (ec) throw std::runtime_error("no connection to cz-init: " + ec.message());
        return raw_connection(std::move(s));
    };
    auto serves_normally = [&](const std::string& after) {
        auto c = fresh();
        c.handshake();
        if (!stat_answers(c, 1)) problems.push_back("after " + after + ": Stat / is not answered");
    };
    serves_normally("booting");

    for (const auto& b : breakages()) {
        auto c = fresh();
        if (b.handshake) c.handshake();
        c.send(b.bytes);
        if (std::string(b.name).find("cut mid-way") != std::string::npos) c.shutdown_send();
        if (!c.closed_by_guest())
            problems.push_back(std::string(b.name) + ": cz-init did not close the connection");
        serves_normally(b.name);
    }

    // An RPC this protocol does not have (Request field 99): answered with an error, and the
    // connection goes on.
    auto c = fresh();
    c.handshake();
    c.send(frame(bytes_field(2, varint_field(1, 7) + varint_field(99, 1))));
    const auto& r = c.answer(7);
    if (r.which_result != cz_agent_Response_error_tag ||
        r.result.error.code != cz_agent_ErrorCode_ERROR_UNIMPLEMENTED)
        problems.push_back("an unknown RPC is not answered UNIMPLEMENTED");
    if (!stat_answers(c, 8)) problems.push_back("after an unknown RPC: Stat / is not answered");
}

// --- a process that writes forever, and a host that never reads it -----------------------------

// VmRSS and VmHWM of cz-init, in KiB, as a container that shares the VM's pid namespace reads
// them from its /proc/1/status.
asio::awaitable<std::pair<long, long>> init_memory(agent::client& c, std::uint32_t stream) {
    std::vector<std::string> args{"/bin/grep", "-E", "^Vm(RSS|HWM):", "/proc/1/status"};
    auto [text, status] = co_await capture_output(c, "probe", "status" + std::to_string(stream),
                                                  process_config(args), stream);
    long rss = -1, hwm = -1;
    std::istringstream lines(text);
    std::string key;
    long kib = 0;
    std::string unit;
    while (lines >> key >> kib >> unit) {
        if (key == "VmRSS:") rss = kib;
        if (key == "VmHWM:") hwm = kib;
    }
    if (status != 0 || rss < 0 || hwm < 0)
        throw std::runtime_error("/proc/1/status: status " + std::to_string(status) + ", '" + text +
                                 "'");
    co_return std::pair{rss, hwm};
}

asio::awaitable<void> flood(agent::client& c, std::vector<std::string>& problems,
                            std::string& note) {
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    };
    co_await c.async_handshake(asio::use_awaitable);
    c.async_run([&](std::error_code e) {
        if (e) problems.push_back("connection: " + e.message());
    });

    // A container in the VM's pid namespace: its /proc/1 is cz-init. A /dev of its own, with
    // /dev/zero.
    std::vector<std::string> sleep_args{"/bin/sleep", "1000000"};
    nlohmann::json dev =
        nlohmann::json::array({{{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"}}});
    auto spec = nlohmann::json::parse(container_config(sleep_args, dev));
    spec["linux"]["namespaces"] =
        nlohmann::json::array({{{"type", "mount"}}, {{"type", "uts"}}, {{"type", "ipc"}}});
    auto probe_config = spec.dump();
    co_await call(c, create_request("probe", "probe", probe_config), "create probe");
    co_await call(c, process_request<cz_agent_StartProcess>("probe", "probe"), "start probe");
    auto [rss_before, hwm_before] = co_await init_memory(c, 1);

    // cat writes forever; its stream gets the window's credit and never any more.
    const std::uint32_t out = 100;
    std::error_code ec;
    c.open_stream(out, ec);
    std::vector<std::string> cat_args{"/bin/cat", "/dev/zero"};
    auto cat_config = process_config(cat_args);
    co_await call(c, create_request("probe", "cat", cat_config, 0, out, 0), "create cat");
    co_await call(c, process_request<cz_agent_StartProcess>("probe", "cat"), "start cat");
    // Meanwhile the connection answers: RPCs, for two seconds (cat would write hundreds of MiB).
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto stat = stat_request("/");
    int answered = 0;
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
         std::chrono::steady_clock::now() < end;) {
        auto [e, r] = co_await c.async_call(stat, as_tuple(asio::use_awaitable));
        answered += !e && r.which_result == cz_agent_Response_stat_tag;
        t.expires_after(std::chrono::milliseconds(50));
        co_await t.async_wait(asio::use_awaitable);
    }
    expect(answered >= 5, "Stat answered " + std::to_string(answered) + " times while cat wrote");
    auto [rss_after, hwm_after] = co_await init_memory(c, 2);
    note = "cz-init VmRSS " + std::to_string(rss_before) + " -> " + std::to_string(rss_after) +
           " KiB, VmHWM " + std::to_string(hwm_before) + " -> " + std::to_string(hwm_after) +
           " KiB while cat wrote";
    // The window (the host grants agent::default_host_stream_window) and a pipe's worth are all
    // that may wait in cz-init's queue; 2 MiB more leaves room for the allocator's own (the
    // queue's buffer grows by doubling).
    const long bound_kib = long(agent::default_host_stream_window >> 10) + 2048;
    expect(rss_after - rss_before < bound_kib && hwm_after - hwm_before < bound_kib,
           "cz-init's memory grew while nobody read cat's output: VmRSS " +
               std::to_string(rss_before) + " -> " + std::to_string(rss_after) + " KiB, VmHWM " +
               std::to_string(hwm_before) + " -> " + std::to_string(hwm_after) + " KiB");

    // cat is stopped, not gone: killed, its output read to the end, its status 128 + 9.
    auto kill = process_request<cz_agent_KillProcess>("probe", "cat");
    kill.signal = SIGKILL;
    co_await call(c, kill, "kill cat");
    std::vector<std::byte> buf(256 << 10);
    std::uint64_t drained = 0;
    for (;;) {
        auto [e, n] = co_await c.async_read_stream(out, buf, as_tuple(asio::use_awaitable));
        drained += n;
        if (e) break;
    }
    auto w = co_await call(c, process_request<cz_agent_WaitProcess>("probe", "cat"), "wait cat");
    expect(w.result.wait_process.status == 137,
           "cat after SIGKILL: status " + std::to_string(w.result.wait_process.status));
    expect(drained >= agent::default_host_stream_window,
           "cat's stream held " + std::to_string(drained) + " bytes, less than its window");

    auto [down_ec, down_r] = co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                                   as_tuple(asio::use_awaitable));
    expect(!down_ec, "shutdown: " + down_ec.message());
}

// --- a hostile guest, over a virtio-serial port ------------------------------------------------

// The fake agent is `cat` in a container, copying what the host streams to its stdin onto a
// second virtio-serial port ("fake"); a second client, on that port's socket, meets it: a valid
// Hello, then the breakage. A virtio-serial port never ends for the host (the guest closing it
// does not close the host's socket), so a fake that stops mid-frame leaves the client waiting,
// until the host gives up and closes it.
struct fake_agent_case {
    const char* name;
    std::string after_hello;
    std::optional<agent::errc> expected; // none: the client is still waiting after a while
};

std::vector<fake_agent_case> fake_agent_cases() {
    // Envelope's field 2 is a Request, which only the host sends.
    return {
        {"garbage", frame(std::string(8, '\xff')), agent::errc::bad_message},
        {"a frame above the maximum",
         le32(agent::default_max_frame_size + 1) + std::string(64, 'x'),
         agent::errc::frame_too_large},
        {"a 4 GiB frame", le32(0xffffffff), agent::errc::frame_too_large},
        {"a zero-length frame", le32(0), agent::errc::empty_frame},
        {"a Request", frame(bytes_field(2, varint_field(1, 1))), agent::errc::unexpected_message},
        {"a frame cut short, then silence", le32(100) + std::string(10, 'x'), std::nullopt},
    };
}

std::string guest_hello() {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_hello_tag;
    m->kind.hello = agent::make_hello(agent::role::guest);
    cz::byte_buffer out;
    agent::encode_frame(*m, agent::default_max_frame_size, out);
    return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

// Polls until `done()` or `limit` has passed.
template <class Done>
asio::awaitable<bool> settle(Done done, std::chrono::milliseconds limit) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (auto end = std::chrono::steady_clock::now() + limit;
         !done() && std::chrono::steady_clock::now() < end;) {
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return done();
}

asio::awaitable<void> fake_agents(agent::client& c, const agent_vm& vm,
                                  std::vector<std::string>& problems) {
    co_await c.async_handshake(asio::use_awaitable);
    c.async_run([&](std::error_code e) {
        if (e) problems.push_back("connection: " + e.message());
    });
    auto ex = co_await asio::this_coro::executor;
    // The VM's /dev and a sysfs, where the port is found by its name.
    nlohmann::json mounts = nlohmann::json::array(
        {{{"destination", "/dev"}, {"type", "bind"}, {"source", "/dev"}, {"options", {"rbind"}}},
         {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}}});
    std::vector<std::string> sleep_args{"/bin/sleep", "1000000"};
    auto init_config = container_config(sleep_args, mounts);
    co_await call(c, create_request("fake", "fake", init_config), "create the container");
    co_await call(c, process_request<cz_agent_StartProcess>("fake", "fake"), "start the container");
    std::vector<std::string> cat_args{
        "/bin/sh", "-c",
        "for d in /sys/class/virtio-ports/*; do if [ \"$(cat $d/name)\" = fake ]; then "
        "exec cat > /dev/${d##*/}; fi; done; exit 3"};
    auto cat_config = process_config(cat_args);
    std::uint32_t stream = 10;
    for (const auto& fc : fake_agent_cases()) {
        std::string name = fc.name;
        asio::local::stream_protocol::socket s(ex);
        std::error_code ec;
        s.connect(asio::local::stream_protocol::endpoint(vm.serial_socket("fake").string()), ec);
        if (ec) {
            problems.push_back(name + ": connecting to the port: " + ec.message());
            continue;
        }
        agent::client fake(std::move(s));
        auto id = "cat" + std::to_string(++stream);
        c.open_stream(stream, ec);
        co_await call(c, create_request("fake", id, cat_config, stream, 0, 0), "create " + id);
        co_await call(c, process_request<cz_agent_StartProcess>("fake", id), "start " + id);
        auto bytes = guest_hello() + fc.after_hello;
        auto [wec, written] = co_await c.async_write_stream(stream, cz::as_bytes(bytes), true,
                                                            as_tuple(asio::use_awaitable));
        if (wec) problems.push_back(name + ": streaming the fake's bytes: " + wec.message());

        auto [hec, session] = co_await fake.async_handshake(as_tuple(asio::use_awaitable));
        if (hec) {
            problems.push_back(name + ": the fake's Hello: " + hec.message());
        } else {
            std::optional<std::error_code> run_ec, call_ec;
            fake.async_run([&](std::error_code e) { run_ec = e; });
            fake.async_call(cz_agent_Sync(cz_agent_Sync_init_zero),
                            [&](std::error_code e, agent::response) { call_ec = e; });
            auto both = [&] { return run_ec && call_ec; };
            if (fc.expected) {
                if (!co_await settle(both, std::chrono::seconds(20)))
                    problems.push_back(name + ": the client did not end the connection");
                else if (*run_ec != *fc.expected || *call_ec != *fc.expected)
                    problems.push_back(name + ": the connection ended with '" + run_ec->message() +
                                       "', the call with '" + call_ec->message() + "'");
            } else {
                if (co_await settle(both, std::chrono::seconds(3)))
                    problems.push_back(name + ": the client did not wait (" + run_ec->message() +
                                       ")");
                fake.close(); // the host gives up: every pending operation ends
                if (!co_await settle(both, std::chrono::seconds(20)))
                    problems.push_back(name + ": closing the client did not end its call");
                else if (!*call_ec)
                    problems.push_back(name + ": a call pending at the close succeeded");
            }
            co_await settle([] { return false; }, std::chrono::milliseconds(20)); // unwinding
        }
        fake.close();
        // cat ends with the stream (the host's eof), having written everything.
        auto w = co_await call(c, process_request<cz_agent_WaitProcess>("fake", id), "wait " + id);
        if (w.result.wait_process.status != 0)
            problems.push_back(name + ": the fake agent's cat ended with " +
                               std::to_string(w.result.wait_process.status));
        co_await call(c, process_request<cz_agent_DeleteProcess>("fake", id), "delete " + id);
        c.close_stream(stream);
    }
    auto [down_ec, down_r] = co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                                   as_tuple(asio::use_awaitable));
    if (down_ec) problems.push_back("shutdown: " + down_ec.message());
}

} // namespace

TEST_CASE("cz-init against a hostile host: broken frames, garbage, unknown messages and RPCs, "
          "streams never opened, a cut frame, output nobody reads") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.image = busybox_image("guest-agent-hostile-image");
    cfg.log_level = "info";
    agent_vm vm(ctx, cfg);
    vm.start();

    std::vector<std::string> problems;
    std::string note;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            break_protocol(vm, problems);
            asio::io_context io;
            std::error_code cec;
            auto socket = vm.connect(io, cec);
            if (cec) throw std::runtime_error("no connection to cz-init: " + cec.message());
            agent::client c(std::move(socket));
            run_talk(io, c, flood(c, problems, note));
        },
        std::chrono::minutes(3), ec);
    MESSAGE(note);
    const auto& console = vm.vm().console();
    INFO(console);
    CHECK(!ec);
    CHECK(status.clean()); // cz-init powered the VM off after Shutdown
    for (const auto& p : problems)
        CHECK_MESSAGE(false, p);
    for (const auto& b : breakages())
        CHECK_MESSAGE(console.find(std::string("host connection: ") + b.logged) !=
                          std::string::npos,
                      b.name << ": cz-init logged no '" << b.logged << "'");
}

TEST_CASE("cz-init over virtio-serial: output nobody reads") {
    // The same flood as over vsock: a virtio-serial port holds what the host does not read in
    // QEMU and the guest's port buffers, and cz-init must stop at the credit there too.
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.via = transport::serial;
    cfg.image = busybox_image("guest-agent-hostile-image");
    cfg.log_level = "info";
    agent_vm vm(ctx, cfg);
    vm.start();
    std::vector<std::string> problems;
    std::string note;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            asio::io_context io;
            std::error_code cec;
            auto socket = vm.connect(io, cec);
            if (cec) throw std::runtime_error("no connection to cz-init: " + cec.message());
            agent::client c(std::move(socket));
            run_talk(io, c, flood(c, problems, note));
        },
        std::chrono::minutes(3), ec);
    MESSAGE(note);
    const auto& console = vm.vm().console();
    INFO(console);
    CHECK(!ec);
    CHECK(status.clean());
    for (const auto& p : problems)
        CHECK_MESSAGE(false, p);
}

TEST_CASE("cz-init over virtio-serial: a host that hangs up and comes back is served again") {
    // A virtio-serial port has no connections: the host's end is connected or not. While it is
    // not, cz-init waits (it used to start and end a session for every read's end-of-file).
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.via = transport::serial;
    cfg.image = busybox_image("guest-agent-hostile-image");
    cfg.log_level = "info";
    agent_vm vm(ctx, cfg);
    vm.start();
    std::vector<std::string> problems;
    std::error_code ec;
    auto status = vm.serve(
        [&] {
            asio::io_context io;
            auto fresh = [&] {
                std::error_code e;
                auto s = vm.connect(io, e);
                if (e) throw std::runtime_error("no connection to cz-init: " + e.message());
                return raw_connection(std::move(s));
            };
            {
                auto c = fresh();
                c.handshake();
                if (!stat_answers(c, 1)) problems.push_back("Stat / on the first connection");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            auto c = fresh();
            c.handshake();
            if (!stat_answers(c, 2)) problems.push_back("Stat / on the second connection");
            auto down = request_envelope(3);
            down->kind.request.which_rpc = cz_agent_Request_shutdown_tag;
            c.send(*down);
            if (c.answer(3).which_result != cz_agent_Response_done_tag)
                problems.push_back("Shutdown is not answered");
        },
        std::chrono::minutes(2), ec);
    const auto& console = vm.vm().console();
    INFO(console);
    CHECK(!ec);
    CHECK(status.clean());
    for (const auto& p : problems)
        CHECK_MESSAGE(false, p);
    std::size_t ended = 0;
    for (auto at = console.find("host connection ended"); at != std::string::npos;
         at = console.find("host connection ended", at + 1))
        ++ended;
    CHECK_MESSAGE(ended == 1, "cz-init ended " << ended << " sessions for one hang-up");
}

TEST_CASE("a hostile guest over virtio-serial: garbage, huge frames, a frame cut short") {
    // The host's client against a fake agent on a real port (tests/agent/client.cpp has the same
    // breakages on a socket pair): each ends that client's connection with the decoder's error,
    // except a frame cut short, which a port leaves waiting until the host closes it; the real
    // agent, on its own port, goes on serving.
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    asio::io_context ctx;
    agent_vm_config cfg;
    cfg.via = transport::serial;
    cfg.serial_ports = {"fake"};
    cfg.image = busybox_image("guest-agent-hostile-image");
    cfg.log_level = "info";
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
            run_talk(io, c, fake_agents(c, vm, problems));
        },
        std::chrono::minutes(3), ec);
    const auto& console = vm.vm().console();
    INFO(console);
    CHECK(!ec);
    CHECK(status.clean());
    for (const auto& p : problems)
        CHECK_MESSAGE(false, p);
}
