// Out-of-line definitions for cz/tar/error.hpp.
#pragma once

#include <cz/tar/error.hpp>

#include <string>

namespace cz::tar {
namespace detail {

class tar_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.tar"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::need_more:
            return "more input needed";
        case errc::truncated:
            return "unexpected end of archive";
        case errc::bad_checksum:
            return "header checksum mismatch";
        case errc::bad_number:
            return "invalid numeric field in header";
        case errc::bad_pax_record:
            return "malformed pax extended header record";
        case errc::bad_sparse_map:
            return "invalid sparse map";
        case errc::header_too_large:
            return "pax record value too large";
        case errc::name_too_long:
            return "name too long";
        case errc::too_many_xattrs:
            return "too many or too large extended attributes";
        case errc::sparse_map_too_large:
            return "sparse map has too many entries";
        case errc::entry_headers_too_large:
            return "too many header bytes for one entry";
        case errc::path_escapes_root:
            return "path escapes the archive root";
        case errc::unrepresentable:
            return "entry cannot be represented in a tar archive";
        case errc::bad_writer_state:
            return "tar writer used out of order";
        }
        return "unknown cz.tar error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& tar_category() noexcept {
    static const detail::tar_category_impl instance;
    return instance;
}

} // namespace cz::tar
