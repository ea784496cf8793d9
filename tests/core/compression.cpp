#include <cz/core/compression.hpp>

#include <doctest/doctest.h>

#include <zlib.h>

#include <random>

namespace {

cz::byte_buffer compress(cz::bytes_view data, cz::compression format, int level = 0) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::compressing_sink enc(sink, format, level);
    std::error_code ec;
    enc.write(data, ec);
    REQUIRE(!ec);
    enc.finish(ec);
    REQUIRE(!ec);
    return out;
}

cz::byte_buffer decompress(cz::bytes_view data, std::error_code& ec,
                           cz::decompressing_source::mode mode = cz::decompressing_source::mode::detect,
                           cz::decompression_limits limits = {}) {
    cz::memory_source mem(data);
    cz::decompressing_source dec(mem, mode, limits);
    return cz::read_all(dec, std::size_t(1) << 32, ec);
}

cz::byte_buffer random_text(std::size_t n, unsigned seed) {
    // Compressible but not trivial: words from a small alphabet.
    std::mt19937 rng(seed);
    cz::byte_buffer b(n);
    for (auto& x : b) x = std::byte("abcdefgh \n"[rng() % 10]);
    return b;
}

cz::byte_buffer concat(cz::byte_buffer a, const cz::byte_buffer& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

constexpr cz::compression formats[] = {cz::compression::gzip, cz::compression::zstd};

} // namespace

