#include <cz/tar/path.hpp>

#include <doctest/doctest.h>

TEST_SUITE("tar") {

TEST_CASE("normalize_path strips ./ and /, resolves . and .., refuses or clamps escapes") {
    using cz::tar::dotdot_policy;
    using cz::tar::normalize_path;
    CHECK(normalize_path("a/b/c") == "a/b/c");
    CHECK(normalize_path("./a/b/") == "a/b");
    CHECK(normalize_path("/etc/passwd") == "etc/passwd");
    CHECK(normalize_path("//a//./b/.") == "a/b");
    CHECK(normalize_path("a/../b") == "b");
    CHECK(normalize_path("a/b/../../c") == "c");
    CHECK(normalize_path("./") == "");
    CHECK(normalize_path("/") == "");
    CHECK(normalize_path("") == "");
    CHECK(normalize_path("...") == "...");       // only exactly ".." climbs
    CHECK(normalize_path("a/..b/c") == "a/..b/c");
    CHECK(normalize_path(".wh..wh..opq") == ".wh..wh..opq");

    std::error_code ec;
    CHECK(normalize_path("../etc", dotdot_policy::refuse, ec).empty());
    CHECK(ec == cz::tar::errc::path_escapes_root);
    CHECK(normalize_path("a/../../etc", dotdot_policy::refuse, ec).empty());
    CHECK(ec == cz::tar::errc::path_escapes_root);
    CHECK_THROWS_AS(normalize_path("/../x"), cz::system_error);

    CHECK(normalize_path("../../etc/passwd", dotdot_policy::clamp, ec) == "etc/passwd");
    CHECK_FALSE(ec);
    CHECK(normalize_path("a/../../b", dotdot_policy::clamp, ec) == "b");
    CHECK(normalize_path("/..", dotdot_policy::clamp, ec) == "");
}

} // TEST_SUITE
