// Out-of-line definitions for cz/agent/frame.hpp.
#pragma once

#include <cz/agent/frame.hpp>

#include <algorithm>
#include <cstring>

namespace cz::agent {
namespace detail {

// nanopb's words for a field longer than its bound (pb_decode.c); anything else is malformed.
inline bool is_overflow_error(const char* what) noexcept {
    if (!what) return false;
    std::string_view w(what);
    return w == "string overflow" || w == "bytes overflow" || w == "array overflow";
}

inline std::size_t varint_size(std::uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

inline std::byte* put_varint(std::byte* p, std::uint64_t v) noexcept {
    while (v >= 0x80) {
        *p++ = std::byte((v & 0x7f) | 0x80);
        v >>= 7;
    }
    *p++ = std::byte(v);
    return p;
}

// A protobuf key: field number and wire type (2: length-delimited, 0: varint).
inline constexpr std::byte key(unsigned field, unsigned wire_type) noexcept {
    return std::byte((field << 3) | wire_type);
}

} // namespace detail

// --- frame_reader ----------------------------------------------------------------------------

CZ_DECL mutable_bytes frame_reader::prepare(std::size_t min_size) {
    if (begin_ > 0) {
        // SAFETY: begin_ <= end_ <= buf_.size(); the ranges may overlap, hence memmove.
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (buf_.size() - end_ < min_size) buf_.resize(end_ + min_size);
    return mutable_bytes(buf_).subspan(end_);
}

CZ_DECL void frame_reader::commit(std::size_t size) {
    end_ += std::min(size, buf_.size() - end_);
}

CZ_DECL void frame_reader::feed(bytes_view input) {
    auto space = prepare(input.size());
    if (!input.empty()) std::memcpy(space.data(), input.data(), input.size());
    commit(input.size());
}

CZ_DECL bytes_view frame_reader::next(std::error_code& ec) {
    if (error_) {
        ec = error_;
        return {};
    }
    frame_offset_ = consumed_;
    std::size_t available = end_ - begin_;
    if (available < frame_header_size) {
        ec = errc::need_more;
        return {};
    }
    // SAFETY: at least frame_header_size bytes are buffered at begin_ (checked above).
    auto length = load_le<std::uint32_t>(buf_.data() + begin_);
    if (length == 0 || length > max_frame_) {
        error_ = length == 0 ? errc::empty_frame : errc::frame_too_large;
        ec = error_;
        return {};
    }
    if (available - frame_header_size < length) {
        ec = errc::need_more;
        return {};
    }
    // SAFETY: frame_header_size + length <= available = end_ - begin_ (checked above).
    bytes_view frame(buf_.data() + begin_ + frame_header_size, length);
    begin_ += frame_header_size + length;
    consumed_ += frame_header_size + length;
    ec.clear();
    return frame;
}

CZ_DECL void frame_reader::finish(std::error_code& ec) const {
    if (error_)
        ec = error_;
    else if (end_ != begin_)
        ec = errc::truncated;
    else
        ec.clear();
}

// --- messages --------------------------------------------------------------------------------

CZ_DECL void decode_message(bytes_view message, envelope& out, std::error_code& ec,
                            std::string_view* detail) noexcept {
    auto* begin = reinterpret_cast<const pb_byte_t*>(message.data());
    detail::frame_cursor cursor{begin, begin + message.size()};
    pb_istream_t stream = detail::frame_cursor_stream(cursor);
    if (!pb_decode(&stream, cz_agent_Envelope_fields, &out)) {
        const char* what = PB_GET_ERROR(&stream);
        ec = detail::is_overflow_error(what) ? errc::field_too_large : errc::bad_message;
        if (detail) *detail = what;
        return;
    }
    ec.clear();
    if (detail) *detail = {};
}

CZ_DECL void decode_message(bytes_view message, envelope& out) {
    std::error_code ec;
    std::string_view what;
    decode_message(message, out, ec, &what);
    if (ec) throw_error(ec, "agent message of {} bytes: {}", message.size(), what);
}

CZ_DECL std::size_t encoded_size(const envelope& m, std::error_code& ec) noexcept {
    std::size_t size = 0;
    if (!pb_get_encoded_size(&size, cz_agent_Envelope_fields, &m)) {
        ec = errc::bad_message;
        return 0;
    }
    ec.clear();
    return size;
}

CZ_DECL void encode_frame(const envelope& m, std::uint32_t max_frame_size, byte_buffer& out,
                          std::error_code& ec) {
    std::size_t size = encoded_size(m, ec);
    if (ec) return;
    if (size == 0) { // no kind set: nothing a receiver could accept
        ec = errc::bad_message;
        return;
    }
    if (size > max_frame_size) {
        ec = errc::message_too_large;
        return;
    }
    std::size_t old = out.size();
    out.resize(old + frame_header_size + size);
    store_le(out.data() + old, static_cast<std::uint32_t>(size));
    pb_ostream_t stream = pb_ostream_from_buffer(
        reinterpret_cast<pb_byte_t*>(out.data() + old + frame_header_size), size);
    if (!pb_encode(&stream, cz_agent_Envelope_fields, &m) || stream.bytes_written != size) {
        out.resize(old);
        ec = errc::bad_message;
        return;
    }
    ec.clear();
}

CZ_DECL void encode_frame(const envelope& m, std::uint32_t max_frame_size, byte_buffer& out) {
    std::error_code ec;
    encode_frame(m, max_frame_size, out, ec);
    if (ec) throw_error(ec, "agent {} message", to_string(kind_of(m)));
}

CZ_DECL std::size_t encode_stream_data_head(std::uint32_t stream, bool eof, std::size_t size,
                                            std::uint32_t max_frame_size,
                                            std::span<std::byte, stream_data_head_max> head,
                                            std::error_code& ec) noexcept {
    using detail::key;
    using detail::varint_size;
    // StreamData{stream = 1, eof = 2, data = 3}, each field written only when it is not zero, as
    // pb_encode does for proto3; data last (agent.proto orders the fields so).
    std::size_t body = (stream ? 1 + varint_size(stream) : 0) + (eof ? 2 : 0) +
                       (size ? 1 + varint_size(size) + size : 0);
    std::size_t message = 1 + varint_size(body) + body;
    if (size > max_stream_payload(max_frame_size) || message > max_frame_size) {
        ec = errc::message_too_large;
        return 0;
    }
    // SAFETY: at most 4 + 1 + 5 (body < 2^32) + 1 + 5 + 2 + 1 + 5 = 24 bytes are written, the
    // size of `head`.
    std::byte* p = head.data();
    store_le(p, static_cast<std::uint32_t>(message));
    p += frame_header_size;
    *p++ = key(cz_agent_Envelope_stream_data_tag, 2);
    p = detail::put_varint(p, body);
    if (stream) {
        *p++ = key(cz_agent_StreamData_stream_tag, 0);
        p = detail::put_varint(p, stream);
    }
    if (eof) {
        *p++ = key(cz_agent_StreamData_eof_tag, 0);
        *p++ = std::byte{1};
    }
    if (size) {
        *p++ = key(cz_agent_StreamData_data_tag, 2);
        p = detail::put_varint(p, size);
    }
    ec.clear();
    return static_cast<std::size_t>(p - head.data());
}

// --- frame_writer ----------------------------------------------------------------------------

CZ_DECL void frame_writer::write_stream_data(std::uint32_t stream, bool eof, bytes_view data,
                                             std::error_code& ec) {
    std::array<std::byte, stream_data_head_max> head;
    std::size_t n = encode_stream_data_head(stream, eof, data.size(), max_frame_, head, ec);
    if (ec) return;
    buf_.insert(buf_.end(), head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n));
    buf_.insert(buf_.end(), data.begin(), data.end());
}

CZ_DECL void frame_writer::queue_unsent(bytes_view head, bytes_view payload, std::size_t sent) {
    if (sent < head.size()) {
        buf_.insert(buf_.end(), head.begin() + static_cast<std::ptrdiff_t>(sent), head.end());
        sent = 0;
    } else {
        sent -= head.size();
    }
    if (sent < payload.size())
        buf_.insert(buf_.end(), payload.begin() + static_cast<std::ptrdiff_t>(sent), payload.end());
}

CZ_DECL void frame_writer::consume(std::size_t size) noexcept {
    begin_ += std::min(size, buf_.size() - begin_);
    if (begin_ == buf_.size()) {
        buf_.clear();
        begin_ = 0;
    } else if (begin_ >= (64u << 10) && begin_ >= buf_.size() / 2) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(begin_));
        begin_ = 0;
    }
}

CZ_DECL void frame_writer::take_pending(byte_buffer& out) noexcept {
    if (begin_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(begin_));
        begin_ = 0;
    }
    out.swap(buf_);
    buf_.clear();
}

} // namespace cz::agent
