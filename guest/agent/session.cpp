#include "session.hpp"

#include "../init/log.hpp"
#include "rpc.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace cz::guest {

session::session(event_loop& loop, process_table& processes, unique_fd connection)
    : loop_(loop), processes_(processes), conn_(std::move(connection)),
      hello_(agent::make_hello(agent::role::guest)), in_(std::make_unique<agent::envelope>()),
      out_(std::make_unique<agent::envelope>()) {
    // Our Hello goes first, without waiting for the host's.
    *out_ = cz_agent_Envelope_init_zero;
    out_->which_kind = cz_agent_Envelope_hello_tag;
    out_->kind.hello = hello_;
    std::error_code ec;
    writer_.write(*out_, ec);
    if (ec) fail(ec, "encoding our hello");
}

session::~session() {
    processes_.detach();
    loop_.unwatch(conn_.get());
}

void session::send_stream_data(std::uint32_t stream, bytes_view data, bool eof) {
    std::error_code ec;
    writer_.write_stream_data(stream, eof, data, ec);
    if (ec) fail(ec, "encoding stream data");
    update_interest();
}

void session::send_output(std::uint32_t stream, std::span<std::byte> buffer) {
    auto data = buffer.subspan(agent::stream_data_head_max);
    if (!writer_.empty() || data.empty() || done_) return send_stream_data(stream, data, false);
    // Nothing queued: the frame goes out from where the data is, its head written into the room
    // in front of it, in one write; only what the transport does not take now is copied into
    // the queue.
    std::error_code ec;
    std::array<std::byte, agent::stream_data_head_max> h;
    auto head_size =
        agent::encode_stream_data_head(stream, false, data.size(), writer_.max_frame_size(), h, ec);
    if (ec) {
        fail(ec, "encoding stream data");
        update_interest();
        return;
    }
    auto frame = buffer.subspan(agent::stream_data_head_max - head_size);
    std::memcpy(frame.data(), h.data(), head_size);
    ssize_t n;
    do
        n = ::write(conn_.get(), frame.data(), frame.size());
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) fail(std::error_code(errno, std::generic_category()), "write");
    writer_.queue_unsent(frame.first(head_size), data, n < 0 ? 0 : static_cast<std::size_t>(n));
    update_interest();
}

void session::send_stream_credit(std::uint32_t stream, std::uint32_t bytes) {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    m->which_kind = cz_agent_Envelope_stream_credit_tag;
    m->kind.stream_credit.stream = stream;
    m->kind.stream_credit.bytes = bytes;
    send(*m);
}

void session::send(const agent::envelope& m) {
    std::error_code ec;
    writer_.write(m, ec);
    if (ec) fail(ec, "encoding a message");
    update_interest();
}

session::outcome session::run() {
    if (!done_) {
        update_interest();
        flush();
    }
    while (!done_)
        loop_.run_once();
    if (*done_ == outcome::shutdown) wait_for_host_close();
    return *done_;
}

// Shutdown's answer has been written, but written is not received: bytes still in a virtqueue
// are lost when the power goes. The host closes the connection once it has the answer; wait for
// that, for a while, then power off anyway (a host that does not close gets the same, 2 s later).
void session::wait_for_host_close() {
    using clock = std::chrono::steady_clock;
    // On vsock the host also sees eof here; a virtio-serial port is no socket (ENOTSOCK).
    ::shutdown(conn_.get(), SHUT_WR);
    const auto deadline = clock::now() + std::chrono::seconds(2);
    std::byte discard[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            log(log_level::warn, "the host did not close the connection after Shutdown");
            return;
        }
        pollfd p{conn_.get(), POLLIN | POLLRDHUP, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno != EINTR) return;
        if (r <= 0) continue;
        // A closed socket reads eof; a serial port whose host side closed polls as hung up.
        if (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) return;
        ssize_t n = ::read(conn_.get(), discard, sizeof discard);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
}

void session::fail(const std::error_code& ec, const char* what) {
    log(log_level::error, "host connection: {}: {} (at stream offset {})", what, ec.message(),
        reader_.frame_offset());
    done_ = outcome::protocol_error;
}

void session::update_interest() {
    if (done_) {
        loop_.unwatch(conn_.get());
        watched_.reset();
        return;
    }
    // Back-pressure: with too many answers unsent, stop taking requests until the host reads.
    std::uint32_t events = EPOLLRDHUP;
    if (writer_.pending().size() < max_pending_output) events |= EPOLLIN;
    if (!writer_.empty()) events |= EPOLLOUT;
    // Called after every frame queued: the system call only when the interest changes.
    if (watched_ == events) return;
    loop_.watch(conn_.get(), events, [this](std::uint32_t ev) { on_ready(ev); });
    watched_ = events;
}

void session::on_ready(std::uint32_t events) {
    if (events & (EPOLLOUT | EPOLLERR)) flush();
    if (!done_ && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) read_input();
    if (!done_) flush();
    update_interest();
}

void session::read_input() {
    for (int rounds = 0; rounds < 16 && !done_; ++rounds) {
        if (writer_.pending().size() >= max_pending_output) return;
        auto space = reader_.prepare();
        ssize_t n = ::read(conn_.get(), space.data(), space.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            fail(std::error_code(errno, std::generic_category()), "read");
            return;
        }
        if (n == 0) {
            std::error_code ec;
            reader_.finish(ec);
            if (ec)
                fail(ec, "the host went away inside a frame");
            else
                done_ = outcome::closed;
            return;
        }
        reader_.commit(static_cast<std::size_t>(n));
        std::error_code ec;
        for (auto frame = reader_.next(ec); !ec && !done_; frame = reader_.next(ec))
            handle_frame(frame);
        if (ec && ec != agent::errc::need_more) {
            fail(ec, "bad frame");
            return;
        }
    }
}

