// cz/agent/client.hpp — the host's end of an agent connection, on Asio.
//
// One connected Unix stream socket carries everything (both transports end in one on the host: a
// vsock connection through cz/vsock's hybrid socket, or QEMU's virtio-serial chardev). The client
// sends requests with ids of its own and matches the guest's responses to them in any order,
// hands events to a handler, and moves the bytes of each stream it opened within the credit both
// sides grant (cz/agent/credit.hpp), so a stream nobody reads stops only itself.
//
// The guest is untrusted: every frame is size-checked before it is buffered, decoded into bounded
// structs, checked against what a guest may send; stream data beyond the credit the client
// granted, credit beyond the window, a response to no request: any of these ends the connection
// with the error, and every pending operation fails with it. Memory stays bounded: one frame, the
// window of each open stream, the requests in flight.
//
// Usage (all operations on one thread: a single-threaded io_context, or a strand):
//
//     cz::agent::client c(std::move(socket));
//     co_await c.async_handshake(asio::use_awaitable);
//     asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
//         co_await c.async_run(asio::use_awaitable); }, asio::detached);
//     cz_agent_Stat stat = cz_agent_Stat_init_zero;
//     cz::agent::set_string(stat.path, "/etc/hostname", ec);
//     auto result = co_await c.async_call(stat, asio::use_awaitable);   // a cz::agent::response
//     // result.which_result == cz_agent_Response_stat_tag, result.result.stat.size ...
//
// Needs Asio (link asio_dep beside cz_agent_dep). With CZ_SEPARATE_COMPILATION, the .cpp that
// includes <cz/agent/src.hpp> also includes <cz/agent/client_src.hpp> (src.hpp stays free of
// Asio for programs that use the protocol without this client, such as cz-init).
#pragma once

#include <cz/agent/credit.hpp>
#include <cz/agent/frame.hpp>
#include <cz/agent/handshake.hpp>
#include <cz/agent/protocol.hpp>
#include <cz/core/asio_operation.hpp>
#include <cz/core/bytes.hpp>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

