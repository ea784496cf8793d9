// cz/ext4/error.hpp — the errors of cz/ext4 (formatter, reader, layer applier).
#pragma once

#include <cz/core/error.hpp>

#include <system_error>

namespace cz::ext4 {

enum class errc {
    // The content does not fit in the image size the caller fixed, or in the largest image this
    // formatter lays out (16 TiB of 4 KiB blocks, 2^32 inodes).
    no_space = 1,
    // A file is larger than an ext4 extent tree can address (2^32 blocks of 4 KiB).
    file_too_large,
    // A name is empty, ".", "..", contains '/' or NUL, or is longer than 255 bytes.
    invalid_name,
    // A symlink target is empty or longer than 4095 bytes (a block minus the NUL).
    invalid_symlink,
    // An xattr name has no namespace ext4 can store (user., trusted., security., system.) or its
    // name or value does not fit in the inode plus one 4 KiB xattr block.
    invalid_xattr,
    // An operation needs a directory and the node is something else.
    not_a_directory,
    // A path or node does not exist.
    not_found,
    // A hard link to a directory was asked for (directories have exactly one name).
    link_to_directory,
    // A file would get more than 65000 names (EXT4_LINK_MAX).
    too_many_links,
    // The formatter was used after finish() or after a failed write left it unusable.
    bad_state,
    // The image is not ext4 this reader understands (bad magic, unsupported incompat feature,
    // block size not 1..64 KiB).
    unsupported_image,
    // A structure in the image is inconsistent (offset outside the image, bad extent magic,
    // directory entry overrunning its block, loop in a tree).
    corrupt_image,
    // A layer entry is unusable: a whiteout naming nothing (".wh."), a hard link whose target is
    // missing, a directory or outside the root, a path longer than 4096 bytes.
    bad_layer_entry,
};

CZ_DECL const std::error_category& ext4_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), ext4_category()};
}

} // namespace cz::ext4

template <>
struct std::is_error_code_enum<cz::ext4::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/ext4/impl/error.ipp>
#endif
