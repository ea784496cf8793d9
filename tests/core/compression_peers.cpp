// gzip/zstd agreement with the real tools: what `gzip` and `zstd` write, cz reads; what cz writes,
// `gzip -dc` and `zstd -dc` read.
#include <cz/core/compression.hpp>

#include "support/support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <random>
#include <string>

namespace {

cz::byte_buffer sample() {
    std::mt19937 rng(42);
    cz::byte_buffer b(2'500'000);
    for (auto& x : b)
        x = std::byte(rng() % 4 == 0 ? rng() : 'x');
    return b;
}

struct tool {
    const char* name;
    cz::compression format;
    const char* compress_cmd;
    const char* decompress_cmd;
};

void check_agreement(const tool& t) {
    cz_test::temp_dir dir;
    auto input = sample();
    cz_test::write_file(dir / "in", cz::as_chars(input));
    // Peer -> cz, two members/frames back to back.
    cz_test::sh_ok(fmt::format("{0} {1} > {2} && {0} {1} >> {2}", t.compress_cmd,
                               cz_test::quote(dir / "in"), cz_test::quote(dir / "peer")));
    auto bytes = cz::to_buffer(cz_test::read_file(dir / "peer"));
    cz::memory_source mem(bytes);
    cz::decompressing_source dec(mem);
    std::error_code ec;
    auto out = cz::read_all(dec, std::size_t(1) << 30, ec);
    CHECK(!ec);
    CHECK(dec.format() == t.format);
    auto twice = input;
    twice.insert(twice.end(), input.begin(), input.end());
    CHECK(out == twice);

    // cz -> peer.
    cz::byte_buffer ours;
    cz::buffer_sink sink(ours);
    cz::compressing_sink enc(sink, t.format);
    enc.write(input, ec);
    enc.finish(ec);
    REQUIRE(!ec);
    cz_test::write_file(dir / "ours", cz::as_chars(ours));
    cz_test::sh_ok(fmt::format("{} {} > {}", t.decompress_cmd, cz_test::quote(dir / "ours"),
                               cz_test::quote(dir / "back")));
    CHECK(cz::to_buffer(cz_test::read_file(dir / "back")) == input);
}

} // namespace

TEST_SUITE("core") {

    TEST_CASE("cz decodes what gzip writes, and gzip decodes what cz writes") {
        if (!cz_test::have("gzip"))
            CZ_SKIP("gzip is not installed (scripts/install-deps installs it)");
        check_agreement({"gzip", cz::compression::gzip, "gzip -c -6", "gzip -dc"});
    }

    TEST_CASE("cz decodes what zstd writes, and zstd decodes what cz writes") {
        if (!cz_test::have("zstd"))
            CZ_SKIP("zstd is not installed (scripts/install-deps installs it)");
        check_agreement({"zstd", cz::compression::zstd, "zstd -q -c -3", "zstd -q -dc"});
    }

} // TEST_SUITE
