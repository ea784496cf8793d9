// cz/tar/writer.hpp — writes pax (POSIX.1-2001) archives to any byte sink.
//
//     cz::tar::writer w(sink, {.deterministic = true});
//     cz::tar::entry e;  e.name = "etc/hostname";  e.size = 4;  e.mode = 0644;
//     w.add(e);  w.write(cz::as_bytes("cz!\n"));     // exactly e.size bytes of data
//     w.finish();                                     // two zero blocks, then sink.finish()
//
// Every entry gets a ustar header; what ustar cannot hold (names longer than its fields, sizes of
// 8 GiB and more, large ids, fractional or out-of-range times, xattrs, long user names) goes
// into a pax `x` header before it, as GNU tar --format=posix does. Numbers too large for octal
// are also written in base-256 in the ustar header, so readers that skip pax records still find
// the data. Sparse entries are written expanded (size bytes of data).
//
// Deterministic mode makes the output depend on names, types, modes, link targets, devices, xattrs
// and data only: mtime is `fixed_mtime_ns`, uid/gid are 0 with no user or group names, atime and
// ctime are dropped, xattrs are sorted by name, and pax headers are named "<dir>/PaxHeaders/<name>".
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/stream.hpp>
#include <cz/tar/entry.hpp>
#include <cz/tar/error.hpp>
#include <cz/tar/header.hpp>

#include <cstdint>
#include <string>
#include <system_error>

namespace cz::tar {

struct writer_options {
    bool deterministic = false;
    // The mtime every entry gets in deterministic mode.
    std::int64_t fixed_mtime_ns = 0;
};

class writer {
public:
    // `sink` must outlive the writer.
    CZ_DECL explicit writer(sink_ref sink, writer_options options = {});

    // Writes the headers of `e`; then write() must be given exactly e.size bytes of data for
    // regular files and contiguous files (other types carry none).
    CZ_DECL void add(const entry& e, std::error_code& ec);
    CZ_DECL void add(const entry& e);
    // Entry data; errc::unrepresentable past the entry's size.
    CZ_DECL void write(bytes_view data, std::error_code& ec);
    CZ_DECL void write(bytes_view data);
    // Adds an entry and copies its data from `data` (which must yield exactly e.size bytes).
    CZ_DECL void add(const entry& e, source_ref data, std::error_code& ec);
    // Ends the archive (two zero blocks) and finishes the sink.
    CZ_DECL void finish(std::error_code& ec);
    CZ_DECL void finish();

    // Bytes written to the sink so far.
    std::uint64_t bytes_written() const noexcept { return written_; }

private:
    void put(bytes_view data, std::error_code& ec);
    void close_entry(std::error_code& ec);

    sink_ref sink_;
    writer_options opt_;
    std::uint64_t remaining_ = 0;
    std::uint64_t pad_ = 0;
    std::uint64_t written_ = 0;
    bool finished_ = false;
};

} // namespace cz::tar

#if CZ_HEADER_ONLY
#include <cz/tar/impl/writer.ipp>
#endif
