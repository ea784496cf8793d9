// cz/agent/frame.hpp — frames of the agent protocol: reading them out of a byte stream, encoding
// and decoding their messages. No I/O: bytes in, frames and messages out, and the other way.
//
// Primer. The connection is one byte stream, cut into frames:
//
//     +-------------------------+--------------------------------------+
//     | length: u32 little-end. | Envelope, nanopb/protobuf encoded    |
//     +-------------------------+--------------------------------------+
//       4 bytes                   `length` bytes, 1 <= length <= max
//
// `max` is the receiver's maximum frame size, announced in its Hello (the length prefix does not
// count). A length of 0 or above the maximum, or a stream that ends inside a frame, is a protocol
// error and ends the connection; so is a message that does not decode. The sender never produces
// such a frame: encode_frame() checks the size against the peer's maximum.
//
// Memory. frame_reader holds at most one frame plus one read's worth of bytes, as long as its
// user takes every complete frame (next() until need_more) before reading more; it refuses a
// frame's length prefix before it buffers the frame. A decoded envelope is a fixed-size struct
// (agent.options bounds every string and array); the large bytes fields in it are views into the
// frame (detail/pb_view.hpp), so a StreamData payload is never copied between the socket buffer
// and whoever consumes it. Those views, like the frame views, live until the reader's next
// prepare() or feed().
//
// Writing. encode_frame() appends a whole frame to a buffer. For stream data, where the payload is
// already somewhere (a pipe's read buffer), encode_stream_data_head() writes only the few bytes
// before the payload, so that head + payload go out in one writev with no copy; frame_writer
// queues frames for a transport that writes when the socket allows.
#pragma once

#include <cz/agent/error.hpp>
#include <cz/agent/protocol.hpp>
#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

namespace cz::agent {

// The length prefix.
inline constexpr std::size_t frame_header_size = 4;
// What a side announces by default: room for a 1 MiB config.json or stream chunk.
inline constexpr std::uint32_t default_max_frame_size = 1u << 20;

// The most bytes a StreamData frame of at most `max_frame_size` bytes carries: what is left after
// the tags, the stream id, eof and the lengths (at most 20 bytes for any frame size).
inline constexpr std::size_t max_stream_payload(std::uint32_t max_frame_size) noexcept {
    return max_frame_size > 20 ? max_frame_size - 20 : 0;
}

// Cuts a byte stream into frames, refusing bad lengths before buffering a frame.
//
//     cz::agent::frame_reader reader;
//     auto space = reader.prepare();              // read from the socket straight into it
//     reader.commit(::read(fd, space.data(), space.size()));
//     std::error_code ec;
//     for (auto frame = reader.next(ec); !ec; frame = reader.next(ec))
//         handle(frame);                          // the Envelope's bytes, prefix excluded
//     if (ec != cz::agent::errc::need_more) drop_connection(ec, reader.frame_offset());
class frame_reader {
public:
    explicit frame_reader(std::uint32_t max_frame_size = default_max_frame_size)
        : max_frame_(max_frame_size) {}

    // Writable space of at least `min_size` bytes after what is buffered; read into it, then
    // commit() what was read. Moves buffered bytes to the front first: views from next() end here.
    CZ_DECL mutable_bytes prepare(std::size_t min_size = 64 << 10);
    // `size` bytes of the last prepare()'s space now hold input.
    CZ_DECL void commit(std::size_t size);
    // prepare(), copy, commit(): for input that is already in memory.
    CZ_DECL void feed(bytes_view input);

    // The next complete frame's message (without its length prefix), a view into the reader that
    // lives until the next prepare() or feed(). An empty view with errc::need_more when no
    // complete frame is buffered; with frame_too_large or empty_frame when the next length prefix
    // is bad. Errors are sticky: every later call reports the same one.
    CZ_DECL bytes_view next(std::error_code& ec);

    // The stream has ended: clean when nothing is buffered, errc::truncated when part of a frame
    // is (a length prefix, or a message shorter than its length says).
    CZ_DECL void finish(std::error_code& ec) const;

