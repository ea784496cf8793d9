// cz::parse_size: the one size grammar of cz (see cz/core/size.hpp), case by case.
#include <cz/core/size.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace {

std::uint64_t parsed(std::string_view text) {
    std::error_code ec;
    auto n = cz::parse_size(text, ec);
    REQUIRE_MESSAGE(!ec, text, ": ", ec.message());
    return n;
}

std::error_code refused(std::string_view text) {
    std::error_code ec;
    auto n = cz::parse_size(text, ec);
    CHECK_MESSAGE(n == 0, text);
    return ec;
}

} // namespace

TEST_SUITE("core") {

TEST_CASE("parse_size: plain numbers are bytes, units are binary, in either case") {
    CHECK(parsed("0") == 0);
    CHECK(parsed("512") == 512);
    CHECK(parsed("512B") == 512);
    CHECK(parsed("64K") == 64 * 1024);
    CHECK(parsed("64k") == 64 * 1024);
    CHECK(parsed("64KiB") == 64 * 1024);
    CHECK(parsed("64kib") == 64 * 1024);
    CHECK(parsed("64KB") == 64 * 1024);
    CHECK(parsed("10M") == 10ull << 20);
    CHECK(parsed("2G") == 2ull << 30);
    CHECK(parsed("2GiB") == 2ull << 30);
    CHECK(parsed("3T") == 3ull << 40);
    CHECK(parsed("007") == 7);
}

TEST_CASE("parse_size: fractions round down to a whole byte") {
    CHECK(parsed("1.5K") == 1536);
    CHECK(parsed("1.5G") == (3ull << 30) / 2);
    CHECK(parsed("0.5") == 0);
    CHECK(parsed("1.999") == 1);
    CHECK(parsed("0.001K") == 1);              // 1.024 bytes
    CHECK(parsed("0.1M") == 104857);           // 104857.6
    CHECK(parsed("1.0000000000000000000001T") == 1ull << 40);
}

TEST_CASE("parse_size: the largest value fits, one more does not") {
    CHECK(parsed("18446744073709551615") == UINT64_MAX);
    CHECK(refused("18446744073709551616") == cz::errc::too_large);
    CHECK(parsed("16777215T") == 16777215ull << 40);
    CHECK(refused("16777216T") == cz::errc::too_large);
    CHECK(parsed("16777215.9999999T") == 18446744073709441664ull); // 2^64 - 109952
    CHECK(refused("99999999999999999999999999") == cz::errc::too_large);
}

TEST_CASE("parse_size: anything else is refused") {
    for (auto bad : {"", " 1", "1 ", "-1", "+1", "1e6", "1.", ".5", "K", "1X", "1KK", "1Ki",
                     "1iB", "1KiBs", "1,5G", "0x10", "1.5.5", "1BB"}) {
        CAPTURE(bad);
        CHECK(refused(bad) == cz::errc::invalid_argument);
    }
}

TEST_CASE("parse_size: a number without a unit counts the caller's unit") {
    std::error_code ec;
    CHECK(cz::parse_size("512", ec, 1 << 20) == 512ull << 20);
    CHECK(cz::parse_size("0.5", ec, 1 << 20) == 512ull << 10);
    CHECK(cz::parse_size("2G", ec, 1 << 20) == 2ull << 30); // a unit overrides it
    CHECK(!ec);
    cz::parse_size("16777216", ec, 1ull << 40);
    CHECK(ec == cz::errc::too_large);
    cz::parse_size("1", ec, 3); // not a power of two: the caller's mistake
    CHECK(ec == cz::errc::invalid_argument);
}

TEST_CASE("parse_size: the throwing form names the text") {
    try {
        cz::parse_size("12Q");
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("12Q") != std::string::npos);
    }
}

} // TEST_SUITE
