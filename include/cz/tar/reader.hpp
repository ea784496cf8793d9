// cz/tar/reader.hpp — a blocking tar reader over any byte source (no seeking: a pipe or a socket
// will do), built on cz::tar::parser.
//
//     cz::tar::reader r(src);                       // src: any cz::byte_source
//     while (const cz::tar::entry* e = r.next()) {  // throws cz::system_error on a bad archive
//         if (e->is_file()) cz::copy(r, sink, ec);  // the reader is the entry's byte_source
//     }
//
// The reader itself is a byte_source over the current entry's content, with the holes of sparse
// files read as zeros (entry::size bytes in all). stored_data() reads only what the archive
// stores (for sparse files, the data regions back to back, as described by entry::sparse_map),
// for consumers that write holes themselves. Unread data is skipped by next().
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/stream.hpp>
#include <cz/tar/entry.hpp>
#include <cz/tar/error.hpp>
#include <cz/tar/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>

namespace cz::tar {

class reader {
public:
    // `src` must outlive the reader. Reads nothing until next().
    CZ_DECL explicit reader(source_ref src, parser_options options = {});
    // Reads an archive that is all in memory (a mapped file, a received buffer) without copying
    // it: views returned by read_view() point into `archive`, which must outlive the reader.
    CZ_DECL explicit reader(bytes_view archive, parser_options options = {});
    CZ_DECL ~reader();
    reader(reader&&) noexcept;
    reader& operator=(reader&&) noexcept;

    // Moves to the next entry, skipping what is left of the current one. Returns nullptr at the
    // end of the archive (ec clear) or on error (ec set; error_detail() says where).
    CZ_DECL const entry* next(std::error_code& ec);
    // Throws cz::system_error("tar header at offset N: <why>") on error.
    CZ_DECL const entry* next();

    // The current entry (after next() returned it). Its strings may be moved from.
    entry& current() noexcept { return parser_.current(); }

    // byte_source over the current entry's content: entry::size bytes, sparse holes as zeros.
    // Returns 0 at the end of the content.
    CZ_DECL std::size_t read_some(mutable_bytes buf, std::error_code& ec);
    // Reads the stored data only: entry::stored_size bytes.
    CZ_DECL std::size_t read_stored_some(mutable_bytes buf, std::error_code& ec);

    // Zero-copy variants: the next at most `max` bytes of content (or of stored data) as a view,
    // empty at the end. A view lives until the next call on the reader; for a reader over memory
    // it lives as long as the archive. Holes of sparse files are views of a block of zeros that
    // lives as long as the reader.
    CZ_DECL bytes_view read_view(std::size_t max, std::error_code& ec);
    CZ_DECL bytes_view read_stored_view(std::size_t max, std::error_code& ec);

    // A byte_source over the current entry's stored data (see read_stored_some).
    class stored_source {
    public:
        explicit stored_source(reader& r) noexcept : r_(&r) {}
        std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
            return r_->read_stored_some(buf, ec);
        }

    private:
        reader* r_;
    };
    stored_source stored_data() noexcept { return stored_source(*this); }

    // Archive bytes consumed so far. After an error: the header it concerns (as
    // parser::error_detail), or "tar stream" and the offset where the source failed.
    std::uint64_t offset() const noexcept { return parser_.offset(); }
    const error_info& error_detail() const noexcept { return detail_; }

private:
    bool refill(std::error_code& ec);
    std::size_t fail(std::error_code& ec, std::error_code what);

    std::optional<source_ref> src_; // empty for a reader over memory
    parser parser_;
    std::unique_ptr<std::byte[]> buf_;
    // Input not yet given to the parser: part of buf_, or of the in-memory archive.
    bytes_view pending_;
    std::unique_ptr<std::byte[]> zeros_;
    bool eof_ = false;
    bool ended_ = false;
    bool in_entry_ = false;
    std::error_code error_;
    error_info detail_;
    // Logical position in a sparse entry and the map segment it is in or before.
    std::uint64_t pos_ = 0;
    std::size_t segment_ = 0;
};

} // namespace cz::tar

#if CZ_HEADER_ONLY
#include <cz/tar/impl/reader.ipp>
#endif