    // The stream offset of the frame last returned by next(), or of the one an error concerns.
    std::uint64_t frame_offset() const noexcept { return frame_offset_; }
    // Bytes received and not yet returned as frames.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    std::uint32_t max_frame_size() const noexcept { return max_frame_; }

private:
    byte_buffer buf_;
    std::size_t begin_ = 0;      // first byte not yet returned
    std::size_t end_ = 0;        // end of the input in buf_
    std::uint64_t consumed_ = 0; // stream offset of buf_[begin_]
    std::uint64_t frame_offset_ = 0;
    std::uint32_t max_frame_;
    std::error_code error_;
};

// Decodes one frame's message into `out`; the bytes_field members of `out` then point into
// `message`. Errors: bad_message (not a valid encoding), field_too_large (a string or array
// longer than agent.options allows); `detail`, when given, receives nanopb's words for what was
// wrong ("string overflow", "invalid wire_type"), a static string. Whether the sender may send
// this message is check_sender()'s business.
CZ_DECL void decode_message(bytes_view message, envelope& out, std::error_code& ec,
                            std::string_view* detail = nullptr) noexcept;
// Throws cz::system_error naming nanopb's detail.
CZ_DECL void decode_message(bytes_view message, envelope& out);

// The encoded size of `m` (without the length prefix); bad_message when nanopb cannot encode it.
CZ_DECL std::size_t encoded_size(const envelope& m, std::error_code& ec) noexcept;

// Appends `m` as one frame to `out`. message_too_large when the message is longer than
// `max_frame_size` (the peer's maximum), bad_message when nanopb cannot encode it (a oneof tag
// that names no member); `out` is unchanged on error.
CZ_DECL void encode_frame(const envelope& m, std::uint32_t max_frame_size, byte_buffer& out,
                          std::error_code& ec);
CZ_DECL void encode_frame(const envelope& m, std::uint32_t max_frame_size, byte_buffer& out);

// The longest head encode_stream_data_head() writes.
inline constexpr std::size_t stream_data_head_max = 24;

// Writes the start of a StreamData frame (length prefix included) whose `size` payload bytes
// follow it, and returns its length: head + payload is exactly the frame encode_frame() makes of
// StreamData{stream, eof, payload}. `size` must be at most max_stream_payload() of the peer's
// maximum frame size (message_too_large otherwise, and 0 is returned).
CZ_DECL std::size_t encode_stream_data_head(std::uint32_t stream, bool eof, std::size_t size,
                                            std::uint32_t max_frame_size,
                                            std::span<std::byte, stream_data_head_max> head,
                                            std::error_code& ec) noexcept;

// A queue of encoded frames waiting for the transport.
//
//     writer.write(message, ec);                  // or write_stream_data(...)
//     auto n = ::write(fd, writer.pending().data(), writer.pending().size());
//     writer.consume(n);
class frame_writer {
public:
    // `max_frame_size`: the peer's maximum (default_max_frame_size until its Hello is known).
    explicit frame_writer(std::uint32_t max_frame_size = default_max_frame_size)
        : max_frame_(max_frame_size) {}

    void set_max_frame_size(std::uint32_t max_frame_size) noexcept { max_frame_ = max_frame_size; }
    std::uint32_t max_frame_size() const noexcept { return max_frame_; }

    // Queues `m` as one frame; errors as encode_frame().
    void write(const envelope& m, std::error_code& ec) { encode_frame(m, max_frame_, buf_, ec); }
    // Queues StreamData{stream, eof, data}; data.size() <= max_stream_payload(max_frame_size()).
    CZ_DECL void write_stream_data(std::uint32_t stream, bool eof, bytes_view data,
                                   std::error_code& ec);

    // Queues what a transport did not send of a frame it sent from elsewhere: the last
    // head.size() + payload.size() - sent bytes of head then payload. For StreamData without a
    // copy: while nothing is queued (empty()), the transport sends the head that
    // encode_stream_data_head() made and the payload where it is, in one writev, and queues here
    // only what the transport did not take.
    //
    //     std::array<std::byte, cz::agent::stream_data_head_max> h;
    //     auto head = std::span(h).first(cz::agent::encode_stream_data_head(id, eof, data.size(),
    //                                                                       writer.max_frame_size(),
    //                                                                       h, ec));
    //     auto sent = ::writev(fd, {head, data});      // when writer.empty()
    //     writer.queue_unsent(head, data, sent);
    CZ_DECL void queue_unsent(bytes_view head, bytes_view payload, std::size_t sent);

    // The bytes still to send, oldest first.
    bytes_view pending() const noexcept { return bytes_view(buf_).subspan(begin_); }
    bool empty() const noexcept { return begin_ == buf_.size(); }
    // `size` bytes of pending() were sent.
    CZ_DECL void consume(std::size_t size) noexcept;
    // Moves every pending byte into `out` (replacing what it held, whose storage the writer
    // reuses): for a transport that writes them while new frames are queued.
    CZ_DECL void take_pending(byte_buffer& out) noexcept;

private:
    byte_buffer buf_;
    std::size_t begin_ = 0;
    std::uint32_t max_frame_;
};

} // namespace cz::agent

#if CZ_HEADER_ONLY
#include <cz/agent/impl/frame.ipp>
#endif
