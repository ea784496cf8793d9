// cz/agent/detail/pb_view.hpp — zero-copy bytes fields for nanopb, and the input stream they need.
//
// nanopb decodes a `bytes` field either into a fixed array (max_size: every message would carry
// the largest array) or through a callback. agent.options makes the three fields that may be large
// (StreamData.data, CreateProcess.config, WriteFile.data) callback fields whose storage is a
// cz::agent::bytes_field, and names cz_agent_view_field_callback as the callback of their messages.
// On decoding, the callback records where the field's bytes are in the frame and skips over them:
// no copy, no allocation, bounded by the frame size that the frame reader already enforced. On
// encoding, it writes the bytes the view points at.
//
// A view is only meaningful while the frame it points into is alive, and only when the message
// was decoded from a frame_cursor stream (cz::agent::decode makes one): the callback knows the
// cursor by its read function and refuses any other stream. That matters: when a peer sends such a
// field with a scalar wire type, nanopb hands the callback a stream over a copy on its own stack,
// and a view of that would dangle. (nanopb's own buffer stream would work too, but its state is an
// internal detail; the cursor is ours and carries the frame's end for the bounds check.)
//
// This header is included by the generated agent.pb.h (agent.options: `include`).
#pragma once

#include <pb.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include <cstddef>
#include <cstring>
#include <span>

namespace cz::agent {

// The storage of a zero-copy bytes field: a view of `size` bytes at `data`, into the decoded frame
// or into memory the sender owns until the message is encoded. Trivial, so that nanopb may
// memset it (an empty view).
struct bytes_field {
    const std::byte* data;
    std::size_t size;

    std::span<const std::byte> view() const noexcept { return {data, size}; }
    void set(std::span<const std::byte> bytes) noexcept {
        data = bytes.data();
        size = bytes.size();
    }
};

namespace detail {

// Where a decoding stream is within the frame: the next unread byte and the frame's end.
struct frame_cursor {
    const pb_byte_t* pos;
    const pb_byte_t* end;
};

// The read function of a frame_cursor stream.
inline bool frame_cursor_read(pb_istream_t* stream, pb_byte_t* buf, std::size_t count) {
    auto* cursor = static_cast<frame_cursor*>(stream->state);
    // SAFETY: pb_read already checked count <= stream->bytes_left, and a cursor stream starts with
    // bytes_left == end - pos with both shrinking together; checked again so that a nanopb that
    // did otherwise still cannot read past the frame.
    if (static_cast<std::size_t>(cursor->end - cursor->pos) < count)
        PB_RETURN_ERROR(stream, "read past the end of the frame");
    if (buf && count) std::memcpy(buf, cursor->pos, count);
    cursor->pos += count;
    return true;
}

// A nanopb input stream over [cursor.pos, cursor.end); the cursor must outlive it.
inline pb_istream_t frame_cursor_stream(frame_cursor& cursor) {
    pb_istream_t stream{};
    stream.callback = &frame_cursor_read;
    stream.state = &cursor;
    stream.bytes_left = static_cast<std::size_t>(cursor.end - cursor.pos);
    return stream;
}

} // namespace detail
} // namespace cz::agent

// The callback of every message with a bytes_field (agent.options: callback_function). The
// generated header declares it with C linkage, so it has a C name; the generated agent.pb.cpp takes
// its address, which makes the static library hold its one out-of-line copy.
extern "C" inline bool cz_agent_view_field_callback(pb_istream_t* in, pb_ostream_t* out,
                                                    const pb_field_iter_t* field) {
    if (field->data_size != sizeof(cz::agent::bytes_field))
        return false; // not one of ours: a build error
    // SAFETY: the generated descriptor says this field's storage is a bytes_field (size checked).
    auto* view = static_cast<cz::agent::bytes_field*>(field->pData);
    if (in) {
        if (in->callback != &cz::agent::detail::frame_cursor_read)
            PB_RETURN_ERROR(in, "bytes field with a non-length-delimited wire type");
        auto* cursor = static_cast<cz::agent::detail::frame_cursor*>(in->state);
        std::size_t size = in->bytes_left;
        // SAFETY: the substream's bytes_left was checked against its parent's, and so on up to
        // the frame; checked once more against the cursor's end before the view is taken.
        if (static_cast<std::size_t>(cursor->end - cursor->pos) < size)
            PB_RETURN_ERROR(in, "bytes field past the end of the frame");
        view->data = reinterpret_cast<const std::byte*>(cursor->pos);
        view->size = size;
        cursor->pos += size;
        in->bytes_left = 0;
        return true;
    }
    if (out) {
        if (view->size == 0) return true; // proto3: an empty field is not written
        return pb_encode_tag_for_field(out, field) &&
               pb_encode_string(out, reinterpret_cast<const pb_byte_t*>(view->data), view->size);
    }
    return true;
}
