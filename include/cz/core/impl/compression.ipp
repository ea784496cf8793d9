// Out-of-line definitions for cz/core/compression.hpp.
//
// gzip (RFC 1952) primer: a member is a 10-byte header (1f 8b, method 8 = deflate, flags, mtime,
// xfl, os), optional fields named by the flags (FEXTRA, FNAME, FCOMMENT, FHCRC: a CRC16 of the
// header), raw deflate data, and an 8-byte trailer: CRC32 and ISIZE (length mod 2^32) of the
// member's output. A file may hold several members back to back; `gzip -dc` decodes them all
// and ignores trailing zero bytes (tape padding), which is what we do too.
//
// Decoding is Intel ISA-L's isal_inflate (2-3x zlib's speed). With crc_flag = ISAL_GZIP it parses
// the header (checking FHCRC), inflates, and checks CRC32 and ISIZE; block_state reaches
// ISAL_BLOCK_FINISH once the trailer is verified, with next_in just past the member. It takes all
// the input it is given into its own bit buffer and keeps output it had no room for (a call with
// no input may still produce bytes), so "no output and no input left at end of stream" means the
// member is truncated. Errors are negative return values (bad block, symbol, distance, wrapper,
// method, checksum). Encoding stays zlib's deflate.
//
// zstd primer: ZSTD_decompressStream() returns 0 when a frame is fully decoded and flushed, a
// positive size hint while a frame is in progress, or an error code. Concatenated and skippable
// frames are handled by the library itself.
#pragma once

#include <cz/core/compression.hpp>

#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>

namespace cz {

CZ_DECL std::string_view to_string(compression c) noexcept {
    switch (c) {
    case compression::none: return "none";
    case compression::gzip: return "gzip";
    case compression::zstd: return "zstd";
    }
    return "unknown";
}

CZ_DECL compression detect_compression(bytes_view head) noexcept {
    auto at = [&](std::size_t i) { return std::to_integer<unsigned>(head[i]); };
    if (head.size() >= 2 && at(0) == 0x1f && at(1) == 0x8b) return compression::gzip;
    if (head.size() >= 4 && at(0) == 0x28 && at(1) == 0xb5 && at(2) == 0x2f && at(3) == 0xfd)
        return compression::zstd;
    return compression::none;
}

// ---------------------------------------------------------------------------------------------
// Decoder

struct decompressing_source::state {
    source_ref inner;
    mode requested;
    decompression_limits limits;
    compression format = compression::none;
    bool started = false;    // format detected, decoder set up
    bool inner_eof = false;  // inner returned end of stream
    bool in_frame = false;   // inside a gzip member or zstd frame
    bool finished = false;   // end of stream reported
    std::array<std::byte, 128 * 1024> in{};
    std::size_t in_pos = 0, in_len = 0;
    std::uint64_t total_in = 0, total_out = 0;
    std::unique_ptr<inflate_state> inflater; // ISA-L's state: ~100 KiB, on the heap
    ZSTD_DStream* zd = nullptr;

    explicit state(source_ref src, mode m, decompression_limits l)
        : inner(src), requested(m), limits(l) {}
    ~state() {
        if (zd) ZSTD_freeDStream(zd);
    }

    std::size_t available() const noexcept { return in_len - in_pos; }

    // Reads more compressed input after what is buffered. Sets inner_eof at the end.
    void refill(std::error_code& ec) {
        if (in_pos > 0) {
            std::copy(in.begin() + std::ptrdiff_t(in_pos), in.begin() + std::ptrdiff_t(in_len),
                      in.begin());
            in_len -= in_pos;
            in_pos = 0;
        }
        if (in_len == in.size() || inner_eof) return;
        auto n = inner.read_some(std::span(in).subspan(in_len), ec);
        if (ec) return;
        if (n == 0) inner_eof = true;
        in_len += n;
    }

    void consume(std::size_t n) noexcept {
        in_pos += n;
        total_in += n;
    }

