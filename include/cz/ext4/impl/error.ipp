// Out-of-line definitions for cz/ext4/error.hpp.
#pragma once

#include <cz/ext4/error.hpp>

#include <string>

namespace cz::ext4 {
namespace detail {

class ext4_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.ext4"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::no_space: return "no space left in the ext4 image";
        case errc::file_too_large: return "file too large for ext4";
        case errc::invalid_name: return "invalid file name";
        case errc::invalid_symlink: return "invalid symlink target";
        case errc::invalid_xattr: return "extended attribute cannot be stored";
        case errc::not_a_directory: return "not a directory";
        case errc::not_found: return "no such file or directory";
        case errc::link_to_directory: return "hard link to a directory";
        case errc::too_many_links: return "too many links";
        case errc::bad_state: return "formatter used after finish or failure";
        case errc::unsupported_image: return "not a supported ext4 image";
        case errc::corrupt_image: return "corrupt ext4 image";
        case errc::bad_layer_entry: return "bad layer entry";
        }
        return "unknown cz.ext4 error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& ext4_category() noexcept {
    static const detail::ext4_category_impl instance;
    return instance;
}

} // namespace cz::ext4
