// Messages for the agent tests: every kind of envelope, each field set to a value that is not its
// default and every string and array filled to its bound, so that a round trip that loses or
// clips anything shows.
#pragma once

#include <cz/agent/frame.hpp>
#include <cz/agent/protocol.hpp>

#include "support/support.hpp"

#include <pb_common.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace cz_agent_test {

// What the bytes fields point at.
inline const std::array<std::byte, 3000>& payload() {
    static const auto bytes = [] {
        std::array<std::byte, 3000> b;
        for (std::size_t i = 0; i < b.size(); ++i)
            b[i] = std::byte((i * 131 + 7) & 0xff);
        return b;
    }();
    return bytes;
}

// Sets every field of a message without oneofs (recursing into submessages) from `seed`.
inline void fill(const pb_msgdesc_t* desc, void* msg, unsigned seed) {
    pb_field_iter_t it;
    if (!pb_field_iter_begin(&it, desc, msg)) return; // a message without fields
    do {
        unsigned count = 1;
        if (PB_HTYPE(it.type) == PB_HTYPE_REPEATED) {
            count = it.array_size;
            *static_cast<pb_size_t*>(it.pSize) = static_cast<pb_size_t>(count);
        } else if (PB_HTYPE(it.type) == PB_HTYPE_OPTIONAL && it.pSize) {
            *static_cast<bool*>(it.pSize) = true;
        }
        REQUIRE(PB_HTYPE(it.type) != PB_HTYPE_ONEOF); // oneofs are chosen by the caller
        for (unsigned i = 0; i < count; ++i) {
            auto* p = static_cast<char*>(it.pData) + std::size_t(i) * it.data_size;
            unsigned v = seed * 31 + it.tag * 7 + i + 1;
            switch (PB_LTYPE(it.type)) {
            case PB_LTYPE_BOOL:
                *reinterpret_cast<bool*>(p) = true;
                break;
            case PB_LTYPE_VARINT: // signed: a negative value (10 bytes on the wire)
            case PB_LTYPE_UVARINT:
            case PB_LTYPE_FIXED32:
            case PB_LTYPE_FIXED64: {
                bool negative = PB_LTYPE(it.type) == PB_LTYPE_VARINT;
                std::uint64_t value = negative ? std::uint64_t(-std::int64_t(v) * 1000003)
                                               : std::uint64_t(v) * 1000003;
                if (it.data_size == 8) {
                    std::memcpy(p, &value, 8);
                } else {
                    auto value32 = std::uint32_t(value);
                    REQUIRE(it.data_size == 4);
                    std::memcpy(p, &value32, 4);
                }
                break;
            }
            case PB_LTYPE_STRING: { // filled to its bound
                std::size_t n = it.data_size - 1;
                for (std::size_t j = 0; j < n; ++j)
                    p[j] = char('a' + (v + j) % 26);
                p[n] = '\0';
                break;
            }
            case PB_LTYPE_SUBMESSAGE:
            case PB_LTYPE_SUBMSG_W_CB:
                fill(it.submsg_desc, p, v);
                break;
            case PB_LTYPE_BYTES:
                if (PB_ATYPE(it.type) == PB_ATYPE_STATIC) { // a bounded array: to its bound
                    auto* b = reinterpret_cast<pb_bytes_array_t*>(p);
                    std::size_t n = it.data_size - offsetof(pb_bytes_array_t, bytes);
                    b->size = static_cast<pb_size_t>(n);
                    for (std::size_t j = 0; j < n; ++j)
                        b->bytes[j] = static_cast<pb_byte_t>(v + j * 13);
                    break;
                }
                // The others are bytes_fields viewing the frame.
                REQUIRE(PB_ATYPE(it.type) == PB_ATYPE_CALLBACK);
                reinterpret_cast<cz::agent::bytes_field*>(p)->set(
                    cz::bytes_view(payload()).first(1000 + v % 2000));
                break;
            default:
                FAIL("field type not handled: ", int(it.type));
            }
        }
    } while (pb_field_iter_next(&it));
}

