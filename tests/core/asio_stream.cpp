#include <cz/core/asio_stream.hpp>

#include <doctest/doctest.h>

#include <cz/core/compression.hpp>

#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>

#include <thread>

TEST_SUITE("core") {

TEST_CASE("a gzip stream crosses a socket through asio_sink and asio_source") {
    asio::io_context io;
    asio::local::stream_protocol::socket a(io), b(io);
    asio::local::connect_pair(a, b);
    std::string text(200'000, 'q');

    std::thread writer([&] {
        cz::asio_sink sink(a);
        cz::compressing_sink gz(sink, cz::compression::gzip);
        std::error_code ec;
        gz.write(cz::as_bytes(text), ec);
        gz.finish(ec);
        a.shutdown(asio::socket_base::shutdown_send);
    });
    cz::asio_source src(b);
    cz::decompressing_source dec(src);
    std::error_code ec;
    auto got = cz::read_all(dec, 1 << 20, ec);
    writer.join();
    CHECK(!ec);
    CHECK(cz::as_chars(got) == text);
    CHECK(dec.format() == cz::compression::gzip);

    // A peer that vanishes mid-stream is a truncated layer, not a short success.
    asio::local::stream_protocol::socket c(io), d(io);
    asio::local::connect_pair(c, d);
    std::error_code wec;
    cz::asio_sink partial(c);
    partial.write(cz::as_bytes(std::string("\x1f\x8b\x08\x00", 4)), wec);
    c.close();
    cz::asio_source cut(d);
    cz::decompressing_source cut_dec(cut);
    cz::read_all(cut_dec, 1 << 20, ec);
    CHECK(ec == cz::errc::truncated);
}

}