    void start(std::error_code& ec) {
        while (available() < 4 && !inner_eof) {
            refill(ec);
            if (ec) return;
        }
        auto detected = detect_compression(std::span(in).subspan(in_pos, available()));
        switch (requested) {
        case mode::detect: format = detected; break;
        case mode::none: format = compression::none; break;
        case mode::gzip:
        case mode::zstd:
            format = requested == mode::gzip ? compression::gzip : compression::zstd;
            if (detected != format) {
                ec = make_error_code(available() < 4 && inner_eof ? errc::truncated
                                                                  : errc::corrupt_data);
                return;
            }
            break;
        }
        if (format == compression::gzip) {
            inflater = std::make_unique<inflate_state>();
            isal_inflate_init(inflater.get());
        } else if (format == compression::zstd) {
            zd = ZSTD_createDStream();
            if (!zd || ZSTD_isError(ZSTD_initDStream(zd))) {
                ec = std::make_error_code(std::errc::not_enough_memory);
                return;
            }
        }
        started = true;
    }

    // Checks the limits after `n` more output bytes.
    bool account(std::size_t n, std::error_code& ec) {
        total_out += n;
        if (total_out > limits.max_output) {
            ec = make_error_code(errc::output_limit_exceeded);
            return false;
        }
        if (total_out > limits.ratio_grace &&
            total_out / std::max<std::uint64_t>(total_in, 1) > limits.max_ratio) {
            ec = make_error_code(errc::ratio_limit_exceeded);
            return false;
        }
        return true;
    }

    // After a gzip member ends: the rest of the stream must be another member or zero padding.
    // Returns true when only zero padding (or nothing) remains.
    bool only_padding_left(std::error_code& ec) {
        for (;;) {
            while (available() > 0) {
                if (in[in_pos] != std::byte{0}) return false;
                consume(1);
            }
            if (inner_eof) return true;
            refill(ec);
            if (ec) return false;
        }
    }

    std::size_t read_plain(mutable_bytes buf, std::error_code& ec) {
        if (available() == 0) {
            if (inner_eof) return 0;
            // Nothing buffered: read straight into the caller's buffer.
            auto n = inner.read_some(buf, ec);
            if (n == 0 && !ec) inner_eof = true;
            total_in += n;
            return n;
        }
        auto n = std::min(buf.size(), available());
        std::copy_n(in.begin() + std::ptrdiff_t(in_pos), n, buf.begin());
        consume(n);
        return n;
    }

    // One decoding step's outcome, common to gzip and zstd.
    struct step {
        std::size_t consumed = 0, produced = 0;
        bool frame_end = false;
    };

    // Drives `decode` (one gzip or zstd step) until it produces output or the stream ends.
    // The decoder is also run with no input left: it may still hold output from a previous call
    // whose output buffer was full.
    template <class Decode>
    std::size_t read_frames(mutable_bytes buf, std::error_code& ec, Decode decode) {
        for (;;) {
            if (!in_frame) {
                // Between frames: another frame, zero padding, or garbage.
                if (available() < 4 && !inner_eof) {
                    refill(ec);
                    if (ec) return 0;
                    continue;
                }
                if (available() == 0) return 0;
                // zstd checks its own frame magic, and also accepts skippable frames.
                if (format == compression::gzip &&
                    detect_compression(std::span(in).subspan(in_pos, available())) != format) {
                    if (only_padding_left(ec)) return 0;
                    if (!ec) ec = make_error_code(errc::corrupt_data);
                    return 0;
                }
                if (format == compression::gzip && !start_gzip_member(ec)) return 0;
                in_frame = true;
            }
            if (available() == 0 && !inner_eof) {
                refill(ec);
                if (ec) return 0;
                continue;
            }
            step st = decode(buf, ec);
            if (ec) return 0;
            consume(st.consumed);
            if (st.frame_end) in_frame = false;
            if (st.produced > 0) return account(st.produced, ec) ? st.produced : 0;
            if (st.frame_end) continue;
            if (st.consumed == 0) {
                // No progress: the decoder needs input we do not have.
                if (inner_eof) {
                    ec = make_error_code(errc::truncated);
                    return 0;
                }
                if (available() == in.size()) { // cannot happen with ISA-L/zstd; never spin
                    ec = make_error_code(errc::corrupt_data);
                    return 0;
                }
                refill(ec);
                if (ec) return 0;
            }
        }
    }

