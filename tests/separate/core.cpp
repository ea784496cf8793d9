// cz/core proper as a program compiled with CZ_SEPARATE_COMPILATION uses it: its out-of-line code
// comes from core_src.cpp, and the program links with dependency('cz-core') alone (fmt; no
// codec, no libcrypto). Each case calls into that code, so a definition missing from
// cz/core/src.hpp, or one compiled inline there, fails the link.
#include <cz/core.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <array>
#include <cerrno>
#include <string>
#include <thread>
#include <unistd.h>

TEST_SUITE("separate compilation: core") {

    TEST_CASE("errors carry cz's category and messages") {
        std::error_code ec = cz::errc::truncated;
        CHECK(&ec.category() == &cz::core_category());
        CHECK(std::string(ec.category().name()) == "cz.core");
        CHECK_THROWS_AS(cz::throw_if(ec, "layer.tar"), cz::system_error);
    }

    TEST_CASE("sizes parse, and bad ones name the text") {
        std::error_code ec;
        CHECK(cz::parse_size("1.5K", ec) == 1536);
        CHECK(!ec);
        CHECK(cz::parse_size("2", 1 << 20) == 2u << 20);
        cz::parse_size("12 parsecs", ec);
        CHECK(ec == cz::errc::invalid_argument);
        CHECK_THROWS_WITH_AS(cz::parse_size("-1"), doctest::Contains("-1"), cz::system_error);
    }

    TEST_CASE("memory and fd streams, a moved unique_fd, read-ahead on a thread") {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        cz::unique_fd read_end(fds[0]), write_end(fds[1]);
        cz::unique_fd moved(std::move(write_end));
        CHECK(!write_end.valid());

        std::string text(100000, 'x');
        for (std::size_t i = 0; i < text.size(); i += 7)
            text[i] = char('a' + i % 26);
        std::error_code ec;
        cz::byte_buffer received;
        {
            // The pipe holds 64 KiB: a thread writes while this one reads through read_ahead.
            cz::fd_source from_pipe(read_end.get());
            cz::read_ahead_source ahead(from_pipe, {.buffer_size = 4096, .buffers = 2});
            std::thread writer([&] {
                cz::memory_source mem(cz::as_bytes(text));
                cz::fd_sink to_pipe(moved.get());
                std::error_code wec;
                cz::copy(mem, to_pipe, wec);
                moved.reset();
            });
            received = cz::read_all(ahead, 1 << 20, ec);
            writer.join();
            CHECK(ahead.bytes_read() == text.size());
        }
        CHECK(!ec);
        CHECK(cz::as_chars(received) == text);

        // read_all's limit, and read_full at the end of a stream.
        cz::memory_source mem(cz::as_bytes(text));
        cz::read_all(mem, 10, ec);
        CHECK(ec == cz::errc::too_large);
        cz::memory_source short_source(cz::as_bytes("abc"));
        std::array<std::byte, 8> buf{};
        CHECK(cz::read_full(short_source, buf, ec) == 3);
        CHECK(!ec);
    }

    TEST_CASE("the syscall seam reaches the compiled fd_source") {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        cz::unique_fd read_end(fds[0]), write_end(fds[1]);
        cz::sys::scoped_fault_injector fail(cz::sys::fail_nth(0, EIO, "read"));
        cz::fd_source src(read_end.get());
        std::array<std::byte, 4> buf{};
        std::error_code ec;
        CHECK(src.read_some(buf, ec) == 0);
        CHECK(ec == std::error_code(EIO, std::system_category()));
    }

} // TEST_SUITE