void session::handle_frame(bytes_view frame) {
    std::error_code ec;
    std::string_view detail;
    agent::decode_message(frame, *in_, ec, &detail);
    if (ec) {
        log(log_level::error, "host connection: undecodable message: {}", detail);
        fail(ec, "decoding a message");
        return;
    }
    if (!negotiated_) {
        if (agent::kind_of(*in_) != agent::message_kind::hello) {
            fail(agent::errc::unexpected_message, "the first message is not a Hello");
            return;
        }
        auto s = agent::negotiate(hello_, in_->kind.hello, ec);
        if (ec) {
            fail(ec, "handshake");
            return;
        }
        negotiated_ = s;
        writer_.set_max_frame_size(s.send_max_frame);
        processes_.attach(this, s.send_window, s.receive_window);
        log(log_level::info, "host connected: protocol version {}", s.version);
        return;
    }
    agent::check_sender(agent::role::host, *in_, ec);
    if (ec) {
        fail(ec, "a message the host may not send");
        return;
    }
    switch (agent::kind_of(*in_)) {
    case agent::message_kind::request:
        handle_request(in_->kind.request);
        break;
    case agent::message_kind::stream_data: {
        const auto& d = in_->kind.stream_data;
        processes_.on_stream_data(d.stream, d.data.view(), d.eof, ec);
        if (ec) fail(ec, "stream data");
        break;
    }
    case agent::message_kind::stream_credit:
        processes_.on_stream_credit(in_->kind.stream_credit.stream, in_->kind.stream_credit.bytes,
                                    ec);
        if (ec) fail(ec, "stream credit");
        break;
    default:
        fail(agent::errc::unexpected_message, "unexpected message");
        break;
    }
}

void session::handle_request(const agent::request& req) {
    *out_ = cz_agent_Envelope_init_zero;
    out_->which_kind = cz_agent_Envelope_response_tag;
    auto& resp = out_->kind.response;
    resp.id = req.id;
    bool shutdown = false;
    switch (req.which_rpc) {
    case cz_agent_Request_create_process_tag:
        processes_.create(req.rpc.create_process, resp);
        break;
    case cz_agent_Request_start_process_tag:
        processes_.start(req.rpc.start_process, resp);
        break;
    case cz_agent_Request_wait_process_tag:
        // Answered later, once the process has finished, unless it already has.
        if (!processes_.wait(req.id, req.rpc.wait_process, resp)) return;
        break;
    case cz_agent_Request_kill_process_tag:
        processes_.kill(req.rpc.kill_process, resp);
        break;
    case cz_agent_Request_close_process_stdin_tag:
        processes_.close_stdin(req.rpc.close_process_stdin, resp);
        break;
    case cz_agent_Request_copy_in_tag:
        if (!processes_.copy_in(req.id, req.rpc.copy_in, resp)) return;
        break;
    case cz_agent_Request_stat_tag:
        if (req.rpc.stat.container_id[0] != '\0')
            processes_.stat_in_container(req.rpc.stat, resp);
        else
            answer_request(req, resp);
        break;
    case cz_agent_Request_copy_out_tag:
        if (!processes_.copy_out(req.id, req.rpc.copy_out, resp)) return;
        break;
    case cz_agent_Request_resize_process_tag:
        processes_.resize(req.rpc.resize_process, resp);
        break;
    case cz_agent_Request_delete_process_tag:
        processes_.remove(req.rpc.delete_process, resp);
        break;
    case cz_agent_Request_statistics_tag:
        processes_.statistics(req.rpc.statistics, resp);
        break;
    default:
        shutdown = answer_request(req, resp);
        break;
    }
    std::error_code ec;
    writer_.write(*out_, ec);
    if (ec) {
        // Our own answer does not encode or fit the host's frames: say so instead.
        log(log_level::error, "answer to request {} cannot be sent: {}", req.id, ec.message());
        *out_ = cz_agent_Envelope_init_zero;
        out_->which_kind = cz_agent_Envelope_response_tag;
        set_error(out_->kind.response, cz_agent_ErrorCode_ERROR_INTERNAL, 0,
                  "the answer does not fit in a frame: " + ec.message());
        out_->kind.response.id = req.id;
        writer_.write(*out_, ec);
        if (ec) fail(ec, "encoding an error answer");
    }
    if (shutdown) shutdown_requested_ = true;
}

void session::flush() {
    while (!writer_.empty()) {
        auto pending = writer_.pending();
        ssize_t n = ::write(conn_.get(), pending.data(), pending.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            if (!done_) fail(std::error_code(errno, std::generic_category()), "write");
            return;
        }
        writer_.consume(static_cast<std::size_t>(n));
    }
    // Room again: outputs that waited for the host to read can go on.
    if (negotiated_ && !done_) processes_.resume_outputs();
    // Shutdown is answered before the power goes: only once the answer is out.
    if (shutdown_requested_ && !done_) done_ = outcome::shutdown;
}

} // namespace cz::guest
