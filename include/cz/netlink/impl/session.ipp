// Out-of-line definitions for cz/netlink/session.hpp.
#pragma once

#include <cz/netlink/session.hpp>

#include <asio/buffer.hpp>
#include <asio/socket_base.hpp>

#include <cerrno>
#include <chrono>

namespace cz::netlink {

CZ_DECL session::session(const asio::any_io_executor& executor, std::error_code& ec)
    : socket_(executor), receive_buffer_(64 * 1024) {
    ec.clear();
    socket_.open(raw_protocol::route(), ec);
    if (ec) return;
    // What iproute2 asks for too: extended ACKs, strict dump checking (kernels since 4.20 accept
    // it; older ones refuse the option, which only costs the filtering) and a receive buffer
    // large enough for dumps of big tables.
    std::error_code ignored;
    socket_.set_option(extended_ack(true), ignored);
    socket_.set_option(strict_check(true), ignored);
    socket_.set_option(asio::socket_base::receive_buffer_size(1 << 20), ignored);
    socket_.bind(endpoint(0), ec);
    if (ec) return;
    auto local = socket_.local_endpoint(ec);
    if (ec) return;
    port_ = local.port();
    // Start from a clock-derived number, as iproute2 does, so that a reply to an earlier socket
    // with the same port id can never look like ours.
    next_seq_ = std::uint32_t(std::chrono::steady_clock::now().time_since_epoch().count());
}

CZ_DECL void session::execute(message_builder& request, std::error_code& ec) {
    auto unexpected = [](const message&, std::error_code& handler_ec) {
        handler_ec = errc::unexpected_message;
    };
    execute_impl(request, detail::message_handler(unexpected), ec);
}

CZ_DECL void session::execute_impl(message_builder& request, detail::message_handler on_message,
                                   std::error_code& ec) {
    ec.clear();
    error_detail_.clear();
    if (request.error()) {
        ec = request.error();
        return;
    }
    std::uint32_t first = next_seq_;
    std::size_t count = request.stamp(first);
    if (count == 0) {
        ec = errc::invalid_argument;
        return;
    }
    next_seq_ += std::uint32_t(count);
    reader_.reset(first, std::uint32_t(count), port_);

    socket_.send_to(asio::buffer(request.data().data(), request.data().size()), endpoint(0), 0, ec);
    if (ec) return;

    std::error_code handler_ec;
    while (!reader_.done()) {
        // MSG_TRUNC makes recvmsg return the datagram's real length, so a reply larger than the
        // buffer is detected instead of silently cut.
        std::size_t n = socket_.receive(
            asio::buffer(receive_buffer_.data(), receive_buffer_.size()), MSG_TRUNC, ec);
        if (ec) {
            if (ec == std::error_code(ENOBUFS, std::system_category())) ec = errc::overrun;
            return;
        }
        if (n > receive_buffer_.size()) {
            ec = errc::reply_truncated;
            return;
        }
        batch_.clear();
        std::error_code feed_ec;
        bool finished = reader_.feed(bytes_view(receive_buffer_.data(), n), batch_, feed_ec);
        for (const auto& m : batch_) {
            if (handler_ec) break;
            on_message(m, handler_ec);
        }
        if (finished) {
            const kernel_error& k = reader_.kernel();
            if (k.code) {
                error_detail_.message = k.message;
                if (k.has_offset) error_detail_.offset = k.offset;
            }
            ec = k.code ? k.code : handler_ec;
            return;
        }
        if (feed_ec) { // malformed reply: the rest of this batch's replies are unreadable
            ec = feed_ec;
            return;
        }
    }
}

namespace detail {

CZ_DECL void throw_with_kernel_message(std::error_code ec, const session& s,
                                       const std::string& context) {
    // The detail is the kernel's for this request's failure: cleared when a request starts, set
    // only when the kernel refused it (and ec is then its code).
    const error_info& d = s.error_detail();
    if (!d.message.empty()) throw system_error(ec, context + ": " + d.message);
    throw system_error(ec, context);
}

} // namespace detail

} // namespace cz::netlink
