#include <cz/core/error.hpp>

#include <doctest/doctest.h>

TEST_SUITE("core") {

TEST_CASE("cz::errc is an error code enum with its own category") {
    std::error_code ec = cz::errc::truncated;
    CHECK(ec.category().name() == std::string("cz.core"));
    CHECK(ec == cz::errc::truncated);
    CHECK(ec != cz::errc::corrupt_data);
    CHECK(ec.message() == "stream ended early (truncated input)");
    // Every enumerator has its own message.
    for (int v = 1; v <= static_cast<int>(cz::errc::too_large); ++v)
        CHECK(std::error_code(v, cz::core_category()).message() != "unknown cz.core error");
}

TEST_CASE("throw_error names the input and position") {
    try {
        cz::throw_error(cz::errc::corrupt_data, "layer {}: header at offset {}", "x.tar", 1536);
        FAIL("no throw");
    } catch (const cz::system_error& e) {
        CHECK(std::string(e.what()) == "layer x.tar: header at offset 1536: corrupt data");
        CHECK(e.code() == cz::errc::corrupt_data);
    }
    CHECK_NOTHROW(cz::throw_if({}, "nothing"));
    CHECK_THROWS_AS(cz::throw_if(cz::errc::too_large, "big"), cz::system_error);
}

TEST_CASE("error_info says where and what, in one form") {
    cz::error_info none;
    CHECK(none.empty());
    CHECK(cz::to_string(none).empty());
    cz::error_info header{"tar header", 1536};
    CHECK(!header.empty());
    CHECK(cz::to_string(header) == "tar header at offset 1536");
    CHECK(cz::to_string(cz::error_info{"layer 2", std::nullopt}) == "layer 2");
    CHECK(cz::to_string(cz::error_info{"", 0}) == "at offset 0");
    CHECK(header != none);
    header.clear();
    CHECK(header == none);
}

}
