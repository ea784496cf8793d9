#include <cz/core/stream.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

namespace {

// A source that hands out at most `step` bytes per read and can fail on the Nth read.
struct trickle_source {
    cz::bytes_view data;
    std::size_t step = 1;
    int fail_at = -1;
    int reads = 0;
    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        if (reads++ == fail_at) {
            ec = std::make_error_code(std::errc::io_error);
            return 0;
        }
        auto n = std::min({buf.size(), step, data.size()});
        std::copy_n(data.begin(), n, buf.begin());
        data = data.subspan(n);
        return n;
    }
};

static_assert(cz::byte_source<cz::memory_source>);
static_assert(cz::byte_source<cz::fd_source>);
static_assert(cz::byte_source<trickle_source>);
static_assert(cz::byte_sink<cz::buffer_sink>);
static_assert(cz::byte_sink<cz::fd_sink>);
static_assert(cz::byte_sink<cz::null_sink>);
static_assert(!cz::byte_source<cz::buffer_sink>);

} // namespace

TEST_SUITE("core") {

TEST_CASE("read_full gathers short reads and stops at the end") {
    auto text = cz::as_bytes("hello, world");
    trickle_source src{text, 3};
    std::array<std::byte, 5> five;
    std::error_code ec;
    CHECK(cz::read_full(src, five, ec) == 5);
    CHECK(!ec);
    CHECK(cz::as_chars(five) == "hello");
    std::array<std::byte, 64> rest;
    CHECK(cz::read_full(src, rest, ec) == 7);
    CHECK(!ec);
    CHECK(cz::as_chars(std::span(rest).first(7)) == ", world");
}

TEST_CASE("copy and read_all report the source's error at every position") {
    auto text = cz::as_bytes("0123456789");
    for (int fail = 0; fail < 10; ++fail) {
        trickle_source src{text, 1, fail};
        cz::null_sink sink;
        std::error_code ec;
        auto n = cz::copy(src, sink, ec);
        CHECK(ec == std::errc::io_error);
        CHECK(n == static_cast<std::uint64_t>(fail));
    }
    trickle_source ok{text, 4};
    std::error_code ec;
    auto all = cz::read_all(ok, 100, ec);
    CHECK(!ec);
    CHECK(cz::as_chars(all) == "0123456789");

    trickle_source big{text, 4};
    cz::read_all(big, 9, ec);
    CHECK(ec == cz::errc::too_large);
}

TEST_CASE("fd adapters move bytes through a pipe") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    cz::fd_sink out(fds[1]);
    std::error_code ec;
    out.write(cz::as_bytes("through a pipe"), ec);
    CHECK(!ec);
    ::close(fds[1]);
    cz::fd_source in(fds[0]);
    auto got = cz::read_all(in, 1000, ec);
    ::close(fds[0]);
    CHECK(!ec);
    CHECK(cz::as_chars(got) == "through a pipe");

    cz::fd_source bad(-1);
    std::array<std::byte, 4> b;
    CHECK(bad.read_some(b, ec) == 0);
    CHECK(ec == std::errc::bad_file_descriptor);
}

TEST_CASE("little- and big-endian loads and stores") {
    std::array<std::byte, 8> b{};
    cz::store_le<std::uint32_t>(b.data(), 0x11223344u);
    CHECK(std::to_integer<int>(b[0]) == 0x44);
    CHECK(cz::load_le<std::uint32_t>(b.data()) == 0x11223344u);
    CHECK(cz::load_be<std::uint32_t>(b.data()) == 0x44332211u);
    cz::store_be<std::uint64_t>(b.data(), 0x0102030405060708ull);
    CHECK(std::to_integer<int>(b[0]) == 1);
    CHECK(cz::load_be<std::uint64_t>(b.data()) == 0x0102030405060708ull);
    CHECK(cz::load_le<std::uint16_t>(b.data()) == 0x0201);
}

}

TEST_SUITE("core") {

TEST_CASE("fd adapters retry EINTR and report any other failure, at every call") {
    // Counts the syscalls one pipe round trip makes, then fails each one in turn: EINTR must be
    // invisible to the caller, EIO must surface as the error.
    auto round_trip = [](std::error_code& write_ec, std::error_code& read_ec) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        cz::fd_sink out(fds[1]);
        out.write(cz::as_bytes("payload"), write_ec);
        ::close(fds[1]);
        cz::fd_source in(fds[0]);
        auto got = cz::read_all(in, 100, read_ec);
        ::close(fds[0]);
        return cz::to_string(got);
    };
    int calls = 0;
    {
        cz::sys::scoped_fault_injector count([&](const char*) { return ++calls, 0; });
        std::error_code w, r;
        CHECK(round_trip(w, r) == "payload");
    }
    REQUIRE(calls >= 3); // one write, reads until end of stream
    for (int n = 0; n < calls; ++n) {
        CAPTURE(n);
        {
            cz::sys::scoped_fault_injector eintr(cz::sys::fail_nth(n, EINTR));
            std::error_code w, r;
            CHECK(round_trip(w, r) == "payload");
            CHECK(!w);
            CHECK(!r);
        }
        {
            cz::sys::scoped_fault_injector eio(cz::sys::fail_nth(n, EIO));
            std::error_code w, r;
            round_trip(w, r);
            CHECK((w == std::errc::io_error || r == std::errc::io_error));
        }
    }
}

}
