// cz/core's compression piece as a program compiled with CZ_SEPARATE_COMPILATION uses it: the
// out-of-line code comes from core_compression_src.cpp and the program links with
// dependency('cz-core-compression') alone (ISA-L, zlib, zstd; no libcrypto). Encoders and
// decoders are moved mid-stream, so their out-of-line moves must be compiled there too.
#include <cz/core/compression.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <array>
#include <string>

namespace {

std::string sample_text() {
    std::string s;
    for (int i = 0; i < 20000; ++i)
        s += "line " + std::to_string(i * 7919 % 1000) + "\n";
    return s;
}

// Compresses `text` in two writes, moving the encoder between them.
cz::byte_buffer pack(const std::string& text, cz::compression format) {
    cz::byte_buffer packed;
    cz::buffer_sink sink(packed);
    std::error_code ec;
    auto half = cz::as_bytes(text).first(text.size() / 2);
    cz::compressing_sink first(sink, format);
    first.write(half, ec);
    REQUIRE(!ec);
    cz::compressing_sink second(std::move(first));
    second.write(cz::as_bytes(text).subspan(half.size()), ec);
    REQUIRE(!ec);
    cz::compressing_sink assigned(sink, cz::compression::none);
    assigned = std::move(second);
    assigned.finish(ec);
    REQUIRE(!ec);
    return packed;
}

} // namespace

TEST_SUITE("separate compilation: core compression") {

    TEST_CASE("gzip and zstd round trips through moved encoders and decoders") {
        auto text = sample_text();
        for (auto format : {cz::compression::gzip, cz::compression::zstd}) {
            CAPTURE(cz::to_string(format));
            auto packed = pack(text, format);
            CHECK(packed.size() < text.size() / 4);
            CHECK(cz::detect_compression(packed) == format);

            cz::memory_source mem(packed);
            cz::decompressing_source dec(mem);
            std::array<std::byte, 1000> head{};
            std::error_code ec;
            CHECK(cz::read_full(dec, head, ec) == head.size());
            CHECK(dec.format() == format);
            cz::decompressing_source moved(std::move(dec));
            cz::byte_buffer rest = cz::read_all(moved, 1 << 20, ec);
            REQUIRE(!ec);
            CHECK(moved.bytes_out() == text.size());
            CHECK(moved.bytes_in() == packed.size());
            CHECK(cz::to_string(head) + cz::to_string(rest) == text);
        }
    }

    TEST_CASE("limits and damage are errors, not short reads") {
        auto text = sample_text();
        auto packed = pack(text, cz::compression::gzip);
        std::error_code ec;
        cz::memory_source mem(packed);
        cz::decompressing_source bounded(mem, cz::decompressing_source::mode::gzip,
                                         {.max_output = 4096});
        cz::null_sink out;
        cz::copy(bounded, out, ec);
        CHECK(ec == cz::errc::output_limit_exceeded);

        cz::memory_source cut(cz::bytes_view(packed).first(packed.size() / 2));
        cz::decompressing_source truncated(cut);
        cz::copy(truncated, out, ec);
        CHECK(ec == cz::errc::truncated);
    }

} // TEST_SUITE
