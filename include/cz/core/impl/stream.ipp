// Out-of-line definitions for cz/core/stream.hpp.
#pragma once

#include <cz/core/stream.hpp>

#include <algorithm>
#include <array>

namespace cz {

CZ_DECL std::size_t read_full(source_ref src, mutable_bytes buf, std::error_code& ec) {
    ec.clear();
    std::size_t done = 0;
    while (done < buf.size()) {
        auto n = src.read_some(buf.subspan(done), ec);
        if (n == 0) break; // end of stream or error
        done += n;
    }
    return done;
}

CZ_DECL std::uint64_t copy(source_ref src, sink_ref sink, std::error_code& ec) {
    ec.clear();
    std::array<std::byte, 64 * 1024> chunk;
    std::uint64_t total = 0;
    for (;;) {
        auto n = src.read_some(chunk, ec);
        if (ec || n == 0) return total;
        sink.write(std::span(chunk).first(n), ec);
        if (ec) return total;
        total += n;
    }
}

CZ_DECL byte_buffer read_all(source_ref src, std::size_t limit, std::error_code& ec) {
    ec.clear();
    byte_buffer out;
    std::array<std::byte, 64 * 1024> chunk;
    for (;;) {
        auto n = src.read_some(chunk, ec);
        if (ec || n == 0) return out;
        if (n > limit - out.size()) {
            ec = make_error_code(errc::too_large);
            return out;
        }
        out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
}

CZ_DECL std::size_t memory_source::read_some(mutable_bytes buf, std::error_code& ec) {
    ec.clear();
    auto n = std::min(buf.size(), data_.size());
    std::copy_n(data_.begin(), n, buf.begin());
    data_ = data_.subspan(n);
    return n;
}

CZ_DECL void buffer_sink::write(bytes_view data, std::error_code& ec) {
    ec.clear();
    out_->insert(out_->end(), data.begin(), data.end());
}

CZ_DECL std::size_t fd_source::read_some(mutable_bytes buf, std::error_code& ec) {
    ec.clear();
    for (;;) {
        auto n = sys::read(fd_, buf.data(), buf.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        ec = last_system_error();
        return 0;
    }
}

CZ_DECL void fd_sink::write(bytes_view data, std::error_code& ec) {
    ec.clear();
    while (!data.empty()) {
        auto n = sys::write(fd_, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            ec = last_system_error();
            return;
        }
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

} // namespace cz
