#include <cz/core/sha256.hpp>

#include <doctest/doctest.h>

#include <fmt/format.h>

TEST_SUITE("core") {

TEST_CASE("sha256 of known vectors (FIPS 180-2)") {
    CHECK(cz::sha256({}).str() ==
          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(cz::sha256(cz::as_bytes("abc")).hex() ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // Streaming in uneven pieces equals one shot.
    std::string million(1'000'000, 'a');
    cz::sha256_hasher h;
    for (std::size_t i = 0; i < million.size(); i += 777)
        h.update(cz::as_bytes(std::string_view(million).substr(i, 777)));
    CHECK(h.final().hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // final() restarts the hasher.
    CHECK(h.final() == cz::sha256({}));
}

TEST_CASE("digest strings parse, print and compare") {
    auto text = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    auto d = cz::digest::parse(text);
    CHECK(d.str() == text);
    CHECK(fmt::format("{}", d) == text);
    CHECK(d == cz::sha256(cz::as_bytes("abc")));
    CHECK(d != cz::sha256(cz::as_bytes("abd")));

    std::error_code ec;
    for (const char* bad : {"", "sha256:", "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
                            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adX",
                            "sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}) {
        cz::digest::parse(bad, ec);
        CHECK_MESSAGE(ec == cz::errc::invalid_digest, bad);
    }
    CHECK_THROWS_AS(cz::digest::parse("nope"), cz::system_error);
}

TEST_CASE("hashing_source hashes what passes through") {
    cz::memory_source mem(cz::as_bytes("abc"));
    cz::hashing_source hs(mem);
    cz::null_sink sink;
    std::error_code ec;
    cz::copy(hs, sink, ec);
    CHECK(!ec);
    CHECK(hs.count() == 3);
    CHECK(hs.final() == cz::sha256(cz::as_bytes("abc")));
}

}
