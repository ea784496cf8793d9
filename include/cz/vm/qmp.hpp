// cz/vm/qmp.hpp — the QEMU Machine Protocol: a parser (no I/O) and a client on Asio.
//
// Protocol primer (docs/interop/qmp-spec.rst): a stream of JSON objects, each ended by CRLF.
//   server -> {"QMP": {"version": {...}, "capabilities": [...]}}          greeting, once
//   client -> {"execute": "qmp_capabilities"}                            leaves negotiation mode;
//   server -> {"return": {}}                                             before it, every other
//                                                                        command fails and no
//                                                                        events are sent
//   client -> {"execute": "query-status", "id": 7}                       commands; "id" is echoed
//   server -> {"return": {"running": true, "status": "running"}, "id": 7}
//   server -> {"error": {"class": "GenericError", "desc": "..."}, "id": 8}
//   server -> {"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"},
//              "timestamp": {"seconds": ..., "microseconds": ...}}       at any time
// Replies come in command order; events may arrive between them. QMP is trusted less than the
// code that runs it: messages are size-capped and every field is type-checked before use.
#pragma once

#include <cz/core/asio_operation.hpp>
#include <cz/core/bytes.hpp>
#include <cz/vm/error.hpp>

#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace cz::vm {

// The longest message the parser accepts. QEMU's replies to query commands stay far below.
inline constexpr std::size_t qmp_max_message = 1 << 20;

struct qmp_message {
    enum class kind { greeting, reply, error, event };
    kind type = kind::reply;
    // greeting: the "QMP" object; reply: the "return" value; error: the "error" object;
    // event: the "data" object (null when absent).
    nlohmann::json value;
    // The echoed command id (replies and errors to commands sent with a numeric id).
    std::optional<std::uint64_t> id;
    // event: its name ("SHUTDOWN"); error: its class ("GenericError").
    std::string name;
    // error: the human-readable description.
    std::string description;
};

// Parses one message from the start of `in`. Returns the bytes consumed (the message and its
// line end) and fills `out`; or 0 with errc::need_more when `in` holds no complete line yet;
// errc::qmp_message_too_long when the line is longer than `max` bytes; errc::qmp_bad_message for
// anything that is not a greeting, reply, error or event as the QMP spec shapes them (an event
// has a non-empty name and object data if any; an error has a non-empty class and a desc).
CZ_DECL std::size_t parse_qmp_message(bytes_view in, qmp_message& out, std::error_code& ec,
                                      std::size_t max = qmp_max_message);

// A QMP client over a connected Unix stream socket.
//
// Usage: async_handshake(), then keep async_run() going (it reads every message, delivers
// replies to async_execute() and events to the event handler), and call async_execute() as
// needed. All operations must run on one thread (a single-threaded io_context, or a strand as
// the socket's executor). The client must outlive its operations.
class qmp_client {
public:
    using socket_type = asio::local::stream_protocol::socket;
    using executor_type = socket_type::executor_type;

    explicit qmp_client(socket_type socket) : socket_(std::move(socket)) {}

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    socket_type& socket() noexcept { return socket_; }

    // Called for each event, in arrival order, from async_run().
    void on_event(std::function<void(const qmp_message&)> handler) {
        on_event_ = std::move(handler);
    }

    // Reads the greeting and negotiates capabilities. Completion: void(std::error_code).
    template <class CompletionToken>
    auto async_handshake(CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), handshake(),
                                           std::forward<CompletionToken>(token));
    }

    // Reads messages until the server closes the connection. Replies go to the commands that
    // wait for them, events to the handler. Completion: void(std::error_code) — clear on a
    // clean end of stream; pending commands then fail with errc::qmp_closed.
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(), run(),
                                           std::forward<CompletionToken>(token));
    }

    // Executes a command with optional arguments (a JSON object or null). Needs async_run()
    // running. Completion: void(std::error_code, nlohmann::json) with the "return" value;
    // errc::qmp_command_failed when QEMU answers with an error (see error_detail()).
    template <class CompletionToken>
    auto async_execute(std::string command, nlohmann::json arguments, CompletionToken&& token) {
        return cz::detail::spawn_operation(get_executor(),
                                           execute(std::move(command), std::move(arguments)),
                                           std::forward<CompletionToken>(token));
    }

    // The greeting's "QMP" object, once the handshake is done.
    const nlohmann::json& greeting() const noexcept { return greeting_; }
    // The last error reply, "class: description", as the message.
    const error_info& error_detail() const noexcept { return error_detail_; }
    // Whether the connection has ended (or was never up).
    bool closed() const noexcept { return closed_; }

    // Closes the socket; pending operations complete with errors.
    void close() noexcept {
        std::error_code ignored;
        socket_.close(ignored);
    }

private:
    struct pending {
        asio::steady_timer done;
        std::error_code ec;
        nlohmann::json result;
    };

    CZ_DECL asio::awaitable<std::error_code> handshake();
    CZ_DECL asio::awaitable<std::error_code> run();
    CZ_DECL asio::awaitable<std::pair<std::error_code, nlohmann::json>> execute(
        std::string command, nlohmann::json arguments);
    CZ_DECL asio::awaitable<std::error_code> read_message(qmp_message& out);
    CZ_DECL std::error_code send(const nlohmann::json& message);
    CZ_DECL void fail_pending(std::error_code ec);

    socket_type socket_;
    std::string buffer_;
    nlohmann::json greeting_;
    error_info error_detail_;
    std::function<void(const qmp_message&)> on_event_;
    std::map<std::uint64_t, pending*> pending_;
    std::uint64_t next_id_ = 1;
    bool closed_ = false;
};

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/qmp.ipp>
#endif
