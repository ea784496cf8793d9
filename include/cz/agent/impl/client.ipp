// Out-of-line definitions for cz/agent/client.hpp.
#pragma once

#include <cz/agent/client.hpp>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>

namespace cz::agent {

CZ_DECL void client::open_stream(std::uint32_t id, std::error_code& ec) {
    if (id == 0 || streams_.count(id)) {
        ec = errc::bad_stream;
        return;
    }
    streams_.emplace(id, std::make_unique<stream_state>(get_executor(), session_.send_window,
                                                        session_.receive_window));
    ec.clear();
}

CZ_DECL void client::close_stream(std::uint32_t id) {
    streams_.erase(id); // destroying its signals wakes whoever waits on them
}

CZ_DECL std::error_code client::send(const envelope& m) {
    if (failed_) return failed_;
    std::error_code ec;
    writer_.write(m, ec);
    if (!ec) start_writing();
    return ec;
}

CZ_DECL void client::start_writing() {
    if (writing_ || failed_) return;
    writing_ = true;
    asio::co_spawn(get_executor(), write_loop(), [](std::exception_ptr) {});
}

CZ_DECL asio::awaitable<void> client::write_loop() {
    // Writes everything queued, batch by batch: frames queued meanwhile go into the writer's
    // other buffer, so the bytes being written never move.
    while (!writer_.empty() && !failed_) {
        writer_.take_pending(inflight_);
        std::error_code ec;
        co_await asio::async_write(socket_, asio::buffer(inflight_.data(), inflight_.size()),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            fail_all(ec);
            close();
        }
    }
    writing_ = false;
}

CZ_DECL void client::fail_all(std::error_code ec) {
    if (!failed_) failed_ = ec;
    for (auto& [id, p] : calls_) {
        p->ec = failed_;
        p->done.cancel();
    }
    calls_.clear();
    for (auto& [id, s] : streams_) {
        s->wake_reader.cancel();
        s->wake_writer.cancel();
    }
}

CZ_DECL asio::awaitable<std::error_code> client::read_frame(bytes_view& frame) {
    std::error_code ec;
    while (true) {
        frame = reader_.next(ec);
        if (ec != errc::need_more) co_return ec;
        auto space = reader_.prepare();
        ec.clear();
        auto n = co_await socket_.async_read_some(asio::buffer(space.data(), space.size()),
                                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::eof) {
            std::error_code end;
            reader_.finish(end); // a clean end between frames, or truncated inside one
            co_return end ? end : ec;
        }
        if (ec) co_return ec;
        reader_.commit(n);
    }
}

CZ_DECL asio::awaitable<std::pair<std::error_code, session>> client::handshake() {
    if (ready_ || failed_)
        co_return std::pair{make_error_code(errc::unexpected_message), session{}};
    *out_ = cz_agent_Envelope_init_zero;
    out_->which_kind = cz_agent_Envelope_hello_tag;
    out_->kind.hello = make_hello(role::host, options_.max_frame_size, options_.stream_window);
    hello ours = out_->kind.hello;
    if (auto ec = send(*out_)) co_return std::pair{ec, session{}};

    bytes_view frame;
    std::error_code ec = co_await read_frame(frame);
    if (ec == asio::error::eof) ec = errc::connection_closed;
    if (!ec) decode_message(frame, *message_, ec);
    if (!ec) check_sender(role::guest, *message_, ec);
    if (!ec && kind_of(*message_) != message_kind::hello) ec = errc::unexpected_message;
    session s;
    if (!ec) s = negotiate(ours, message_->kind.hello, ec);
    if (ec) {
        fail_all(ec);
        close();
        co_return std::pair{ec, session{}};
    }
    session_ = s;
    writer_.set_max_frame_size(s.send_max_frame);
    ready_ = true;
    co_return std::pair{std::error_code{}, s};
}

CZ_DECL std::error_code client::dispatch(const envelope& m) {
    std::error_code ec;
    switch (kind_of(m)) {
    case message_kind::response: {
        auto it = calls_.find(m.kind.response.id);
        if (it == calls_.end()) return errc::unexpected_message; // an answer to no request
        auto* p = it->second;
        if (it->first == shutdown_id_ && m.kind.response.which_result != cz_agent_Response_error_tag)
            answered_shutdown_ = true;
        calls_.erase(it);
        p->result = m.kind.response;
        if (m.kind.response.which_result == cz_agent_Response_error_tag)
            p->ec = errc::rpc_failed;
        else if (m.kind.response.which_result == 0)
            p->ec = errc::unknown_message; // a result this build does not know: this call fails
        p->done.cancel();
        return {};
    }
    case message_kind::event:
        if (m.kind.event.which_kind != 0 && on_event_) on_event_(m.kind.event);
        return {};
    case message_kind::stream_data: {
        auto& d = m.kind.stream_data;
        auto it = streams_.find(d.stream);
        if (it == streams_.end()) return {}; // closed here while in flight: dropped, not kept
        it->second->in.push(d.data.view(), d.eof, ec);
        it->second->wake_reader.cancel();
        return ec;
    }
    case message_kind::stream_credit: {
        auto& c = m.kind.stream_credit;
        auto it = streams_.find(c.stream);
        if (it == streams_.end()) return {};
        it->second->out.grant(c.bytes, ec);
        it->second->wake_writer.cancel();
        return ec;
    }
    default:
        return errc::unexpected_message; // a second Hello (check_sender refused the rest)
    }
}

CZ_DECL asio::awaitable<std::error_code> client::run() {
    if (!ready_) co_return make_error_code(errc::unexpected_message);
    std::error_code ec;
    while (!ec) {
        bytes_view frame;
        ec = co_await read_frame(frame);
        if (ec) break;
        decode_message(frame, *message_, ec);
        if (!ec) check_sender(role::guest, *message_, ec);
        if (!ec) ec = dispatch(*message_);
        if (!ec && answered_shutdown_) ec = asio::error::eof; // the guest powers off now
    }
    bool clean = ec == asio::error::eof;
    fail_all(clean ? make_error_code(errc::connection_closed) : ec);
    close();
    co_return clean ? std::error_code{} : ec;
}

// g++ 12 takes the coroutine frame's class-specific operator delete (Asio's awaitable_frame_base
// defines both new and delete) for a mismatch in this function: a false positive, silenced here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
CZ_DECL asio::awaitable<std::pair<std::error_code, response>>
client::call(std::unique_ptr<request> r) {
    if (!ready_) co_return std::pair{make_error_code(errc::unexpected_message), response{}};
    if (failed_) co_return std::pair{failed_, response{}};
    auto id = next_id_++;
    r->id = id;
    if (r->which_rpc == cz_agent_Request_shutdown_tag) shutdown_id_ = id;
    *out_ = cz_agent_Envelope_init_zero;
    out_->which_kind = cz_agent_Envelope_request_tag;
    out_->kind.request = *r;
    r.reset();
    auto p = std::make_unique<pending_call>(
        pending_call{signal(get_executor(), signal::time_point::max()), {}, {}});
    if (auto ec = send(*out_)) co_return std::pair{ec, response{}};
    calls_[id] = p.get();
    std::error_code wait_ec;
    co_await p->done.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    // The signal only ends by cancellation: from dispatch() or fail_all() with the outcome in p,
    // or from outside.
    if (calls_.erase(id) != 0 && !p->ec) p->ec = asio::error::operation_aborted;
    co_return std::pair{p->ec, p->result};
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

CZ_DECL asio::awaitable<std::pair<std::error_code, std::size_t>>
client::write_stream(std::uint32_t id, bytes_view data, bool eof) {
    std::size_t sent = 0;
    while (true) {
        if (failed_) co_return std::pair{failed_, sent};
        auto it = streams_.find(id);
        if (it == streams_.end()) co_return std::pair{make_error_code(errc::bad_stream), sent};
        stream_state& s = *it->second; // not used across a suspension: the stream may close
        if (s.out_ended) co_return std::pair{make_error_code(errc::data_after_eof), sent};
        std::size_t left = data.size() - sent;
        if (left == 0 && !eof) co_return std::pair{std::error_code{}, sent};
        std::size_t n = s.out.take(std::min(left, max_stream_payload(session_.send_max_frame)));
        if (n > 0 || left == 0) {
            bool last = eof && n == left;
            std::error_code ec;
            writer_.write_stream_data(id, last, data.subspan(sent, n), ec);
            if (ec) co_return std::pair{ec, sent};
            start_writing();
            sent += n;
            if (last) {
                s.out_ended = true;
                co_return std::pair{std::error_code{}, sent};
            }
            continue;
        }
        // No credit: wait for a grant (or the stream's end, or the connection's).
        std::error_code wait_ec;
        s.wake_writer.expires_at(signal::time_point::max());
        co_await s.wake_writer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    }
}

CZ_DECL asio::awaitable<std::pair<std::error_code, std::size_t>>
client::read_stream(std::uint32_t id, mutable_bytes out) {
    while (true) {
        auto it = streams_.find(id);
        if (it == streams_.end()) co_return std::pair{make_error_code(errc::bad_stream), 0};
        stream_state& s = *it->second; // not used across a suspension: the stream may close
        if (s.in.held() > 0 || out.empty()) {
            std::uint32_t grant = 0;
            auto n = s.in.read(out, grant);
            if (grant) {
                *out_ = cz_agent_Envelope_init_zero;
                out_->which_kind = cz_agent_Envelope_stream_credit_tag;
                out_->kind.stream_credit.stream = id;
                out_->kind.stream_credit.bytes = grant;
                if (auto ec = send(*out_)) co_return std::pair{ec, n};
            }
            co_return std::pair{std::error_code{}, n};
        }
        if (s.in.finished()) co_return std::pair{make_error_code(asio::error::eof), 0};
        if (failed_) co_return std::pair{failed_, 0};
        std::error_code wait_ec;
        s.wake_reader.expires_at(signal::time_point::max());
        co_await s.wake_reader.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    }
}

} // namespace cz::agent
