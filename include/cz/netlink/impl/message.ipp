// Out-of-line definitions for cz/netlink/message.hpp.
#pragma once

#include <cz/netlink/message.hpp>

#include <algorithm>
#include <array>
#include <limits>

namespace cz::netlink {

CZ_DECL std::size_t parse_message(bytes_view data, message& out, std::error_code& ec) noexcept {
    message_header h;
    if (!decode(data, h)) {
        ec = errc::truncated;
        return 0;
    }
    if (h.length < sizeof(message_header)) {
        ec = errc::bad_length;
        return 0;
    }
    if (h.length > data.size()) {
        ec = errc::truncated;
        return 0;
    }
    out.header = h;
    // SAFETY: sizeof(header) <= h.length <= data.size(), checked above.
    out.payload = data.subspan(sizeof(message_header), h.length - sizeof(message_header));
    ec.clear();
    return std::min(align(h.length), data.size());
}

CZ_DECL std::size_t parse_attribute(bytes_view data, attribute& out, std::error_code& ec) noexcept {
    attribute_header h;
    if (!decode(data, h)) {
        ec = errc::truncated;
        return 0;
    }
    if (h.length < sizeof(attribute_header)) {
        ec = errc::bad_length;
        return 0;
    }
    if (h.length > data.size()) {
        ec = errc::truncated;
        return 0;
    }
    out.type = h.type & nla_f::type_mask;
    out.nested = (h.type & nla_f::nested) != 0;
    // SAFETY: sizeof(header) <= h.length <= data.size(), checked above.
    out.value = data.subspan(sizeof(attribute_header), h.length - sizeof(attribute_header));
    ec.clear();
    return std::min(align(h.length), data.size());
}

CZ_DECL bool parse_attributes(bytes_view data, std::span<std::optional<bytes_view>> table,
                              std::error_code& ec) noexcept {
    std::fill(table.begin(), table.end(), std::nullopt);
    attribute_reader reader(data);
    attribute a;
    while (reader.next(a, ec))
        if (a.type < table.size()) table[a.type] = a.value;
    return !ec;
}

CZ_DECL std::string_view get_string(bytes_view value) noexcept {
    std::string_view s = as_chars(value);
    auto nul = s.find('\0');
    return nul == std::string_view::npos ? s : s.substr(0, nul);
}

CZ_DECL bool get_ip_address(bytes_view value, asio::ip::address& out) noexcept {
    if (value.size() == 4) {
        asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), value.data(), 4); // SAFETY: size is 4, checked above
        out = asio::ip::address_v4(b);
        return true;
    }
    if (value.size() == 16) {
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), value.data(), 16); // SAFETY: size is 16, checked above
        out = asio::ip::address_v6(b);
        return true;
    }
    return false;
}

CZ_DECL bool parse_error_payload(const message& msg, int& error, kernel_error& detail,
                                 std::error_code& ec) noexcept {
    ec.clear();
    detail = {};
    bytes_view rest;
    if (msg.header.type == nlmsg::error) {
        error_header e;
        if (!decode(msg.payload, e)) {
            ec = errc::truncated;
            return false;
        }
        error = e.error;
        std::size_t skip = sizeof(error_header);
        // Without NLM_F_CAPPED the whole request is echoed: its payload comes before the TLVs.
        if (!(msg.header.flags & nlm_f::capped) && e.request.length > sizeof(message_header))
            skip += align(e.request.length - sizeof(message_header));
        // SAFETY: subspan only when skip is within the payload; otherwise there are no TLVs.
        rest = skip <= msg.payload.size() ? msg.payload.subspan(skip) : bytes_view{};
    } else {
        // NLMSG_DONE: an int errno (kernels before 2.6.x sent an empty payload: success).
        std::int32_t e = 0;
        if (msg.payload.size() >= sizeof e) {
            std::memcpy(&e, msg.payload.data(), sizeof e); // SAFETY: size checked
            rest = msg.payload.subspan(sizeof e);
        }
        error = e;
    }
    // The kernel sends 0 or a negative errno no larger than MAX_ERRNO (4095); anything else is
    // not an answer (and -INT_MIN cannot even be negated).
    if (error > 0 || error < -4095) {
        ec = errc::bad_payload;
        return false;
    }
    if (error) detail.code = std::error_code(-error, std::system_category());
    if (!(msg.header.flags & nlm_f::ack_tlvs)) return true;

    std::array<std::optional<bytes_view>, nlmsgerr_attr::cookie + 1> tlv;
    std::error_code tlv_ec;
    // Malformed extended-ACK attributes lose the message, never the errno.
    if (!parse_attributes(rest, tlv, tlv_ec)) return true;
    if (tlv[nlmsgerr_attr::msg]) detail.message = std::string(get_string(*tlv[nlmsgerr_attr::msg]));
    if (tlv[nlmsgerr_attr::offs] && get_integer(*tlv[nlmsgerr_attr::offs], detail.offset))
        detail.has_offset = true;
    return true;
}

// --- message_builder -----------------------------------------------------------------------

CZ_DECL void message_builder::begin(std::uint16_t type, std::uint16_t flags) {
    current_ = buffer_.size();
    ++count_;
    message_header h;
    h.type = type;
    h.flags = std::uint16_t(flags | nlm_f::request);
    buffer_.resize(current_ + sizeof h);
    std::memcpy(buffer_.data() + current_, &h, sizeof h);
    update_length();
}

