// cz/core's sha256 piece as a program compiled with CZ_SEPARATE_COMPILATION uses it: the
// out-of-line code comes from core_sha256_src.cpp and the program links with
// dependency('cz-core-sha256') alone (BoringSSL's libcrypto; no codec).
#include <cz/core/sha256.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <fmt/format.h>

#include <string>

TEST_SUITE("separate compilation: core sha256") {

    TEST_CASE("digests of known inputs, streamed and one-shot") {
        // FIPS 180-2's example: sha256("abc").
        const auto abc = cz::digest::parse(
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(cz::sha256(cz::as_bytes("abc")) == abc);

        cz::memory_source mem(cz::as_bytes("abc"));
        cz::hashing_source hashed(mem);
        cz::null_sink sink;
        std::error_code ec;
        cz::copy(hashed, sink, ec);
        REQUIRE(!ec);
        auto d = hashed.final();
        CHECK(d == abc);
        CHECK(fmt::format("{}", d) == abc.str());
        CHECK(d.hex() == abc.str().substr(7));

        cz::sha256_hasher h;
        h.update(cz::as_bytes("a"));
        cz::sha256_hasher copy = h; // the state is plain bytes: a copy goes on independently
        copy.update(cz::as_bytes("bc"));
        CHECK(copy.final() == abc);
        CHECK(h.final() == cz::sha256(cz::as_bytes("a")));
    }

    TEST_CASE("bad digest strings are errors") {
        std::error_code ec;
        cz::digest::parse("sha256:BA7816BF", ec);
        CHECK(ec == cz::errc::invalid_digest);
        CHECK_THROWS_AS(cz::digest::parse("md5:00"), cz::system_error);
    }

} // TEST_SUITE
