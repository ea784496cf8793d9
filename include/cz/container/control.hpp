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
//   path_stat (a container path) -> path_info (JSON path_info) | error
//   copy_out  (a container path) -> error | stdout_data frames carrying the path as a tar
//                                   archive (cz cp's), then ok | error
//   copy_in   (a container path) -> the client sends the archive as stdin_data frames and
//                                   stdin_eof; then ok | error, once the guest has unpacked it
//                                   under the path
// A container path is absolute, 1-4095 bytes, without NUL; it is resolved inside the container's
// root (its symlinks never lead out of it).
//   wait   (no payload)         -> exit (i32 LE: the container's exit code, as its state will
//                                  record it) | error, once the container's process has exited
// The supervisor's process ends once the container's exit is recorded, and with it every
// connection (end of stream); `cz wait` waits for that too, and reads the recorded state, unless
// the container was removed at its exit (--rm): the exit frame is all there is then.
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
    path_stat = 8,
    copy_out = 9,
    copy_in = 10,
    wait = 11,
    // supervisor -> client
    ok = 64,
    error = 65,       // i32 LE exit code for the CLI (125, 126, 127), then the message (UTF-8)
    started = 66,     // the exec's process has started
    stdout_data = 67, // bytes of the exec's stdout (or its terminal)
    stderr_data = 68,
    exit = 69,         // i32 LE: the exec's exit code (128 + signal when a signal ended it)
    stats_result = 70, // JSON container_stats
    path_info = 71,    // JSON path_info
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

// A path_stat, copy_out or copy_in payload: an absolute path of at most 4095 bytes without NUL.
// errc::bad_frame for anything else.
CZ_DECL std::string decode_container_path(bytes_view payload, std::error_code& ec);

// What path_stat says of a path in the container (symlinks followed, as stat(2)).
struct path_info {
    bool exists = false;
    std::uint32_t mode = 0; // st_mode: type and permission bits
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // nanoseconds since the epoch
    bool is_dir() const noexcept { return (mode & 0170000) == 0040000; }
};
CZ_DECL std::string to_json(const path_info& p);
// errc::bad_frame for JSON that is not a path_info.
CZ_DECL path_info path_info_from_json(std::string_view text, std::error_code& ec,
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
