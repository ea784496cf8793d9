// cz/core/compression.hpp — streaming gzip and zstd, as byte sources (decode) and sinks (encode).
//
// Image layers arrive as gzip or zstd tar streams from registries we do not trust. Decoders here:
//  - detect the format by magic (gzip 1f 8b, zstd 28 b5 2f fd; anything else passes through as
//    plain bytes when auto-detection is asked for);
//  - decode concatenated gzip members and zstd frames as one stream, as `gzip -dc` and
//    `zstd -dc` do (zstd skippable frames are skipped);
//  - report a stream that ends mid-member/mid-frame as errc::truncated and bad bytes as
//    errc::corrupt_data — never a silent short read;
//  - enforce decompression_limits, so a small hostile input cannot expand into terabytes.
//
// A piece of cz/core with libraries of its own: Meson dependency('cz-core-compression') (ISA-L,
// zlib, zstd); with CZ_SEPARATE_COMPILATION, one .cpp compiles cz/core/compression_src.hpp.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/error.hpp>
#include <cz/core/stream.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>

namespace cz {

enum class compression { none, gzip, zstd };

// "none", "gzip", "zstd"
CZ_DECL std::string_view to_string(compression c) noexcept;

// Which format a stream starting with `head` is in. Needs at most 4 bytes; fewer bytes than a
// magic number reads as `none`.
CZ_DECL compression detect_compression(bytes_view head) noexcept;

// Guards against decompression bombs. Both are checked as output is produced.
struct decompression_limits {
    // Most bytes the decoder may produce in total.
    std::uint64_t max_output = std::numeric_limits<std::uint64_t>::max();
    // Most output bytes per input byte, checked once output passes `ratio_grace` bytes (tiny
    // inputs of zeros legitimately have huge ratios). gzip's own maximum is about 1032:1.
    std::uint64_t max_ratio = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t ratio_grace = 1 << 20;
};

// Decodes a compressed stream read from `inner` (which must outlive the decoder). A byte_source.
// The constructor does no I/O; the format is read on the first read_some.
class decompressing_source {
public:
    // `format`: what the input must be; `std::nullopt`-like auto detection is `detect`.
    enum class mode { detect, gzip, zstd, none };

    CZ_DECL explicit decompressing_source(source_ref inner, mode m = mode::detect,
                                          decompression_limits limits = {});
    CZ_DECL ~decompressing_source();
    decompressing_source(decompressing_source&&) noexcept;
    decompressing_source& operator=(decompressing_source&&) noexcept;

    CZ_DECL std::size_t read_some(mutable_bytes buf, std::error_code& ec);

    // The format found (valid after the first read_some).
    CZ_DECL compression format() const noexcept;
    // Compressed bytes consumed from `inner` and decompressed bytes produced so far.
    CZ_DECL std::uint64_t bytes_in() const noexcept;
    CZ_DECL std::uint64_t bytes_out() const noexcept;

private:
    struct state;
    std::unique_ptr<state> s_;
};

// Compresses everything written to it into `inner` (which must outlive the encoder). finish()
// writes the trailer and must be called; an encoder destroyed before finish() leaves `inner`
// with an incomplete stream, which readers reject as truncated.
class compressing_sink {
public:
    // level: gzip 1..9 (default 6), zstd 1..19 (default 3); 0 picks the default.
    CZ_DECL compressing_sink(sink_ref inner, compression format, int level = 0);
    CZ_DECL ~compressing_sink();
    compressing_sink(compressing_sink&&) noexcept;
    compressing_sink& operator=(compressing_sink&&) noexcept;

    CZ_DECL void write(bytes_view data, std::error_code& ec);
    CZ_DECL void finish(std::error_code& ec);

private:
    struct state;
    std::unique_ptr<state> s_;
};

} // namespace cz

#if CZ_HEADER_ONLY
#include <cz/core/impl/compression.ipp>
#endif