TEST_SUITE("core") {

TEST_CASE("format detection by magic") {
    CHECK(cz::detect_compression(cz::as_bytes("\x1f\x8b\x08")) == cz::compression::gzip);
    CHECK(cz::detect_compression(cz::as_bytes("\x28\xb5\x2f\xfd")) == cz::compression::zstd);
    CHECK(cz::detect_compression(cz::as_bytes("\x28\xb5\x2f")) == cz::compression::none);
    CHECK(cz::detect_compression(cz::as_bytes("ustar")) == cz::compression::none);
    CHECK(cz::detect_compression({}) == cz::compression::none);
    CHECK(cz::to_string(cz::compression::zstd) == "zstd");
}

TEST_CASE("round trips, empty and large, with the format reported") {
    for (auto format : formats) {
        CAPTURE(cz::to_string(format));
        for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(100'000), std::size_t(3'000'000)}) {
            auto input = random_text(size, unsigned(size));
            auto packed = compress(input, format);
            cz::memory_source mem(packed);
            cz::decompressing_source dec(mem);
            std::error_code ec;
            auto out = cz::read_all(dec, std::size_t(1) << 30, ec);
            CHECK(!ec);
            CHECK(out == input);
            CHECK(dec.format() == format);
            CHECK(dec.bytes_in() == packed.size());
            CHECK(dec.bytes_out() == input.size());
        }
    }
}

TEST_CASE("plain input passes through in detect mode and is refused when a format is required") {
    auto text = cz::to_buffer("not compressed at all");
    std::error_code ec;
    CHECK(decompress(text, ec) == text);
    CHECK(!ec);
    decompress(text, ec, cz::decompressing_source::mode::gzip);
    CHECK(ec == cz::errc::corrupt_data);
    decompress(text, ec, cz::decompressing_source::mode::zstd);
    CHECK(ec == cz::errc::corrupt_data);
    decompress({}, ec, cz::decompressing_source::mode::gzip);
    CHECK(ec == cz::errc::truncated);
    CHECK(decompress({}, ec).empty());
    CHECK(!ec);
}

TEST_CASE("concatenated gzip members and zstd frames decode as one stream") {
    auto a = random_text(70'000, 1), b = random_text(50'000, 2);
    for (auto format : formats) {
        CAPTURE(cz::to_string(format));
        auto packed = concat(compress(a, format), compress(b, format));
        std::error_code ec;
        CHECK(decompress(packed, ec) == concat(a, b));
        CHECK(!ec);
    }
}

TEST_CASE("gzip: trailing zero padding is ignored, trailing garbage is an error") {
    auto a = random_text(1000, 3);
    auto packed = compress(a, cz::compression::gzip);
    std::error_code ec;
    auto padded = concat(packed, cz::byte_buffer(1024, std::byte{0}));
    CHECK(decompress(padded, ec) == a);
    CHECK(!ec);
    auto garbage = concat(packed, cz::to_buffer("garbage"));
    decompress(garbage, ec);
    CHECK(ec == cz::errc::corrupt_data);
}

TEST_CASE("a stream cut at any byte is an error, never a short success") {
    auto input = random_text(20'000, 4);
    for (auto format : formats) {
        CAPTURE(cz::to_string(format));
        auto packed = compress(input, format);
        for (std::size_t cut = 1; cut < packed.size(); ++cut) {
            std::error_code ec;
            decompress(std::span(packed).first(cut), ec, format == cz::compression::gzip
                                                             ? cz::decompressing_source::mode::gzip
                                                             : cz::decompressing_source::mode::zstd);
            CAPTURE(cut);
            REQUIRE((ec == cz::errc::truncated || ec == cz::errc::corrupt_data));
        }
    }
}

TEST_CASE("flipped bytes are detected (CRC32 for gzip, frame checks for zstd)") {
    auto input = random_text(20'000, 5);
    auto packed = compress(input, cz::compression::gzip);
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        auto bad = packed;
        auto pos = 10 + rng() % (bad.size() - 10); // past the header's flags and mtime
        bad[pos] ^= std::byte(1 + rng() % 255);
        std::error_code ec;
        auto out = decompress(bad, ec);
        CHECK((ec || out == input)); // a flip inside the header's extra fields may be harmless
        if (!ec) CHECK(out == input);
    }
    // zstd without its optional checksum cannot catch every flip in literal bytes, so the
    // property is: any error is corrupt_data/truncated, and no crash.
    auto zpacked = compress(input, cz::compression::zstd);
    for (int i = 0; i < 200; ++i) {
        auto bad = zpacked;
        bad[rng() % bad.size()] ^= std::byte(1 + rng() % 255);
        std::error_code ec;
        decompress(bad, ec);
        if (ec) CHECK((ec == cz::errc::corrupt_data || ec == cz::errc::truncated));
    }
}

TEST_CASE("decompression bombs hit the output and ratio limits") {
    cz::byte_buffer zeros(64 << 20, std::byte{0});
    for (auto format : formats) {
        CAPTURE(cz::to_string(format));
        auto bomb = compress(zeros, format, 9);
        CHECK(bomb.size() < zeros.size() / 500);
        std::error_code ec;
        auto out = decompress(bomb, ec, cz::decompressing_source::mode::detect,
                              {.max_output = 10 << 20});
        CHECK(ec == cz::errc::output_limit_exceeded);
        CHECK(out.size() <= (10u << 20) + (1u << 17));

        decompress(bomb, ec, cz::decompressing_source::mode::detect, {.max_ratio = 100});
        CHECK(ec == cz::errc::ratio_limit_exceeded);

        // Exactly at the limit is fine.
        auto whole = decompress(bomb, ec, cz::decompressing_source::mode::detect,
                                {.max_output = zeros.size()});
        CHECK(!ec);
        CHECK(whole.size() == zeros.size());
    }
}

TEST_CASE(
    "gzip: optional header fields, FHCRC, and the trailer's CRC32 and ISIZE are checked") {
    auto text = random_text(50'000, 8);
    auto plain = compress(text, cz::compression::gzip);
    REQUIRE(plain.size() > 18);
    REQUIRE(std::to_integer<unsigned>(plain[3]) == 0); // zlib writes no optional fields
    // The same member with FEXTRA, FNAME, FCOMMENT and FHCRC (RFC 1952 2.3).
    cz::byte_buffer member(plain.begin(), plain.begin() + 10);
    member[3] = std::byte{0x04 | 0x08 | 0x10 | 0x02};
    for (auto c : {'\x05', '\x00', 'A', 'B', '\x01', '\x00', 'x'})
        member.push_back(std::byte(c));
    for (char c : std::string_view("name.tar\0a comment\0", 19))
        member.push_back(std::byte(c));
    auto hcrc = crc32(0, reinterpret_cast<const Bytef*>(member.data()), uInt(member.size()));
    member.push_back(std::byte(hcrc & 0xff));
    member.push_back(std::byte((hcrc >> 8) & 0xff));
    std::size_t header_size = member.size();
    member.insert(member.end(), plain.begin() + 10, plain.end());
    std::error_code ec;
    CHECK(decompress(member, ec) == text);
    CHECK(!ec);

    auto expect_corrupt = [&](cz::byte_buffer bad, const char* what) {
        CAPTURE(what);
        decompress(bad, ec);
        CHECK(ec == cz::errc::corrupt_data);
    };
    auto bad = member;
    bad[header_size - 1] ^= std::byte{1};
    expect_corrupt(bad, "header CRC16");
    bad = member;
    bad[3] |= std::byte{0x20};
    expect_corrupt(bad, "reserved flag");
    bad = member;
    bad[2] = std::byte{7};
    expect_corrupt(bad, "method other than deflate");
    bad = plain;
    bad[bad.size() - 8] ^= std::byte{0x10};
    expect_corrupt(bad, "trailer CRC32");
    bad = plain;
    bad[bad.size() - 4] ^= std::byte{0x01};
    expect_corrupt(bad, "trailer ISIZE");
    // A good member followed by one with a bad trailer fails as a whole.
    expect_corrupt(concat(member, bad), "second member's ISIZE");
}

TEST_CASE("gzip: many members of assorted sizes, empty ones and padding, in any read size") {
    cz::byte_buffer packed, expected;
    std::mt19937 rng(9);
    for (std::size_t size : {0, 1, 17, 1000, 65'536, 70'001, 0, 300'000, 5}) {
        auto part = random_text(size, unsigned(size) + 11);
        auto member = compress(part, cz::compression::gzip, 1 + int(rng() % 9));
        packed = concat(packed, member);
        expected = concat(expected, part);
    }
    packed = concat(packed, cz::byte_buffer(700, std::byte{0}));
    for (std::size_t chunk :
         {std::size_t(1), std::size_t(13), std::size_t(4096), std::size_t(1) << 20}) {
        CAPTURE(chunk);
        cz::memory_source mem(packed);
        cz::decompressing_source dec(mem);
        cz::byte_buffer out, piece(chunk);
        std::error_code ec;
        while (auto n = dec.read_some(piece, ec))
            out.insert(out.end(), piece.begin(), piece.begin() + n);
        CHECK(!ec);
        CHECK(out == expected);
        CHECK(dec.bytes_in() == packed.size());
    }
}

TEST_CASE("small output buffers drain everything the decoder holds") {
    auto input = random_text(300'000, 6);
    for (auto format : formats) {
        auto packed = compress(input, format);
        cz::memory_source mem(packed);
        cz::decompressing_source dec(mem);
        cz::byte_buffer out;
        std::array<std::byte, 7> tiny;
        std::error_code ec;
        while (auto n = dec.read_some(tiny, ec)) out.insert(out.end(), tiny.begin(), tiny.begin() + n);
        CHECK(!ec);
        CHECK(out == input);
    }
}

TEST_CASE("writing after finish is refused") {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::compressing_sink enc(sink, cz::compression::zstd);
    std::error_code ec;
    enc.finish(ec);
    CHECK(!ec);
    enc.write(cz::as_bytes("late"), ec);
    CHECK(ec == cz::errc::invalid_argument);
}

}
