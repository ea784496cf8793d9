// cz/agent/credit.hpp — credit-based flow control for the byte streams of an agent connection.
//
// Primer. Every stream (a process's stdin, stdout or stderr, a tty, a CopyIn/CopyOut tar stream)
// is a sequence of StreamData frames in one direction (a tty: one stream id, each direction on its
// own). The receiver of a direction starts the sender with `window` bytes of credit (its Hello's
// stream_window). Each StreamData spends as much credit as it carries payload; eof is free. The
// receiver grants credit back with StreamCredit as its consumer drains the data, in batches of at
// least half the window, so a stream that flows costs one small frame per window/2 bytes.
//
// Invariant: bytes the receiver holds <= bytes received - bytes granted back <= window. So a
// receiver never buffers more than `window` bytes per stream, and a sender that runs out of
// credit waits for that stream alone: the connection keeps carrying every other stream. A sender
// that spends more than its credit (credit_exceeded), or a receiver that grants more than it could
// have consumed (credit_overflow), breaks the protocol: the connection is dropped.
//
// These classes are the state alone, with no I/O and no clock; the host client and cz-init keep
// one per stream direction:
//
//     cz::agent::send_credit out(session.send_window);
//     auto n = out.take(chunk.size());            // send chunk.first(n); 0: wait for a grant
//     out.grant(credit_message.bytes, ec);        // on StreamCredit
//
//     cz::agent::stream_buffer in(session.receive_window);
//     in.push(data.view(), data.eof, ec);         // on StreamData (copies; bounded by the window)
//     auto n = in.read(buffer, grant);            // the consumer reads; grant > 0: send
//     StreamCredit
#pragma once

#include <cz/agent/error.hpp>
#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <system_error>

namespace cz::agent {

// The sending side of one stream direction.
class send_credit {
public:
    explicit send_credit(std::uint32_t window) noexcept : window_(window), available_(window) {}

    // Bytes that may be sent now.
    std::uint32_t available() const noexcept { return available_; }
    std::uint32_t window() const noexcept { return window_; }

    // Spends credit for a StreamData about to be sent: min(want, available()), which the caller
    // sends (possibly 0: wait for a grant).
    std::size_t take(std::size_t want) noexcept {
        std::size_t n = want < available_ ? want : available_;
        available_ -= static_cast<std::uint32_t>(n);
        return n;
    }

    // The receiver granted `bytes` (StreamCredit). credit_overflow when that would give more
    // than the window: the receiver claims to have consumed bytes it was never sent.
    void grant(std::uint32_t bytes, std::error_code& ec) noexcept {
        if (bytes > window_ - available_) {
            ec = errc::credit_overflow;
            return;
        }
        available_ += bytes;
        ec.clear();
    }

private:
    std::uint32_t window_;
    std::uint32_t available_;
};

// The receiving side of one stream direction: the accounting alone, for a receiver that passes
// the data on at once (and reports what its consumer has drained).
class receive_credit {
public:
    explicit receive_credit(std::uint32_t window) noexcept : window_(window), credit_(window) {}

    // A StreamData of `size` payload bytes arrived. credit_exceeded when the sender had less
    // credit than that; data_after_eof when the stream had already ended (an eof-only frame after
    // eof is that too). Nothing is counted on error.
    CZ_DECL void on_data(std::size_t size, bool eof, std::error_code& ec) noexcept;

    // The consumer drained `size` bytes of what arrived (at most what is held). Returns the
    // credit to grant now in a StreamCredit: 0 until at least half the window is ungranted, and
    // always 0 after eof (the sender will send no more).
    CZ_DECL std::uint32_t on_consumed(std::size_t size) noexcept;

    // Bytes received and not yet consumed.
    std::uint32_t held() const noexcept { return held_; }
    // The credit the sender has left, as far as the receiver knows.
    std::uint32_t sender_credit() const noexcept { return credit_; }
    std::uint32_t window() const noexcept { return window_; }
    bool eof() const noexcept { return eof_; }

private:
    std::uint32_t window_;
    std::uint32_t credit_;        // window - (received - granted)
    std::uint32_t held_ = 0;      // received - consumed
    std::uint32_t ungranted_ = 0; // consumed - granted
    bool eof_ = false;
};

// A receiving stream direction with its bytes: the data of StreamData frames waits here (copied
// out of the frame) until the consumer reads it. Holds at most `window` bytes, by the credit.
class stream_buffer {
public:
    explicit stream_buffer(std::uint32_t window) : credit_(window) {}

    // A StreamData arrived: errors as receive_credit::on_data; the bytes are kept otherwise.
    CZ_DECL void push(bytes_view data, bool eof, std::error_code& ec);

    // Moves up to out.size() held bytes into `out`; returns how many. `grant` receives the credit
    // to send back now (0: none).
    CZ_DECL std::size_t read(mutable_bytes out, std::uint32_t& grant);

    // The held bytes, oldest first, and their release: the same as read() without a copy.
    bytes_view front() const noexcept { return bytes_view(buf_).subspan(begin_, held()); }
    CZ_DECL std::uint32_t consume(std::size_t size) noexcept;

    std::uint32_t held() const noexcept { return credit_.held(); }
    // The sender has sent eof and every byte has been read.
    bool finished() const noexcept { return credit_.eof() && held() == 0; }
    const receive_credit& credit() const noexcept { return credit_; }

private:
    receive_credit credit_;
    byte_buffer buf_;
    std::size_t begin_ = 0;
};

} // namespace cz::agent

#if CZ_HEADER_ONLY
#include <cz/agent/impl/credit.ipp>
#endif
