// cz/container/control.hpp — the control protocol between the cz CLI (or any program) and a
// detached container's supervisor, over the Unix socket control.sock in the container's
// directory (cz/container/state.hpp).
//
// Primer. Both directions are a sequence of frames:
//
//   u32 little-endian length L (1 <= L <= max_control_frame) | u8 type | L-1 bytes of payload
//
// A connection carries one request and what answers it:
//   exec   (JSON exec_request)  -> error | started, then stdout/stderr data, then exit
//          after `started` the client may send stdin data, stdin_eof and resize frames
//   kill   (i32 LE signal)      -> ok | error
//   stop   (u32 LE seconds)     -> ok | error; the supervisor then sends the stop signal, SIGKILL
//                                  after the seconds, and powers the VM off 10 s after that
//   stats  (no payload)         -> stats_result (JSON container_stats) | error
// `cz wait` needs no request: the supervisor's process ends once the container's exit is
// recorded, and with it every connection (end of stream).
//
// The client treats the supervisor's bytes as untrusted: every frame is bounded, each type's
// payload is checked (decode_* below), and anything else is errc::bad_frame with what was wrong
// and the frame's offset. decode_control_frame does no I/O (unit-tested and fuzzed).
#pragma once

#include <cz/container/error.hpp>
#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::container {

enum class control_type : std::uint8_t {
    // client -> supervisor
    exec = 1,
    stdin_data = 2,
    stdin_eof = 3,
    resize = 4, // u16 LE rows, u16 LE columns
    kill = 5,
    stop = 6,
    stats = 7,
    // supervisor -> client
    ok = 64,
    error = 65,       // i32 LE exit code for the CLI (125, 126, 127), then the message (UTF-8)
    started = 66,     // the exec's process has started
    stdout_data = 67, // bytes of the exec's stdout (or its terminal)
    stderr_data = 68,
    exit = 69,         // i32 LE: the exec's exit code (128 + signal when a signal ended it)
    stats_result = 70, // JSON container_stats
};

// The largest frame (type byte and payload) either side sends or accepts.
inline constexpr std::size_t max_control_frame = (1u << 20) + 1;
// The longest message an error frame may carry.
inline constexpr std::size_t max_control_message = 4096;

struct control_frame {
    control_type type{};
    bytes_view payload; // into the decoded buffer
};

// Decodes the frame at the front of `in`: the bytes it takes, 0 when more are needed.
// errc::bad_frame for a length of 0 or above max_control_frame, or a type this side does not
// receive (`from_supervisor` says which side this is: the client takes types >= 64).
CZ_DECL std::size_t decode_control_frame(bytes_view in, bool from_supervisor, control_frame& out,
                                         std::error_code& ec, std::string* detail = nullptr);

// A whole frame.
CZ_DECL std::string encode_control_frame(control_type type, bytes_view payload = {});
CZ_DECL std::string encode_i32(std::int32_t v);

// Payload decoders: errc::bad_frame when the size or a value is wrong.
CZ_DECL std::int32_t decode_i32(bytes_view payload, std::error_code& ec);
struct control_error {
    int exit_code = 125;
    std::string message;
};
// An error frame's payload: the exit code (0-255) and a message of at most max_control_message
// bytes, its control characters replaced by '?' so that it prints safely.
CZ_DECL control_error decode_control_error(bytes_view payload, std::error_code& ec);
CZ_DECL std::string encode_control_error(int exit_code, std::string_view message);
// A resize frame's payload: both in 1-65535.
CZ_DECL void decode_resize(bytes_view payload, std::uint16_t& rows, std::uint16_t& columns,
                           std::error_code& ec);
CZ_DECL std::string encode_resize(std::uint16_t rows, std::uint16_t columns);

// What `cz exec` asks for (the exec frame's JSON), over the container's own process settings.
struct exec_request {
    std::vector<std::string> args;
    std::vector<std::string> env; // NAME=value, over the container's
    std::string working_dir;      // "" the container's
    std::string user;             // "" the container's
    bool terminal = false;
    bool interactive = false; // stdin is attached
    std::uint16_t rows = 0, columns = 0;
};
CZ_DECL std::string to_json(const exec_request& r);
// errc::bad_frame for JSON that is no exec request (the detail names the field).
CZ_DECL exec_request exec_request_from_json(std::string_view text, std::error_code& ec,
                                            std::string* detail = nullptr);

// The container's cgroup and network figures at one moment (the agent's Statistics), as `cz stats`
// shows them. A figure the guest does not have is 0.
struct container_stats {
    std::int64_t time = 0; // nanoseconds since the epoch, when read
    std::uint64_t cpu_usec = 0;
    std::uint64_t memory_current = 0, memory_max = 0; // max 0: no limit
    std::uint64_t pids_current = 0, pids_max = 0;
    std::uint64_t net_rx = 0, net_tx = 0;
    std::uint64_t block_read = 0, block_write = 0;
};
CZ_DECL std::string to_json(const container_stats& s);
// errc::bad_frame for JSON that is not container_stats.
CZ_DECL container_stats stats_from_json(std::string_view text, std::error_code& ec,
                                        std::string* detail = nullptr);

// Incremental reading: bytes in, frames out, with the offset of each error.
class control_reader {
public:
    explicit control_reader(bool from_supervisor) : from_supervisor_(from_supervisor) {}
    // Takes bytes read from the socket.
    void feed(bytes_view data) { buf_.append(as_chars(data)); }
    // The next whole frame (its payload valid until the next call), or nullopt when more bytes
    // are needed, or an error (ec, `*detail` with the stream offset).
    std::optional<control_frame> next(std::error_code& ec, std::string* detail = nullptr);
    // Bytes fed but not yet part of a returned frame (at the end of stream: a cut frame).
    std::size_t pending() const noexcept { return buf_.size() - pos_; }

private:
    bool from_supervisor_;
    std::string buf_;
    std::size_t pos_ = 0;
    std::uint64_t offset_ = 0;
};

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/control.ipp>
#endif
