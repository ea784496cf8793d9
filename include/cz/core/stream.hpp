// cz/core/stream.hpp — the byte source and byte sink concepts every cz module streams through.
//
// A layer travels from the network, through a hasher and a decompressor, into the tar reader and
// the ext4 writer without ever landing on disk as a whole. Each step is a *source* (something you
// read bytes from) or a *sink* (something you write bytes to):
//
// | expression                  | type        | meaning                                          |
// |-----------------------------|-------------|--------------------------------------------------|
// | `src.read_some(buf, ec)`    | std::size_t | reads 1..buf.size() bytes into buf; returns 0    |
// |                             |             | with `ec` clear at the end of the stream, or 0   |
// |                             |             | with `ec` set on failure. buf is never empty.    |
// | `sink.write(data, ec)`      | void        | writes all of `data`, or sets `ec`               |
// | `sink.finish(ec)`           | void        | flushes trailers (gzip footer, zstd epilogue)    |
// |                             |             | and reports any deferred error                   |
//
// Templates stay thin: algorithms take `source_ref`/`sink_ref`, a non-owning type-erased view of
// any source or sink, so their bodies are ordinary non-template code.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/error.hpp>
#include <cz/core/syscall.hpp>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <system_error>
#include <unistd.h>

namespace cz {

template <class T>
concept byte_source = requires(T& src, mutable_bytes buf, std::error_code& ec) {
    { src.read_some(buf, ec) } -> std::same_as<std::size_t>;
};

template <class T>
concept byte_sink = requires(T& sink, bytes_view data, std::error_code& ec) {
    { sink.write(data, ec) } -> std::same_as<void>;
    { sink.finish(ec) } -> std::same_as<void>;
};

// A non-owning reference to any byte_source. Two pointers; copy it freely while the source lives.
class source_ref {
public:
    template <byte_source Source>
        requires(!std::same_as<std::remove_cvref_t<Source>, source_ref>)
    source_ref(Source& src) noexcept // NOLINT: implicit on purpose, like std::span
        : object_(&src), read_([](void* o, mutable_bytes b, std::error_code& ec) {
              return static_cast<Source*>(o)->read_some(b, ec);
          }) {}

    std::size_t read_some(mutable_bytes buf, std::error_code& ec) { return read_(object_, buf, ec); }

private:
    void* object_;
    std::size_t (*read_)(void*, mutable_bytes, std::error_code&);
};

// A non-owning reference to any byte_sink.
class sink_ref {
public:
    template <byte_sink Sink>
        requires(!std::same_as<std::remove_cvref_t<Sink>, sink_ref>)
    sink_ref(Sink& sink) noexcept // NOLINT: implicit on purpose
        : object_(&sink),
          write_([](void* o, bytes_view d, std::error_code& ec) {
              static_cast<Sink*>(o)->write(d, ec);
          }),
          finish_([](void* o, std::error_code& ec) { static_cast<Sink*>(o)->finish(ec); }) {}

    void write(bytes_view data, std::error_code& ec) { write_(object_, data, ec); }
    void finish(std::error_code& ec) { finish_(object_, ec); }

private:
    void* object_;
    void (*write_)(void*, bytes_view, std::error_code&);
    void (*finish_)(void*, std::error_code&);
};

// Reads exactly buf.size() bytes. Returns the number read: less than buf.size() only at the end
// of the stream (ec clear) or on error (ec set).
CZ_DECL std::size_t read_full(source_ref src, mutable_bytes buf, std::error_code& ec);

// Copies src into sink until the end of src; does not call sink.finish(). Returns bytes copied.
CZ_DECL std::uint64_t copy(source_ref src, sink_ref sink, std::error_code& ec);

// Reads the whole of src into memory, failing with errc::too_large past `limit` bytes.
CZ_DECL byte_buffer read_all(source_ref src, std::size_t limit, std::error_code& ec);

// ---------------------------------------------------------------------------------------------
// Adapters

// Reads from a span in memory.
class memory_source {
public:
    explicit memory_source(bytes_view data) noexcept : data_(data) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec);
    std::size_t remaining() const noexcept { return data_.size(); }

private:
    bytes_view data_;
};

// Appends to a byte_buffer the caller owns.
class buffer_sink {
public:
    explicit buffer_sink(byte_buffer& out) noexcept : out_(&out) {}
    void write(bytes_view data, std::error_code& ec);
    void finish(std::error_code&) {}

private:
    byte_buffer* out_;
};

// Reads from a file descriptor it does not own (a file, pipe or socket). EINTR is retried.
class fd_source {
public:
    explicit fd_source(int fd) noexcept : fd_(fd) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec);

private:
    int fd_;
};

// Writes to a file descriptor it does not own. Short writes and EINTR are retried.
class fd_sink {
public:
    explicit fd_sink(int fd) noexcept : fd_(fd) {}
    void write(bytes_view data, std::error_code& ec);
    void finish(std::error_code&) {}

private:
    int fd_;
};

// Discards everything; counts the bytes.
class null_sink {
public:
    void write(bytes_view data, std::error_code&) noexcept { count_ += data.size(); }
    void finish(std::error_code&) noexcept {}
    std::uint64_t count() const noexcept { return count_; }

private:
    std::uint64_t count_ = 0;
};

// Counts bytes read through another source; used for "at offset N" in error messages and for
// ratio limits.
class counting_source {
public:
    explicit counting_source(source_ref inner) noexcept : inner_(inner) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        auto n = inner_.read_some(buf, ec);
        count_ += n;
        return n;
    }
    std::uint64_t count() const noexcept { return count_; }

private:
    source_ref inner_;
    std::uint64_t count_ = 0;
};

} // namespace cz

#if CZ_HEADER_ONLY
#include <cz/core/impl/stream.ipp>
#endif
