// cz/netlink/session.hpp — request/response over a NETLINK_ROUTE socket.
//
// A session owns one Asio netlink socket bound to a kernel-assigned port id, numbers its
// requests, sends a batch of messages in one datagram and reads replies until every message of
// the batch is answered (ACK, NLMSG_ERROR or NLMSG_DONE), checking port ids and sequence numbers
// on the way (cz::netlink::reply_reader; see message.hpp for the protocol). Blocking; one
// request at a time; not thread-safe. Replies left over from an abandoned request (an error
// thrown out of a handler) are recognised by their older sequence number and skipped.
//
// After errc::truncated, errc::bad_length or a receive error the replies still queued for that
// request can no longer be told apart, and an unfinished dump makes the kernel refuse the next
// dump on this socket (EBUSY): discard such a session and open a new one.
//
// The socket has NETLINK_EXT_ACK on, so a refused request comes with the kernel's message:
// error_detail() keeps it (cz::error_info: text, offset in the request) until the next request.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/error.hpp>
#include <cz/netlink/error.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/protocol.hpp>

#include <asio/any_io_executor.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cz::netlink {

namespace detail {
// A non-owning reference to a callable `void(const message&, std::error_code&)`, so the
// request loop is compiled once (impl/session.ipp) for every handler type.
class message_handler {
public:
    template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, message_handler>) message_handler(F& f)
    noexcept // NOLINT: implicit on purpose
        : object_(static_cast<void*>(&f)),
          call_([](void* o, const message& m, std::error_code& ec) {
              (*static_cast<F*>(o))(m, ec);
          }) {}
    void operator()(const message& m, std::error_code& ec) const { call_(object_, m, ec); }

private:
    void* object_;
    void (*call_)(void*, const message&, std::error_code&);
};
} // namespace detail

class session {
public:
    // Opens and binds the socket; errors from socket()/bind() (EPERM, EMFILE, ...).
    CZ_DECL session(const asio::any_io_executor& executor, std::error_code& ec);
    explicit session(const asio::any_io_executor& executor) : session(executor, init_ec_) {
        throw_if(init_ec_, "netlink: open NETLINK_ROUTE socket");
    }

    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Sends every message of `request` and reads until each is answered. `on_message(msg, ec)`
    // sees every data message (dump entries, GET replies); setting ec stops the handler calls
    // and is reported once the replies are drained. The first failure of the kernel wins.
    template <class Handler>
    void execute(message_builder& request, Handler&& on_message, std::error_code& ec) {
        execute_impl(request, detail::message_handler(on_message), ec);
    }
    // For requests that expect nothing but an ACK: a data reply is errc::unexpected_message.
    CZ_DECL void execute(message_builder& request, std::error_code& ec);

    // Whether the last dump had NLM_F_DUMP_INTR set on some message (the caller should retry).
    bool interrupted() const noexcept { return reader_.interrupted(); }

    // When the kernel refused the last request: its extended ACK's message and the offset in the
    // request it pointed at (NLMSGERR_ATTR_OFFS), where it sent them. Empty otherwise.
    const error_info& error_detail() const noexcept { return error_detail_; }

    // Replies skipped so far in the last request as leftovers of earlier ones.
    std::size_t stray_messages() const noexcept { return reader_.stray(); }
    // The sequence number the next request will start at (for code that also sends its own
    // messages on socket()).
    std::uint32_t next_sequence() const noexcept { return next_seq_; }

    raw_protocol::socket& socket() noexcept { return socket_; }
    // The port id the kernel assigned to this socket.
    std::uint32_t port() const noexcept { return port_; }

private:
    CZ_DECL void execute_impl(message_builder& request, detail::message_handler on_message,
                              std::error_code& ec);

    std::error_code init_ec_;
    raw_protocol::socket socket_;
    std::uint32_t port_ = 0;
    std::uint32_t next_seq_ = 1;
    reply_reader reader_;
    error_info error_detail_;
    byte_buffer receive_buffer_;
    std::vector<message> batch_;
};

namespace detail {
// Runs a dump, redoing it when the kernel flagged it interrupted (NLM_F_DUMP_INTR: the table
// changed meanwhile, entries may be missing or doubled); errc::dump_interrupted after 3 tries.
// `reset()` drops the partial results of the previous try.
template <class Reset, class Handler>
void dump(session& s, message_builder& request, Reset&& reset, Handler&& on_message,
          std::error_code& ec) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        reset();
        s.execute(request, on_message, ec);
        if (ec || !s.interrupted()) return;
    }
    ec = errc::dump_interrupted;
}

// Throws cz::system_error for ec, with the kernel's extended-ACK message (when it sent one for
// this failure) after `context`: "add address 10.0.0.1/24 to link 2: ipv4: Address already
// assigned." — what() then ends with ": File exists".
CZ_DECL void throw_with_kernel_message(std::error_code ec, const session& s,
                                       const std::string& context);
} // namespace detail

} // namespace cz::netlink

#if CZ_HEADER_ONLY
#include <cz/netlink/impl/session.ipp>
#endif
