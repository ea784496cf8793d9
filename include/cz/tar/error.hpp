// cz/tar/error.hpp — the errors of the tar module (cz::tar::errc, category "cz.tar").
//
// Every error the reader reports comes with the byte offset of the header it concerns
// (parser::error_detail(), or the context string of the throwing overloads).
#pragma once

#include <cz/core/error.hpp>

#include <system_error>

namespace cz::tar {

enum class errc {
    // The parser consumed all the input it was given and needs more to go on. The only
    // non-fatal error: feed it the next bytes (or call finish() at the end of the stream).
    need_more = 1,
    // The archive ended inside a header, an extended header, a sparse map or entry data.
    truncated,
    // A header block's checksum matches neither the unsigned nor the signed sum of its bytes.
    bad_checksum,
    // A numeric header field (size, mode, uid, ...) is not octal, base-256 or in range.
    bad_number,
    // A pax extended header record is malformed (length, '=', newline) or has a bad value.
    bad_pax_record,
    // A GNU sparse map (old 'S' header, pax 0.0/0.1/1.0) is malformed, unsorted, overlapping,
    // or describes more data than the entry stores.
    bad_sparse_map,
    // A pax record's value for a numeric key cz uses (size, uid, mtime, GNU.sparse.offset, ...)
    // is longer than the 128 bytes kept for one, or a pax key cz uses is longer than 4096 bytes.
    // (Too long names and xattrs are name_too_long and too_many_xattrs; values of keys cz does
    // not use are skipped, whatever their size.)
    header_too_large,
    // A name or link name is longer than parser_options allow.
    name_too_long,
    // More extended attributes, or bigger ones, than parser_options allow.
    too_many_xattrs,
    // A sparse map with more entries than parser_options allow.
    sparse_map_too_large,
    // The metadata blocks of one entry (pax, long names, sparse maps) exceed
    // parser_options::max_header_bytes.
    entry_headers_too_large,
    // A path normalised with dotdot_policy::refuse climbs above the archive root.
    path_escapes_root,
    // The writer was given an entry it cannot represent (a NUL in a name, '=' in an xattr name,
    // data longer or shorter than the entry's size).
    unrepresentable,
    // A writer call out of order (data before an entry, a new entry before the data is complete,
    // anything after finish()).
    bad_writer_state,
};

// The category of cz::tar::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& tar_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), tar_category()};
}

} // namespace cz::tar

template <>
struct std::is_error_code_enum<cz::tar::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/tar/impl/error.ipp>
#endif
