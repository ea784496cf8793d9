#include <cz/tar/header.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>

TEST_SUITE("tar") {

TEST_CASE("numeric fields read as GNU tar reads them") {
    using cz::tar::parse_number;
    CHECK(parse_number(std::string_view("0000644\0", 8)) == 0644);
    CHECK(parse_number(std::string_view("  644 \0\0", 8)) == 0644);   // leading spaces, space end
    CHECK(parse_number(std::string_view("\0\0\0\0\0\0\0\0", 8)) == 0); // all NUL: zero
    CHECK(parse_number(std::string_view("77777777777", 11)) == 077777777777); // no terminator
    CHECK_FALSE(parse_number(std::string_view("        ", 8)));            // blanks only
    CHECK_FALSE(parse_number(std::string_view("0030816\0", 8)));           // '8' is not octal
    CHECK_FALSE(parse_number(std::string_view("12x\0\0\0\0\0", 8)));

    // Base-256: 0x80 positive, 0xff negative, big-endian two's complement.
    std::string big(12, '\0');
    big[0] = char(0x80);
    big[7] = 0x02; // 2 << 32 = 8 GiB
    CHECK(parse_number(big) == (std::int64_t(2) << 32));
    std::string minus_one(12, char(0xff));
    CHECK(parse_number(minus_one) == -1);
    std::string too_big(12, '\0');
    too_big[0] = char(0x80);
    too_big[3] = 1; // needs more than 64 bits
    CHECK_FALSE(parse_number(too_big));
}

TEST_CASE("numbers written in octal or base-256 read back") {
    for (std::int64_t v : {std::int64_t(0), std::int64_t(0644), std::int64_t(077777777),
                           std::int64_t(2097152), std::int64_t(3'000'000'000),
                           std::int64_t(1) << 33, std::numeric_limits<std::int64_t>::max(),
                           std::int64_t(-1), std::int64_t(-2'000'000'000)}) {
        for (std::size_t width : {std::size_t(8), std::size_t(12)}) {
            CAPTURE(v);
            CAPTURE(width);
            std::string f(width, 'x');
            if (cz::tar::format_octal(f.data(), width, v)) {
                CHECK(cz::tar::parse_number(f) == v);
                continue;
            }
            if (cz::tar::format_base256(f.data(), width, v)) CHECK(cz::tar::parse_number(f) == v);
            else CHECK((width == 8 && (v > (std::int64_t(1) << 55) || v < -(std::int64_t(1) << 55))));
        }
    }
    std::string f(8, 'x');
    CHECK_FALSE(cz::tar::format_octal(f.data(), 8, 010000000)); // 8 digits do not fit in 7
    CHECK_FALSE(cz::tar::format_octal(f.data(), 8, -1));
}

TEST_CASE("checksums: unsigned as written, signed as old tars wrote them") {
    cz::tar::header_block h;
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.name, "caf\xc3\xa9", 5); // bytes >= 0x80 make the two sums differ
    h.typeflag = '0';
    h.set_checksum();
    CHECK(h.checksum_ok());
    CHECK(h.kind() == cz::tar::header_block::layout::v7);

    // The signed sum, as old Sun tar computed it: 0xc3 and 0xa9 count as negative.
    auto sum = std::int64_t(h.compute_checksum()) - 2 * 256;
    std::memset(h.chksum, ' ', sizeof h.chksum);
    cz::tar::format_octal(h.chksum, 7, sum);
    CHECK(h.checksum_ok());

    h.name[0] = 'C'; // any change breaks both sums
    CHECK_FALSE(h.checksum_ok());
    std::memcpy(h.chksum, "garbage", 7);
    CHECK_FALSE(h.checksum_ok());

    cz::tar::header_block z;
    std::memset(&z, 0, sizeof z);
    CHECK(z.is_zero());
    CHECK_FALSE(h.is_zero());
}

TEST_CASE("the three header layouts are told apart by their magic") {
    cz::tar::header_block h;
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.magic, "ustar", 6);
    std::memcpy(h.version, "00", 2);
    CHECK(h.kind() == cz::tar::header_block::layout::ustar);
    std::memcpy(h.magic, "ustar ", 6);
    std::memcpy(h.version, " \0", 2);
    CHECK(h.kind() == cz::tar::header_block::layout::gnu);
}

} // TEST_SUITE