CZ_DECL void message_builder::append_raw(bytes_view bytes) {
    std::size_t at = buffer_.size();
    buffer_.resize(at + align(bytes.size()));
    if (!bytes.empty()) std::memcpy(buffer_.data() + at, bytes.data(), bytes.size());
    update_length();
}

CZ_DECL void message_builder::update_length() noexcept {
    std::size_t length = buffer_.size() - current_;
    if (length > std::numeric_limits<std::uint32_t>::max()) {
        error_ = errc::message_too_large;
        return;
    }
    auto l = std::uint32_t(length);
    // SAFETY: begin() wrote a whole header at current_, so 4 bytes are there.
    std::memcpy(buffer_.data() + current_, &l, sizeof l);
}

CZ_DECL void message_builder::attr(std::uint16_t type, bytes_view value) {
    if (value.size() > 0xffff - sizeof(attribute_header)) {
        error_ = errc::message_too_large;
        return;
    }
    attribute_header h{std::uint16_t(sizeof(attribute_header) + value.size()), type};
    std::size_t at = buffer_.size();
    buffer_.resize(at + align(h.length));
    std::memcpy(buffer_.data() + at, &h, sizeof h);
    if (!value.empty()) std::memcpy(buffer_.data() + at + sizeof h, value.data(), value.size());
    update_length();
}

CZ_DECL void message_builder::attr_string(std::uint16_t type, std::string_view s) {
    std::size_t at = buffer_.size();
    attr(type, as_bytes(s));
    if (error_ || buffer_.size() == at) return;
    // Grow the attribute by the NUL: the padding after it already holds one unless the string
    // filled the padding exactly.
    attribute_header h;
    std::memcpy(&h, buffer_.data() + at, sizeof h);
    if (h.length == 0xffff) {
        error_ = errc::message_too_large;
        return;
    }
    ++h.length;
    buffer_.resize(at + align(h.length));
    buffer_[at + h.length - 1] = std::byte{0};
    std::memcpy(buffer_.data() + at, &h, sizeof h);
    update_length();
}

CZ_DECL void message_builder::attr_address(std::uint16_t type, const asio::ip::address& a) {
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        attr(type, std::as_bytes(std::span(b)));
    } else {
        auto b = a.to_v6().to_bytes();
        attr(type, std::as_bytes(std::span(b)));
    }
}

CZ_DECL std::size_t message_builder::begin_nested(std::uint16_t type) {
    std::size_t at = buffer_.size();
    attr(std::uint16_t(type | nla_f::nested), {});
    return at;
}

CZ_DECL void message_builder::end_nested(std::size_t handle) {
    if (handle + sizeof(attribute_header) > buffer_.size()) {
        error_ = errc::invalid_argument;
        return;
    }
    std::size_t length = buffer_.size() - handle;
    if (length > 0xffff) {
        error_ = errc::message_too_large;
        return;
    }
    auto l = std::uint16_t(length);
    // SAFETY: begin_nested wrote an attribute header at `handle`, checked to be in the buffer.
    std::memcpy(buffer_.data() + handle, &l, sizeof l);
}

CZ_DECL std::size_t message_builder::stamp(std::uint32_t first) noexcept {
    std::size_t n = 0;
    std::size_t at = 0;
    while (at + sizeof(message_header) <= buffer_.size()) {
        message_header h;
        std::memcpy(&h, buffer_.data() + at, sizeof h);
        h.seq = first + std::uint32_t(n++);
        std::memcpy(buffer_.data() + at, &h, sizeof h);
        at += align(h.length);
    }
    return n;
}

// --- reply_reader ----------------------------------------------------------------------------

CZ_DECL bool reply_reader::feed(bytes_view datagram, std::vector<message>& out,
                                std::error_code& ec) {
    ec.clear();
    message_reader reader(datagram);
    message m;
    while (reader.next(m, ec)) {
        if (pending_ == 0) {
            // Everything was answered; the kernel never sends more for a finished batch.
            ec = errc::unexpected_message;
            return false;
        }
        std::uint32_t distance = m.header.seq - first_; // modulo 2^32: wraps like the counter
        if (m.header.port != port_ || std::int32_t(distance) < 0) {
            ++stray_; // a leftover of an earlier, abandoned request (or not for this socket)
            continue;
        }
        if (distance >= count_) {
            ec = errc::sequence_mismatch;
            return false;
        }
        switch (m.header.type) {
        case nlmsg::noop:
            continue;
        case nlmsg::overrun:
            ec = errc::overrun;
            return false;
        case nlmsg::error:
        case nlmsg::done: {
            int error = 0;
            kernel_error detail;
            if (!parse_error_payload(m, error, detail, ec)) return false;
            if (!kernel_.code) kernel_ = std::move(detail);
            --pending_;
            continue;
        }
        default:
            if (m.header.type < nlmsg::min_type) {
                ec = errc::unexpected_message;
                return false;
            }
            if (m.header.flags & nlm_f::dump_intr) interrupted_ = true;
            out.push_back(m);
        }
    }
    if (ec) return false;
    if (pending_ == 0 && kernel_.code) ec = kernel_.code;
    return pending_ == 0;
}

} // namespace cz::netlink
