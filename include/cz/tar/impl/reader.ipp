// Out-of-line definitions for cz/tar/reader.hpp.
#pragma once

#include <cz/tar/reader.hpp>

#include <algorithm>
#include <cstring>

namespace cz::tar {

namespace detail {
// Big enough that a read_some on a file or decompressor moves many small entries at once.
inline constexpr std::size_t reader_buffer_size = 256 << 10;
// Reads at least this large go straight from the source into the caller's buffer.
inline constexpr std::size_t direct_read_threshold = 64 << 10;
} // namespace detail

CZ_DECL reader::reader(source_ref src, parser_options options)
    : src_(src), parser_(options),
      buf_(std::make_unique_for_overwrite<std::byte[]>(detail::reader_buffer_size)) {}
CZ_DECL reader::reader(bytes_view archive, parser_options options)
    : parser_(options), pending_(archive) {}
CZ_DECL reader::~reader() = default;
CZ_DECL reader::reader(reader&&) noexcept = default;
CZ_DECL reader& reader::operator=(reader&&) noexcept = default;

CZ_DECL std::size_t reader::fail(std::error_code& ec, std::error_code what) {
    error_ = what;
    // The parser's header, or, when the source failed (an I/O or decompression error), where the
    // bytes stopped coming.
    detail_ = parser_.error_detail().empty() ? error_info{"tar stream", parser_.offset()}
                                             : parser_.error_detail();
    ec = what;
    in_entry_ = false;
    return 0;
}

// Reads more input once pending_ is used up. False at the end of the input or on error.
CZ_DECL bool reader::refill(std::error_code& ec) {
    if (eof_ || !src_) {
        eof_ = true; // a reader over memory had all its input from the start
        return false;
    }
    auto n = src_->read_some({buf_.get(), detail::reader_buffer_size}, ec);
    if (ec) return false;
    if (n == 0) {
        eof_ = true;
        return false;
    }
    pending_ = {buf_.get(), n};
    return true;
}

CZ_DECL const entry* reader::next(std::error_code& ec) {
    ec.clear();
    if (error_) {
        ec = error_;
        return nullptr;
    }
    if (ended_) return nullptr;
    in_entry_ = false;
    for (;;) {
        if (pending_.empty() && !refill(ec)) {
            if (ec) return fail(ec, ec), nullptr;
            parser_.finish(ec);
            if (ec) return fail(ec, ec), nullptr;
            ended_ = true;
            return nullptr;
        }
        std::error_code perr;
        pending_ = pending_.subspan(parser_.feed(pending_, perr));
        if (perr && perr != errc::need_more) return fail(ec, perr), nullptr;
        switch (parser_.event()) {
        case parse_event::entry:
            in_entry_ = true;
            pos_ = 0;
            segment_ = 0;
            return &parser_.current();
        case parse_event::end:
            ended_ = true;
            return nullptr;
        case parse_event::data: // the rest of an entry the caller did not read
        case parse_event::none:
            break;
        }
    }
}

CZ_DECL const entry* reader::next() {
    std::error_code ec;
    auto* e = next(ec);
    if (ec) throw_error(ec, "{}", to_string(error_detail()));
    return e;
}

CZ_DECL bytes_view reader::read_stored_view(std::size_t max, std::error_code& ec) {
    ec.clear();
    if (error_) return fail(ec, error_), bytes_view();
    if (!in_entry_ || max == 0) return {};
    auto remaining = parser_.data_remaining();
    if (remaining == 0) return {};
    auto want = std::size_t(std::min<std::uint64_t>(remaining, max));
    for (;;) {
        if (!pending_.empty()) {
            // The parser is in the data state and is given no more than `want`: what it
            // consumes comes back as one data event, a view into pending_.
            std::error_code perr;
            auto used = parser_.feed(pending_.first(std::min(want, pending_.size())), perr);
            pending_ = pending_.subspan(used);
            if (perr && perr != errc::need_more) return fail(ec, perr), bytes_view();
            if (parser_.event() == parse_event::data) return parser_.data();
            continue;
        }
        if (!refill(ec)) {
            if (ec) return fail(ec, ec), bytes_view();
            parser_.finish(ec);
            return fail(ec, ec ? ec : std::error_code(errc::truncated)), bytes_view();
        }
    }
}

CZ_DECL std::size_t reader::read_stored_some(mutable_bytes out, std::error_code& ec) {
    ec.clear();
    if (error_) return fail(ec, error_);
    if (!in_entry_ || out.empty()) return 0;
    auto want = std::size_t(std::min<std::uint64_t>(parser_.data_remaining(), out.size()));
    if (want >= detail::direct_read_threshold && pending_.empty() && src_ && !eof_) {
        // Straight into the caller's buffer: the parser is in the data state and is given no
        // more than the data left, so all of it comes back as one data event.
        auto n = src_->read_some(out.first(want), ec);
        if (ec) return fail(ec, ec);
        if (n > 0) {
            std::error_code perr;
            parser_.feed(out.first(n), perr);
            if (perr && perr != errc::need_more) return fail(ec, perr);
            return n;
        }
        eof_ = true;
    }
    auto v = read_stored_view(want, ec);
    // SAFETY: v.size() <= want <= out.size(); memcpy needs a non-null source even for 0 bytes.
    if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
    return v.size();
}

CZ_DECL bytes_view reader::read_view(std::size_t max, std::error_code& ec) {
    ec.clear();
    if (error_) return fail(ec, error_), bytes_view();
    if (!in_entry_ || max == 0) return {};
    const entry& e = parser_.current();
    if (!e.is_sparse()) return read_stored_view(max, ec);
    if (pos_ >= e.size) return {};
    const auto& map = e.sparse_map;
    while (segment_ < map.size() && pos_ >= map[segment_].offset + map[segment_].length)
        ++segment_;
    if (segment_ == map.size() || pos_ < map[segment_].offset) {
        constexpr std::size_t zero_block = 64 << 10;
        if (!zeros_) zeros_ = std::make_unique<std::byte[]>(zero_block); // value-initialised
        auto hole_end = segment_ == map.size() ? e.size : map[segment_].offset;
        auto n = std::size_t(std::min<std::uint64_t>({hole_end - pos_, max, zero_block}));
        pos_ += n;
        return {zeros_.get(), n};
    }
    auto n = std::size_t(
        std::min<std::uint64_t>(map[segment_].offset + map[segment_].length - pos_, max));
    auto v = read_stored_view(n, ec);
    if (ec) return {};
    if (v.empty()) return fail(ec, errc::truncated), bytes_view();
    pos_ += v.size();
    return v;
}

CZ_DECL std::size_t reader::read_some(mutable_bytes out, std::error_code& ec) {
    ec.clear();
    if (error_) return fail(ec, error_);
    if (!in_entry_ || out.empty()) return 0;
    const entry& e = parser_.current();
    if (!e.is_sparse()) return read_stored_some(out, ec);
    if (pos_ >= e.size) return 0;
    const auto& map = e.sparse_map;
    while (segment_ < map.size() && pos_ >= map[segment_].offset + map[segment_].length)
        ++segment_;
    if (segment_ == map.size() || pos_ < map[segment_].offset) {
        auto hole_end = segment_ == map.size() ? e.size : map[segment_].offset;
        auto n = std::size_t(std::min<std::uint64_t>(hole_end - pos_, out.size()));
        std::memset(out.data(), 0, n);
        pos_ += n;
        return n;
    }
    auto n = std::size_t(
        std::min<std::uint64_t>(map[segment_].offset + map[segment_].length - pos_, out.size()));
    auto got = read_stored_some(out.first(n), ec);
    if (ec) return 0;
    if (got == 0) return fail(ec, errc::truncated);
    pos_ += got;
    return got;
}

} // namespace cz::tar
