// cz/core/asio_stream.hpp — byte_source / byte_sink adapters for Asio synchronous streams.
//
// Lets a registry connection, a vsock stream or a Unix socket feed the same pipelines as files:
// `cz::asio_source src(socket); cz::decompressing_source layer(src);`. This is the only core
// header that includes Asio; the rest of cz/core compiles without it.
#pragma once

#include <cz/core/stream.hpp>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/write.hpp>

namespace cz {

// Reads from any Asio SyncReadStream (asio::ip::tcp::socket, asio::local::stream_protocol::socket,
// asio::ssl::stream, ...). asio::error::eof becomes the byte_source end of stream (0, ec clear).
template <class SyncReadStream>
class asio_source {
public:
    explicit asio_source(SyncReadStream& stream) noexcept : stream_(&stream) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        auto n = stream_->read_some(asio::buffer(buf.data(), buf.size()), ec);
        if (ec == asio::error::eof) {
            ec.clear();
            return n;
        }
        return ec ? 0 : n;
    }

private:
    SyncReadStream* stream_;
};

// Writes everything to any Asio SyncWriteStream. finish() does not close or shut down the
// stream: the caller owns it and decides.
template <class SyncWriteStream>
class asio_sink {
public:
    explicit asio_sink(SyncWriteStream& stream) noexcept : stream_(&stream) {}
    void write(bytes_view data, std::error_code& ec) {
        ec.clear();
        asio::write(*stream_, asio::buffer(data.data(), data.size()), ec);
    }
    void finish(std::error_code& ec) { ec.clear(); }

private:
    SyncWriteStream* stream_;
};

} // namespace cz