    // Sets the inflater up for the member starting at in_pos (its magic is checked).
    bool start_gzip_member(std::error_code& ec) {
        // Flag bits 5-7 are reserved: gzip and zlib refuse a member that sets them, and ISA-L
        // does not look, so check here (the flags byte is at offset 3).
        constexpr unsigned reserved_flags = 0xe0;
        if (available() > 3 && (std::to_integer<unsigned>(in[in_pos + 3]) & reserved_flags)) {
            ec = make_error_code(errc::corrupt_data);
            return false;
        }
        isal_inflate_reset(inflater.get());
        inflater->crc_flag = ISAL_GZIP; // parse the header, check FHCRC, CRC32 and ISIZE
        return true;
    }

    step gzip_step(mutable_bytes buf, std::error_code& ec) {
        inflate_state& z = *inflater;
        // SAFETY: next_in/next_out point into our input buffer and the caller's buffer with the
        // matching sizes (both below 2^32); ISA-L never reads or writes past avail_in/avail_out.
        z.next_in = reinterpret_cast<std::uint8_t*>(in.data() + in_pos);
        z.avail_in = static_cast<std::uint32_t>(available());
        z.next_out = reinterpret_cast<std::uint8_t*>(buf.data());
        z.avail_out = static_cast<std::uint32_t>(std::min<std::size_t>(buf.size(), 1u << 30));
        std::uint32_t out_before = z.avail_out;
        int rc = isal_inflate(&z);
        if (rc != ISAL_DECOMP_OK) { // a bad block, symbol, distance, header, method or checksum
            ec = make_error_code(errc::corrupt_data);
            return {};
        }
        return {available() - z.avail_in, out_before - z.avail_out,
                z.block_state == ISAL_BLOCK_FINISH};
    }

    step zstd_step(mutable_bytes buf, std::error_code& ec) {
        ZSTD_inBuffer input{in.data() + in_pos, available(), 0};
        ZSTD_outBuffer output{buf.data(), buf.size(), 0};
        std::size_t rc = ZSTD_decompressStream(zd, &output, &input);
        if (ZSTD_isError(rc)) {
            ec = make_error_code(errc::corrupt_data);
            return {};
        }
        return {input.pos, output.pos, rc == 0};
    }
};

CZ_DECL decompressing_source::decompressing_source(source_ref inner, mode m,
                                                   decompression_limits limits)
    : s_(std::make_unique<state>(inner, m, limits)) {}
CZ_DECL decompressing_source::~decompressing_source() = default;
CZ_DECL decompressing_source::decompressing_source(decompressing_source&&) noexcept = default;
CZ_DECL decompressing_source&
decompressing_source::operator=(decompressing_source&&) noexcept = default;

CZ_DECL std::size_t decompressing_source::read_some(mutable_bytes buf, std::error_code& ec) {
    ec.clear();
    if (buf.empty() || s_->finished) return 0;
    if (!s_->started) {
        s_->start(ec);
        if (ec) return 0;
    }
    std::size_t n = 0;
    switch (s_->format) {
    case compression::none: n = s_->read_plain(buf, ec); break;
    case compression::gzip:
        n = s_->read_frames(buf, ec, [&](mutable_bytes b, std::error_code& e) {
            return s_->gzip_step(b, e);
        });
        break;
    case compression::zstd:
        n = s_->read_frames(buf, ec, [&](mutable_bytes b, std::error_code& e) {
            return s_->zstd_step(b, e);
        });
        break;
    }
    if (n == 0 && !ec) s_->finished = true;
    return n;
}

CZ_DECL compression decompressing_source::format() const noexcept { return s_->format; }
CZ_DECL std::uint64_t decompressing_source::bytes_in() const noexcept { return s_->total_in; }
CZ_DECL std::uint64_t decompressing_source::bytes_out() const noexcept { return s_->total_out; }

// ---------------------------------------------------------------------------------------------
// Encoder

struct compressing_sink::state {
    sink_ref inner;
    compression format;
    z_stream zs{};
    bool zs_init = false;
    ZSTD_CStream* zc = nullptr;
    bool finished = false;
    std::array<std::byte, 128 * 1024> out{};

