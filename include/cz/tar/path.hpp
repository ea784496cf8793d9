// cz/tar/path.hpp — turning names as stored in an archive into safe relative paths.
//
// The reader reports names exactly as stored ("./a//b/../c", "/etc/passwd", "../../x"). Anything
// that uses a name as a path inside a root (the ext4 layer applier, copy-in) normalises it first:
//  - leading '/' and "./" are stripped, repeated '/' collapse, "." components vanish;
//  - ".." removes the previous component; at the root it is refused (errc::path_escapes_root)
//    or clamped (stays at the root), as the caller chooses;
//  - a trailing '/' is dropped; the root itself is the empty string.
// Normalisation is purely lexical: symlinks inside the tree are the consumer's to resolve.
#pragma once

#include <cz/core/config.hpp>
#include <cz/tar/error.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace cz::tar {

enum class dotdot_policy {
    refuse, // ".." above the root is an error (errc::path_escapes_root)
    clamp,  // ".." above the root stays at the root ("../../etc" -> "etc"), as GNU tar does
};

// Returns the normalised relative path ("" for the root itself). On error returns "" with ec set.
CZ_DECL std::string normalize_path(std::string_view name, dotdot_policy policy,
                                   std::error_code& ec);
// Throws cz::system_error naming the path.
CZ_DECL std::string normalize_path(std::string_view name,
                                   dotdot_policy policy = dotdot_policy::refuse);

} // namespace cz::tar

#if CZ_HEADER_ONLY
#include <cz/tar/impl/path.ipp>
#endif