namespace cz::agent {

namespace detail {

// The field number of each RPC's request in Request's oneof, and where it lives in the union.
template <class Rpc>
struct rpc_traits;

#define CZ_AGENT_RPC(type, member)                                                                 \
    template <>                                                                                    \
    struct rpc_traits<type> {                                                                      \
        static constexpr pb_size_t tag = cz_agent_Request_##member##_tag;                          \
        static type& field(request& r) noexcept { return r.rpc.member; }                           \
    };
CZ_AGENT_RPC(cz_agent_Mount, mount)
CZ_AGENT_RPC(cz_agent_Umount, umount)
CZ_AGENT_RPC(cz_agent_Mkdir, mkdir)
CZ_AGENT_RPC(cz_agent_WriteFile, write_file)
CZ_AGENT_RPC(cz_agent_Stat, stat)
CZ_AGENT_RPC(cz_agent_Sysctl, sysctl)
CZ_AGENT_RPC(cz_agent_SetTime, set_time)
CZ_AGENT_RPC(cz_agent_Sync, sync)
CZ_AGENT_RPC(cz_agent_SetHostname, set_hostname)
CZ_AGENT_RPC(cz_agent_ConfigureDns, configure_dns)
CZ_AGENT_RPC(cz_agent_ConfigureHosts, configure_hosts)
CZ_AGENT_RPC(cz_agent_IpLinkSet, ip_link_set)
CZ_AGENT_RPC(cz_agent_IpAddrAdd, ip_addr_add)
CZ_AGENT_RPC(cz_agent_IpRouteAddLink, ip_route_add_link)
CZ_AGENT_RPC(cz_agent_IpRouteAddDefault, ip_route_add_default)
CZ_AGENT_RPC(cz_agent_CreateProcess, create_process)
CZ_AGENT_RPC(cz_agent_StartProcess, start_process)
CZ_AGENT_RPC(cz_agent_WaitProcess, wait_process)
CZ_AGENT_RPC(cz_agent_KillProcess, kill_process)
CZ_AGENT_RPC(cz_agent_ResizeProcess, resize_process)
CZ_AGENT_RPC(cz_agent_CloseProcessStdin, close_process_stdin)
CZ_AGENT_RPC(cz_agent_DeleteProcess, delete_process)
CZ_AGENT_RPC(cz_agent_Statistics, statistics)
CZ_AGENT_RPC(cz_agent_CopyIn, copy_in)
CZ_AGENT_RPC(cz_agent_CopyOut, copy_out)
CZ_AGENT_RPC(cz_agent_Shutdown, shutdown)
CZ_AGENT_RPC(cz_agent_Awaken, awaken)
CZ_AGENT_RPC(cz_agent_MountRootfs, mount_rootfs)
#undef CZ_AGENT_RPC

} // namespace detail

// A request message of agent.proto (cz_agent_Mount, cz_agent_Stat, ...).
template <class T>
concept rpc_request = requires(request& r) {
    { detail::rpc_traits<T>::tag } -> std::convertible_to<pb_size_t>;
    { detail::rpc_traits<T>::field(r) } -> std::same_as<T&>;
};

// The credit the host grants each stream it receives on, unless told otherwise: four times the
// protocol's default (which the guest, short of memory, grants). A guest's output keeps flowing
// while the credit for what it sent is on its way back (a grant per half window): under TCG,
// where waking the host or the guest is slow, 256 KiB left cz-init waiting for credit in
// benchmarks/agent_rpc.cpp's 64 KiB writes. It costs the host at most 1 MiB per stream that
// nobody reads.
inline constexpr std::uint32_t default_host_stream_window = 1u << 20;

struct client_options {
    // The largest frame we accept, and the credit we grant each stream we receive on.
    std::uint32_t max_frame_size = default_max_frame_size;
    std::uint32_t stream_window = default_host_stream_window;
};

class client {
public:
    using socket_type = asio::local::stream_protocol::socket;
    using executor_type = socket_type::executor_type;

    explicit client(socket_type socket, client_options options = {})
        : socket_(std::move(socket)), options_(options), reader_(options.max_frame_size),
          message_(std::make_unique<envelope>()), out_(std::make_unique<envelope>()) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }

    // Called for each event, in arrival order, from async_run().
    void on_event(std::function<void(const event&)> handler) { on_event_ = std::move(handler); }

    // Sends our Hello, reads the guest's, and settles the session. Completion:
    // void(std::error_code, session); version_mismatch, bad_hello, unexpected_message (the
    // first frame is no Hello), or the transport's error.
    template <class CompletionToken>
    auto async_handshake(CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), handshake(),
                                           std::forward<CompletionToken>(token));
    }

    // Reads frames until the connection ends, delivering responses, events and stream data.
    // Completion: void(std::error_code) — the error that ended it: clear on a clean end (the
    // guest closed the connection, or answered Shutdown; pending operations then fail with
    // errc::connection_closed), else the protocol or transport error, with which every pending
    // operation fails too. Either way the socket is closed at the end: after Shutdown, that
    // close is what tells cz-init its answer arrived.
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), run(),
                                           std::forward<CompletionToken>(token));
    }

    // Sends one request and waits for its response. Completion: void(std::error_code,
    // response); errc::rpc_failed when the guest answered with an Error (in the response), or
    // the error that ended the connection.
    template <rpc_request Rpc, class CompletionToken>
    auto async_call(const Rpc& rpc, CompletionToken&& token) {
        auto r = std::make_unique<request>();
        *r = cz_agent_Request_init_zero;
        r->which_rpc = detail::rpc_traits<Rpc>::tag;
        detail::rpc_traits<Rpc>::field(*r) = rpc;
        return cz::detail::spawn_operation(get_executor(), call(std::move(r)),
                                           std::forward<CompletionToken>(token));
    }

    // Opens stream `id` (as named in a CreateProcess, CopyIn or CopyOut about to be sent) for
    // both directions. errc::bad_stream when id is 0 or already open.
    CZ_DECL void open_stream(std::uint32_t id, std::error_code& ec);

    // Sends bytes of `data` on stream `id`, as much as the credit allows, waiting until some
    // credit is there; with `eof` and all of data sent, ends the stream's host->guest direction.
    // Completion: void(std::error_code, std::size_t) with the bytes sent. `data` must stay valid
    // until completion.
    template <class CompletionToken>
    auto async_write_stream(std::uint32_t id, bytes_view data, bool eof, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), write_stream(id, data, eof),
                                           std::forward<CompletionToken>(token));
    }

    // Reads bytes that arrived on stream `id` into `out`, waiting until there are some.
    // Completion: void(std::error_code, std::size_t); asio::error::eof once the guest ended the
    // stream and everything was read.
    template <class CompletionToken>
    auto async_read_stream(std::uint32_t id, mutable_bytes out, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), read_stream(id, out),
                                           std::forward<CompletionToken>(token));
    }

    // Forgets stream `id` (both directions); operations waiting on it fail.
    CZ_DECL void close_stream(std::uint32_t id);

    // The settled session (after async_handshake).
    const session& current_session() const noexcept { return session_; }

    // Closes the socket; pending operations complete with errors.
    void close() noexcept {
        std::error_code ignored;
        socket_.close(ignored);
    }

