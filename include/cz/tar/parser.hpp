// cz/tar/parser.hpp — a push parser for tar archives that does no I/O.
//
// Feed it bytes as they arrive; it returns how many it consumed and, at most once per call, an
// event: an entry's header is complete (`entry`), a piece of the entry's stored data is in the
// input just fed (`data`, no copy), or the archive has ended (`end`). errc::need_more means the
// input ran out before the next event: feed more, or call finish() at the end of the stream.
//
// What it reads (and how it decides, following GNU tar 1.34 where formats are silent):
//  - v7, POSIX ustar and GNU headers; checksums checked as unsigned and as signed sums;
//  - pax `x` (next entry) and `g` (all later entries) records: path, linkpath, size, uid, gid,
//    uname, gname, mtime/atime/ctime with fractions, SCHILY.devmajor/devminor,
//    SCHILY.xattr.*, LIBARCHIVE.xattr.*, GNU.sparse.* (0.0, 0.1, 1.0); unknown keys ignored;
//    for an entry that carries data, pax `size` always wins over the header's (no header/data
//    smuggling);
//  - pax records are read as they stream by: only the values of the keys above are kept, each
//    up to its own cap (names max_name, xattrs max_xattr_bytes, numbers 128 bytes; the
//    GNU.sparse.map list is read number by number), and every other value is skipped unstored,
//    so an extended header of any size (libarchive's tests carry one of 8 MB) costs bounded
//    memory, as in GNU tar and libarchive 3.7.5 and later;
//  - GNU long names ('L') and link names ('K'), cut at the first NUL; old sparse files ('S');
//    base-256 numbers; pax, 'L' and 'K' state attaches to the next real entry and is then reset;
//  - the end: the first zero block ends the archive (GNU tar without -i: a second zero block is
//    not needed, and whatever follows, concatenated archives included, is not read), unless
//    parser_options::ignore_zeros is set, which reads on through zero blocks as `tar -i` does;
//    input that ends cleanly between entries without zero blocks is a complete archive too.
//  - entries that GNU tar and libarchive extract without reading any data carry none, whatever
//    their header or pax size says, and the next header follows theirs: directories ('5'),
//    symlinks ('2'), devices ('3', '4') and fifos ('6'); and, as both read old (v7) archives,
//    a regular-file typeflag ('0', NUL, '7') on a name that ends in '/' is a directory.
//    (GNU tar's -t and -O, unlike its -x, skip such a header's size; a GNU 'D' dumpdir keeps
//    its data, the directory listing.)
// Every size the archive controls is capped by parser_options.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/tar/entry.hpp>
#include <cz/tar/error.hpp>
#include <cz/tar/header.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace cz::tar {

// Caps on everything an archive controls. The defaults take any archive GNU tar or bsdtar
// writes from a real file system, and keep a hostile one within a few MiB of memory.
struct parser_options {
    // Name and link name lengths (Linux PATH_MAX is 4096; long names stay well above it); also
    // the longest pax path, linkpath, uname, gname or GNU.sparse.name value kept.
    std::size_t max_name = 64 << 10;
    // Number of xattrs on one entry, and the total of their names and values.
    std::size_t max_xattrs = 1024;
    std::size_t max_xattr_bytes = 1 << 20;
    // Entries in a sparse map (CVE-2025-58183 was an unbounded one).
    std::size_t max_sparse_entries = 1 << 16;
    // All metadata one entry keeps together: pax header blocks and the records whose values
    // are kept (a skipped value does not count), long names, sparse extension blocks, the pax
    // 1.0 map.
    std::size_t max_header_bytes = 4 << 20;
    // Read through zero blocks to the end of the input (`tar -i`, concatenated archives).
    bool ignore_zeros = false;
    // Treat input that ends without a zero block as truncated (GNU tar accepts it).
    bool require_end_marker = false;
};

enum class parse_event {
    none,  // nothing yet (only with errc::need_more or an error)
    entry, // current() holds the next entry's header
    data,  // data() is the next piece of the current entry's stored data
    end,   // the end-of-archive marker was read; nothing more will be parsed
};

class parser {
public:
    CZ_DECL explicit parser(parser_options options = {});
    CZ_DECL ~parser();
    parser(parser&&) noexcept;
    parser& operator=(parser&&) noexcept;

    // Consumes bytes from `input` up to and including the next event. Returns how many it
    // consumed; ec is errc::need_more when it consumed everything without reaching an event, or
    // a fatal error (then error_detail() says which header, and every later call fails the same).
    CZ_DECL std::size_t feed(bytes_view input, std::error_code& ec);

    // The input has ended. Clean when the parser is between entries; errc::truncated otherwise.
    CZ_DECL void finish(std::error_code& ec);

    // The event of the last feed().
    parse_event event() const noexcept { return event_; }
    // After event::entry: the entry (valid until the next entry event; movable-from).
    const entry& current() const noexcept { return entry_; }
    entry& current() noexcept { return entry_; }
    // After event::data: the stored data just consumed, a view into the last input.
    bytes_view data() const noexcept { return data_; }
    // Stored data bytes of the current entry that are still to come.
    std::uint64_t data_remaining() const noexcept { return data_remaining_; }
    // Archive bytes consumed so far.
    std::uint64_t offset() const noexcept { return offset_; }
    // After a fatal error: "tar header" and the offset of the header block it concerns.
    const error_info& error_detail() const noexcept { return error_detail_; }
    bool ended() const noexcept { return state_ == state::ended; }

private:
    enum class state { header, meta, sparse_ext, sparse_map, data, skip, ended, failed };
    struct pax_state;
    struct pax_stream;

    std::size_t fail(std::error_code& ec, std::error_code what, std::size_t used);
    const header_block* take_block(bytes_view input, std::size_t& used);
    void on_header(const header_block& h, std::error_code& ec);
    void on_meta_complete(std::error_code& ec);
    void on_sparse_extension(const std::byte* block, std::error_code& ec);
    void on_sparse_map_block(const std::byte* block, std::error_code& ec);
    void start_entry(const header_block& h, std::error_code& ec);
    void enter_data(std::error_code& ec);
    void reset_pending();
    void add_meta_bytes(std::uint64_t n, std::error_code& ec);

    parser_options opt_;
    state state_ = state::header;
    parse_event event_ = parse_event::none;
    entry entry_;
    bytes_view data_;
    std::uint64_t data_remaining_ = 0;
    std::uint64_t skip_ = 0;
    std::uint64_t offset_ = 0;
    error_info error_detail_;
    std::error_code error_;

    // A header block assembled across feed() calls.
    std::unique_ptr<header_block> block_;
    std::size_t block_fill_ = 0;

    // Extended header ('x', 'g', 'L', 'K') being read: pax records stream through pax_, long
    // names collect in meta_.
    char meta_type_ = 0;
    std::uint64_t meta_remaining_ = 0;
    std::string meta_;
    std::unique_ptr<pax_stream> pax_;

    // State carried to the next real entry.
    std::unique_ptr<pax_state> global_;
    std::unique_ptr<pax_state> pending_;
    std::optional<std::string> long_name_;
    std::optional<std::string> long_link_;
    std::uint64_t entry_meta_bytes_ = 0;
    std::optional<std::uint64_t> entry_start_;

    // Sparse map being read (old GNU extension blocks, pax 1.0 map blocks).
    std::string sparse_text_;
    std::optional<std::uint64_t> sparse_map_count_;
    std::optional<std::uint64_t> sparse_map_offset_;
    std::uint64_t current_header_offset_ = 0;
};

} // namespace cz::tar

#if CZ_HEADER_ONLY
#include <cz/tar/impl/parser.ipp>
#endif