    state(sink_ref sink, compression f) : inner(sink), format(f) {}
    ~state() {
        if (zs_init) deflateEnd(&zs);
        if (zc) ZSTD_freeCStream(zc);
    }

    // Runs the encoder over `data` (flush: finish the stream) and forwards its output.
    void pump(bytes_view data, bool flush, std::error_code& ec) {
        if (format == compression::none) {
            if (!data.empty()) inner.write(data, ec);
            return;
        }
        if (format == compression::gzip) {
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(data.data()));
            zs.avail_in = static_cast<uInt>(data.size());
            for (;;) {
                zs.next_out = reinterpret_cast<Bytef*>(out.data());
                zs.avail_out = static_cast<uInt>(out.size());
                int rc = deflate(&zs, flush ? Z_FINISH : Z_NO_FLUSH);
                if (rc == Z_STREAM_ERROR) {
                    ec = make_error_code(errc::corrupt_data);
                    return;
                }
                std::size_t n = out.size() - zs.avail_out;
                if (n) inner.write(std::span(out).first(n), ec);
                if (ec) return;
                if (flush ? rc == Z_STREAM_END : (zs.avail_in == 0 && zs.avail_out != 0)) return;
            }
        }
        ZSTD_inBuffer input{data.data(), data.size(), 0};
        for (;;) {
            ZSTD_outBuffer output{out.data(), out.size(), 0};
            std::size_t rc = ZSTD_compressStream2(zc, &output, &input,
                                                  flush ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(rc)) {
                ec = make_error_code(errc::corrupt_data);
                return;
            }
            if (output.pos) inner.write(std::span(out).first(output.pos), ec);
            if (ec) return;
            if (flush ? rc == 0 : input.pos == input.size) return;
        }
    }
};

CZ_DECL compressing_sink::compressing_sink(sink_ref inner, compression format, int level)
    : s_(std::make_unique<state>(inner, format)) {
    if (format == compression::gzip) {
        int lvl = level == 0 ? 6 : std::clamp(level, 1, 9);
        if (deflateInit2(&s_->zs, lvl, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
        s_->zs_init = true;
    } else if (format == compression::zstd) {
        s_->zc = ZSTD_createCStream();
        if (!s_->zc) throw std::bad_alloc();
        ZSTD_CCtx_setParameter(s_->zc, ZSTD_c_compressionLevel,
                               level == 0 ? 3 : std::clamp(level, 1, 19));
    }
}
CZ_DECL compressing_sink::~compressing_sink() = default;
CZ_DECL compressing_sink::compressing_sink(compressing_sink&&) noexcept = default;
CZ_DECL compressing_sink& compressing_sink::operator=(compressing_sink&&) noexcept = default;

CZ_DECL void compressing_sink::write(bytes_view data, std::error_code& ec) {
    ec.clear();
    if (s_->finished) {
        ec = make_error_code(errc::invalid_argument);
        return;
    }
    // zlib counts input in uInt: feed very large spans in pieces.
    while (!data.empty() && !ec) {
        auto piece = data.first(std::min<std::size_t>(data.size(), 1u << 30));
        s_->pump(piece, false, ec);
        data = data.subspan(piece.size());
    }
}

CZ_DECL void compressing_sink::finish(std::error_code& ec) {
    ec.clear();
    if (s_->finished) return;
    s_->pump({}, true, ec);
    if (!ec) s_->inner.finish(ec);
    s_->finished = true;
}

} // namespace cz
