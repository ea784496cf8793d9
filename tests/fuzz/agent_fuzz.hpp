// The body shared by the agent fuzz targets: one side of an agent connection fed arbitrary bytes
// as the frames its peer sent. Each run must end cleanly or with an error that drops the
// connection, with bounded memory, never a crash, an out-of-bounds read or a broken invariant:
//  - frames: the reader never holds more than one frame and one chunk of input;
//  - messages: whatever decodes re-encodes, and that encoding decodes and encodes to itself
//    (nothing is lost or invented), with its bytes fields inside the frame;
//  - the handshake: a Hello first and only once, then negotiate();
//  - streams: StreamData within the credit (a consumer drains half of what is held after each
//    frame and grants credit back), StreamCredit within the window; at most 64 streams.
#pragma once

#include <cz/agent.hpp>

#include <map>
#include <memory>
#include <optional>

[[noreturn]] inline void agent_fuzz_broken() {
    __builtin_trap();
}

inline void fuzz_agent_receiver(const unsigned char* data, std::size_t size,
                                cz::agent::role sender) {
    namespace agent = cz::agent;
    constexpr std::uint32_t max_frame = agent::min_frame_size_limit;
    cz::bytes_view input{reinterpret_cast<const std::byte*>(data), size};
    const std::size_t chunk = size ? 1 + data[0] % 97 * 13 : 1;

    // Envelopes are about 21 KiB: one set per process, as a connection keeps one.
    static auto m = std::make_unique<agent::envelope>();
    static auto again = std::make_unique<agent::envelope>();

    auto self = sender == agent::role::host ? agent::role::guest : agent::role::host;
    auto ours = agent::make_hello(self, max_frame, agent::min_stream_window);
    std::optional<agent::session> session;
    std::map<std::uint32_t, agent::stream_buffer> receiving;
    std::map<std::uint32_t, agent::send_credit> sending;

    agent::frame_reader reader(max_frame);
    std::error_code ec;
    auto handle = [&](cz::bytes_view frame) {
        agent::decode_message(frame, *m, ec);
        if (ec) return;
        agent::check_sender(sender, *m, ec);
        if (ec) return;

        // Re-encoding is a fixed point after one round.
        cz::byte_buffer first, second;
        agent::encode_frame(*m, 1u << 30, first, ec);
        if (ec) agent_fuzz_broken();
        agent::decode_message(cz::bytes_view(first).subspan(agent::frame_header_size), *again, ec);
        if (ec) agent_fuzz_broken();
        agent::encode_frame(*again, 1u << 30, second, ec);
        if (ec || first != second) agent_fuzz_broken();

        auto kind = agent::kind_of(*m);
        if (kind == agent::message_kind::hello || !session) {
            if (kind != agent::message_kind::hello || session) {
                ec = agent::errc::unexpected_message;
                return;
            }
            auto s = agent::negotiate(ours, m->kind.hello, ec);
            if (!ec) session = s;
            return;
        }
        if (kind == agent::message_kind::stream_data) {
            auto& d = m->kind.stream_data;
            auto view = d.data.view();
            if (!view.empty() && (view.data() < frame.data() ||
                                  view.data() + view.size() > frame.data() + frame.size()))
                agent_fuzz_broken();
            auto it = receiving.find(d.stream);
            if (it == receiving.end()) {
                if (receiving.size() >= 64) {
                    ec = agent::errc::bad_stream;
                    return;
                }
                it = receiving.emplace(d.stream, agent::stream_buffer(session->receive_window))
                         .first;
            }
            it->second.push(view, d.eof, ec);
            if (ec) return;
            if (it->second.held() > session->receive_window) agent_fuzz_broken();
            auto front = it->second.front();
            if (front.size() != it->second.held()) agent_fuzz_broken();
            it->second.consume(front.size() / 2 + (d.eof ? front.size() : 0));
        } else if (kind == agent::message_kind::stream_credit) {
            auto& c = m->kind.stream_credit;
            auto it = sending.find(c.stream);
            if (it == sending.end()) {
                if (sending.size() >= 64) {
                    ec = agent::errc::bad_stream;
                    return;
                }
                it = sending.emplace(c.stream, agent::send_credit(session->send_window)).first;
                it->second.take(c.stream * 2654435761u %
                                (session->send_window + 1)); // some in flight
            }
            it->second.grant(c.bytes, ec);
            if (!ec && it->second.available() > it->second.window()) agent_fuzz_broken();
        }
    };

    for (std::size_t pos = 0; pos < size && !ec;) {
        auto n = std::min(chunk, size - pos);
        reader.feed(input.subspan(pos, n));
        pos += n;
        for (auto frame = reader.next(ec); !ec; frame = reader.next(ec)) {
            if (frame.empty() || frame.size() > max_frame) agent_fuzz_broken();
            handle(frame);
            if (ec) return; // the connection is dropped
        }
        if (ec != agent::errc::need_more) return;
        ec.clear();
        if (reader.buffered() > agent::frame_header_size + max_frame + chunk) agent_fuzz_broken();
    }
    reader.finish(ec);
}