// The member of a oneof with field number `tag` in message `desc` at `msg`: selects it (sets
// its which_ field) and returns its storage and descriptor.
struct member {
    void* data;
    const pb_msgdesc_t* desc;
};
inline member select(const pb_msgdesc_t* desc, void* msg, pb_size_t tag) {
    pb_field_iter_t it;
    REQUIRE(pb_field_iter_begin(&it, desc, msg));
    REQUIRE(pb_field_iter_find(&it, tag));
    REQUIRE(PB_HTYPE(it.type) == PB_HTYPE_ONEOF);
    *static_cast<pb_size_t*>(it.pSize) = tag;
    return {it.pData, it.submsg_desc};
}

// The field numbers of a message's oneof members.
inline std::vector<pb_size_t> oneof_tags(const pb_msgdesc_t* desc) {
    std::vector<pb_size_t> tags;
    std::vector<char> scratch(1 << 16);
    pb_field_iter_t it;
    if (!pb_field_iter_begin(&it, desc, scratch.data())) return tags;
    do {
        if (PB_HTYPE(it.type) == PB_HTYPE_ONEOF) tags.push_back(it.tag);
    } while (pb_field_iter_next(&it));
    return tags;
}

// One envelope of every kind: Hello, a Request per RPC, a Response per result, an Event per kind,
// StreamData, StreamCredit; each filled.
inline std::vector<std::unique_ptr<cz::agent::envelope>> every_message() {
    std::vector<std::unique_ptr<cz::agent::envelope>> all;
    auto add = [&](pb_size_t kind) {
        auto m = std::make_unique<cz::agent::envelope>();
        *m = cz_agent_Envelope_init_zero;
        auto body = select(&cz_agent_Envelope_msg, m.get(), kind);
        all.push_back(std::move(m));
        return body;
    };
    for (pb_size_t kind : oneof_tags(&cz_agent_Envelope_msg)) {
        switch (kind) {
        case cz_agent_Envelope_request_tag:
            for (pb_size_t rpc : oneof_tags(&cz_agent_Request_msg)) {
                auto body = add(kind);
                auto* r = static_cast<cz_agent_Request*>(body.data);
                r->id = 1000 + rpc;
                auto inner = select(body.desc, r, rpc);
                fill(inner.desc, inner.data, rpc);
            }
            break;
        case cz_agent_Envelope_response_tag:
            for (pb_size_t result : oneof_tags(&cz_agent_Response_msg)) {
                auto body = add(kind);
                auto* r = static_cast<cz_agent_Response*>(body.data);
                r->id = 2000 + result;
                auto inner = select(body.desc, r, result);
                fill(inner.desc, inner.data, result);
            }
            break;
        case cz_agent_Envelope_event_tag:
            for (pb_size_t ev : oneof_tags(&cz_agent_Event_msg)) {
                auto body = add(kind);
                auto inner = select(body.desc, body.data, ev);
                fill(inner.desc, inner.data, ev);
            }
            break;
        default: {
            auto body = add(kind);
            fill(body.desc, body.data, kind);
        }
        }
    }
    return all;
}

// The frame of `m` under the default maximum frame size.
inline cz::byte_buffer frame_of(const cz::agent::envelope& m) {
    cz::byte_buffer out;
    cz::agent::encode_frame(m, cz::agent::default_max_frame_size, out);
    return out;
}

// A minimal protobuf writer for hand-made (and malformed) messages.
struct pb_builder {
    cz::byte_buffer bytes;
    pb_builder& varint(std::uint64_t v) {
        while (v >= 0x80) {
            bytes.push_back(std::byte((v & 0x7f) | 0x80));
            v >>= 7;
        }
        bytes.push_back(std::byte(v));
        return *this;
    }
    pb_builder& key(unsigned field, unsigned wire_type) { return varint(field << 3 | wire_type); }
    pb_builder& field(unsigned number, std::uint64_t v) { return key(number, 0).varint(v); }
    pb_builder& field(unsigned number, cz::bytes_view b) {
        key(number, 2).varint(b.size());
        bytes.insert(bytes.end(), b.begin(), b.end());
        return *this;
    }
    pb_builder& field(unsigned number, const pb_builder& sub) { return field(number, sub.bytes); }
    pb_builder& field(unsigned number, std::string_view s) {
        return field(number, cz::as_bytes(s));
    }
    // The whole message as a frame.
    cz::byte_buffer frame() const {
        cz::byte_buffer f(4);
        cz::store_le(f.data(), std::uint32_t(bytes.size()));
        f.insert(f.end(), bytes.begin(), bytes.end());
        return f;
    }
};

} // namespace cz_agent_test
