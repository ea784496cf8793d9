// Out-of-line definitions for cz/agent/credit.hpp.
#pragma once

#include <cz/agent/credit.hpp>

#include <algorithm>
#include <cstring>

namespace cz::agent {

CZ_DECL void receive_credit::on_data(std::size_t size, bool eof, std::error_code& ec) noexcept {
    if (eof_) {
        ec = errc::data_after_eof;
        return;
    }
    if (size > credit_) {
        ec = errc::credit_exceeded;
        return;
    }
    credit_ -= static_cast<std::uint32_t>(size);
    held_ += static_cast<std::uint32_t>(size); // held_ <= window - credit_: no overflow
    eof_ = eof;
    ec.clear();
}

CZ_DECL std::uint32_t receive_credit::on_consumed(std::size_t size) noexcept {
    auto n = static_cast<std::uint32_t>(std::min<std::size_t>(size, held_));
    held_ -= n;
    ungranted_ += n;
    if (eof_ || ungranted_ == 0 || ungranted_ < window_ / 2) return 0;
    std::uint32_t grant = ungranted_;
    ungranted_ = 0;
    credit_ += grant; // received - granted shrinks by grant: credit_ stays <= window_
    return grant;
}

CZ_DECL void stream_buffer::push(bytes_view data, bool eof, std::error_code& ec) {
    credit_.on_data(data.size(), eof, ec);
    if (ec || data.empty()) return;
    // Held bytes stay within the window (the credit check above), so compacting before appending
    // keeps buf_ within window bytes too, whatever the pattern of reads.
    if (begin_ > 0 && buf_.size() + data.size() > credit_.window()) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(begin_));
        begin_ = 0;
    }
    buf_.insert(buf_.end(), data.begin(), data.end());
}

CZ_DECL std::uint32_t stream_buffer::consume(std::size_t size) noexcept {
    std::size_t n = std::min<std::size_t>(size, held());
    begin_ += n;
    if (begin_ == buf_.size()) {
        buf_.clear();
        begin_ = 0;
    }
    return credit_.on_consumed(n);
}

CZ_DECL std::size_t stream_buffer::read(mutable_bytes out, std::uint32_t& grant) {
    auto held_now = front();
    std::size_t n = std::min(out.size(), held_now.size());
    if (n) std::memcpy(out.data(), held_now.data(), n);
    grant = consume(n);
    return n;
}

} // namespace cz::agent