private:
    // A waiting operation's wake-up: a timer that never expires, cancelled to wake.
    using signal = asio::steady_timer;

    struct pending_call {
        signal done;
        std::error_code ec;
        response result;
    };
    struct stream_state {
        stream_state(const executor_type& ex, std::uint32_t send_window,
                     std::uint32_t receive_window)
            : out(send_window), in(receive_window), wake_writer(ex, signal::time_point::max()),
              wake_reader(ex, signal::time_point::max()) {}
        send_credit out;
        stream_buffer in;
        signal wake_writer;
        signal wake_reader;
        bool out_ended = false;
    };

    CZ_DECL asio::awaitable<std::pair<std::error_code, session>> handshake();
    CZ_DECL asio::awaitable<std::error_code> run();
    CZ_DECL asio::awaitable<std::pair<std::error_code, response>> call(std::unique_ptr<request> r);
    CZ_DECL asio::awaitable<std::pair<std::error_code, std::size_t>>
    write_stream(std::uint32_t id, bytes_view data, bool eof);
    CZ_DECL asio::awaitable<std::pair<std::error_code, std::size_t>> read_stream(std::uint32_t id,
                                                                                 mutable_bytes out);
    CZ_DECL asio::awaitable<std::error_code> read_frame(bytes_view& frame);
    CZ_DECL asio::awaitable<void> write_loop();
    CZ_DECL std::error_code send(const envelope& m);
    CZ_DECL void start_writing();
    CZ_DECL std::error_code dispatch(const envelope& m);
    CZ_DECL void fail_all(std::error_code ec);

    socket_type socket_;
    client_options options_;
    session session_;
    bool ready_ = false;
    std::error_code failed_; // set once the connection is gone
    frame_reader reader_;
    frame_writer writer_;
    bool writing_ = false;
    // The frame being handled and the one being encoded (21 KiB each: kept off coroutine frames;
    // each is only used between two suspension points).
    std::unique_ptr<envelope> message_;
    std::unique_ptr<envelope> out_;
    byte_buffer inflight_; // what write_loop() is writing
    std::map<std::uint64_t, pending_call*> calls_;
    std::uint64_t next_id_ = 1;
    // The id of a Shutdown request in flight (0: none): once it is answered, run() closes the
    // connection, which tells cz-init the answer arrived and the power may go.
    std::uint64_t shutdown_id_ = 0;
    bool answered_shutdown_ = false;
    std::map<std::uint32_t, std::unique_ptr<stream_state>> streams_;
    std::function<void(const event&)> on_event_;
};

} // namespace cz::agent

#if CZ_HEADER_ONLY
#include <cz/agent/impl/client.ipp>
#endif
