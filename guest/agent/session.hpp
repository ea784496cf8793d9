// guest/agent/session.hpp — one host connection, served: cz-init sends its Hello, takes the
// host's, then answers each Request (rpc.hpp does the work) until the host goes away, breaks the
// protocol, or asks for Shutdown.
//
// The host is who cz-init works for, but its bytes are still checked as the host checks the
// guest's: frames are size-checked before they are buffered (cz/agent/frame.hpp), messages
// decoded into bounded structs and checked against what a host may send. A protocol error ends
// this connection only; cz-init waits for the next one. When the host stops reading, answers
// queue up to a bound and then cz-init stops reading requests until they drain.
#pragma once

#include "event_loop.hpp"
#include "processes.hpp"

#include <cz/agent/frame.hpp>
#include <cz/agent/handshake.hpp>
#include <cz/agent/protocol.hpp>
#include <cz/core/unique_fd.hpp>

#include <memory>
#include <optional>
#include <system_error>

namespace cz::guest {

class session final : private host_link {
public:
    enum class outcome {
        closed,         // the host closed the connection
        protocol_error, // the host broke the protocol (logged); the connection was dropped
        shutdown,       // the host asked for Shutdown, and its answer has been sent
    };

    // `processes` outlives the session: processes keep running between host connections.
    session(event_loop& loop, process_table& processes, unique_fd connection);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Serves the connection until one of the outcomes.
    outcome run();

    // Answers waiting to be written, in bytes: the back-pressure bound applies to this.
    static constexpr std::size_t max_pending_output = 4u << 20;

private:
    // host_link: what the process table sends.
    bool can_send() const override { return writer_.pending().size() < max_pending_output; }
    void send_stream_data(std::uint32_t stream, bytes_view data, bool eof) override;
    void send_output(std::uint32_t stream, std::span<std::byte> buffer) override;
    void send_stream_credit(std::uint32_t stream, std::uint32_t bytes) override;
    void send(const agent::envelope& m) override;

    void on_ready(std::uint32_t events);
    void read_input();
    void handle_frame(bytes_view frame);
    void handle_request(const agent::request& req);
    void flush();
    void update_interest();
    void fail(const std::error_code& ec, const char* what);
    void wait_for_host_close();

    event_loop& loop_;
    process_table& processes_;
    unique_fd conn_;
    agent::frame_reader reader_;
    agent::frame_writer writer_;
    agent::hello hello_;
    std::optional<agent::session> negotiated_;
    // ~22 KiB each: one of each per connection, never on the stack.
    std::unique_ptr<agent::envelope> in_;
    std::unique_ptr<agent::envelope> out_;
    std::optional<outcome> done_;
    std::optional<std::uint32_t> watched_; // the connection's epoll interest, once set
    bool shutdown_requested_ = false;
};

} // namespace cz::guest
