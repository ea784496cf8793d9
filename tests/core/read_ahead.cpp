#include <cz/core/read_ahead.hpp>

#include <cz/core/compression.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <stdexcept>

namespace {

// Hands out pieces of `data` of pseudo-random sizes (1..max_step), then fails on read number
// `fail_at` (if >= 0) with `failure`, or throws there when `throw_instead`.
struct uneven_source {
    cz::bytes_view data;
    std::size_t max_step = 1;
    int fail_at = -1;
    std::error_code failure = std::make_error_code(std::errc::io_error);
    bool throw_instead = false;
    int reads = 0;
    std::mt19937 rng{1};
    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        if (reads++ == fail_at) {
            if (throw_instead) throw std::runtime_error("read failed");
            ec = failure;
            return 0;
        }
        auto n = std::min({buf.size(), 1 + rng() % max_step, data.size()});
        std::copy_n(data.begin(), n, buf.begin());
        data = data.subspan(n);
        return n;
    }
};

// Never ends: counts how many bytes it produced.
struct endless_source {
    std::atomic<std::uint64_t> produced{0};
    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        std::fill(buf.begin(), buf.end(), std::byte{'z'});
        produced += buf.size();
        return buf.size();
    }
};

cz::byte_buffer pattern(std::size_t n) {
    cz::byte_buffer b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = std::byte(i * 7 + i / 251);
    return b;
}

// Reads `src` to the end in pieces of at most `chunk` bytes.
cz::byte_buffer drain(cz::read_ahead_source& src, std::size_t chunk, std::error_code& ec) {
    cz::byte_buffer out, piece(chunk);
    while (auto n = src.read_some(piece, ec))
        out.insert(out.end(), piece.begin(), piece.begin() + n);
    return out;
}

static_assert(cz::byte_source<cz::read_ahead_source>);

} // namespace

TEST_SUITE("core") {

    TEST_CASE(
        "read_ahead: every byte in order, whatever the ring, the source's and the reader's sizes") {
        auto data = pattern(300'000);
        for (std::size_t buffer_size :
             {std::size_t(1), std::size_t(7), std::size_t(4096), std::size_t(1) << 20}) {
            for (std::size_t buffers : {std::size_t(0), std::size_t(2), std::size_t(5)}) {
                for (std::size_t chunk : {std::size_t(1), std::size_t(1000), std::size_t(65536)}) {
                    if (buffer_size == 1 && chunk > 1)
                        continue; // 300k single-byte slots: slow, no news
                    CAPTURE(buffer_size);
                    CAPTURE(buffers);
                    CAPTURE(chunk);
                    uneven_source inner{data, 5000};
                    cz::read_ahead_source ahead(inner,
                                                {.buffer_size = buffer_size, .buffers = buffers});
                    std::error_code ec;
                    auto out = drain(ahead, chunk, ec);
                    CHECK(!ec);
                    CHECK(out == data);
                    CHECK(ahead.bytes_read() == data.size());
                    // The end stays the end.
                    std::byte one[1];
                    CHECK(ahead.read_some(one, ec) == 0);
                    CHECK(!ec);
                }
            }
        }
    }

    TEST_CASE("read_ahead: an error arrives after every byte read before it, and stays") {
        auto data = pattern(100'000);
        for (int fail_at : {0, 1, 10, 40}) {
            CAPTURE(fail_at);
            uneven_source inner{data, 3000, fail_at, make_error_code(cz::errc::corrupt_data)};
            cz::byte_buffer expected;
            {
                // What the source gives before failing, read directly.
                uneven_source direct{data, 3000, fail_at, make_error_code(cz::errc::corrupt_data)};
                std::byte piece[1 << 16];
                std::error_code ec;
                while (auto n = direct.read_some(piece, ec))
                    expected.insert(expected.end(), piece, piece + n);
                REQUIRE(ec == cz::errc::corrupt_data);
            }
            cz::read_ahead_source ahead(inner, {.buffer_size = 1 << 16, .buffers = 3});
            std::error_code ec;
            auto out = drain(ahead, 777, ec);
            CHECK(ec == cz::errc::corrupt_data);
            CHECK(out == expected);
            std::byte one[1];
            CHECK(ahead.read_some(one, ec) == 0);
            CHECK(ec == cz::errc::corrupt_data);
        }
    }

    TEST_CASE("read_ahead: an exception in the source becomes an error, not a crash") {
        auto data = pattern(10'000);
        uneven_source inner{data, 100, 5};
        inner.throw_instead = true;
        cz::read_ahead_source ahead(inner);
        std::error_code ec;
        auto out = drain(ahead, 4096, ec);
        CHECK(ec == std::errc::io_error);
        CHECK(out.size() < data.size());
    }

    TEST_CASE("read_ahead: a reader that stops early stops the thread, which stays bounded") {
        endless_source inner;
        {
            cz::read_ahead_source ahead(inner, {.buffer_size = 1000, .buffers = 3});
            std::byte piece[10];
            std::error_code ec;
            CHECK(ahead.read_some(piece, ec) == 10);
            // The producer may fill the ring (the buffer being read included), never more.
            CHECK(inner.produced.load() <= 3 * 1000);
        } // the destructor stops and joins the thread
        auto produced = inner.produced.load();
        CHECK(produced <= 3 * 1000);
        // A source never read starts no thread and touches nothing.
        endless_source untouched;
        { cz::read_ahead_source ahead(untouched); }
        CHECK(untouched.produced.load() == 0);
    }

    TEST_CASE("read_ahead: a gzip stream decoded on the thread reads as it does directly") {
        cz::byte_buffer text = pattern(2'000'000), packed;
        {
            cz::buffer_sink sink(packed);
            cz::compressing_sink enc(sink, cz::compression::gzip);
            std::error_code ec;
            enc.write(text, ec);
            enc.finish(ec);
            REQUIRE(!ec);
        }
        for (std::size_t cut : {packed.size(), packed.size() - 3, packed.size() / 2}) {
            CAPTURE(cut);
            std::error_code direct_ec, ahead_ec;
            cz::memory_source m1{std::span(packed).first(cut)};
            cz::decompressing_source d1(m1);
            auto direct = cz::read_all(d1, 1 << 30, direct_ec);
            cz::memory_source m2{std::span(packed).first(cut)};
            cz::decompressing_source d2(m2);
            cz::read_ahead_source ahead(d2);
            auto through = drain(ahead, 256 << 10, ahead_ec);
            CHECK(ahead_ec == direct_ec);
            if (cut == packed.size()) {
                CHECK(!ahead_ec);
                CHECK(through == text);
            } else {
                CHECK(ahead_ec == cz::errc::truncated);
            }
            CHECK(std::equal(through.begin(), through.end(), text.begin()));
        }
    }
}
