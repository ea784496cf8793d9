// cz/ext4/export.hpp — writes the tree of an ext4 image as a pax tar stream.
//
// Every entry under the root (lost+found included, when it holds something) in directory order:
// a directory before its contents; the second and later names of a file with several links as
// hard links to the first; device numbers, xattrs, modes, owners and nanosecond times as stored.
// Sparse files are written expanded (the tar writer writes no sparse maps).
#pragma once

#include <cz/core/stream.hpp>
#include <cz/ext4/reader.hpp>

#include <system_error>

namespace cz::ext4 {

struct export_options {
    // Leave out an empty /lost+found (every ext4 image has one; no layer put it there).
    bool skip_empty_lost_found = true;
};

// Writes the image's tree to `out` as a tar stream and finishes it (two zero blocks, then
// out.finish()).
CZ_DECL void export_tar(const reader& image, sink_ref out, export_options options,
                        std::error_code& ec);
inline void export_tar(const reader& image, sink_ref out, export_options options = {}) {
    std::error_code ec;
    export_tar(image, out, options, ec);
    throw_if(ec, "ext4 export");
}

} // namespace cz::ext4

#if CZ_HEADER_ONLY
#include <cz/ext4/impl/export.ipp>
#endif
