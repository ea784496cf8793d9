// Out-of-line definitions for cz/oci/error.hpp.
#pragma once

#include <cz/oci/error.hpp>

#include <string>

namespace cz::oci {
namespace detail {

class oci_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.oci"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::invalid_json:
            return "invalid JSON";
        case errc::document_too_large:
            return "document too large";
        case errc::invalid_field:
            return "invalid field";
        case errc::unsupported_media_type:
            return "unsupported media type";
        case errc::unsupported_schema_version:
            return "unsupported schema version";
        case errc::invalid_digest:
            return "invalid digest";
        case errc::unsupported_digest_algorithm:
            return "unsupported digest algorithm";
        case errc::invalid_reference:
            return "invalid image reference";
        case errc::invalid_platform:
            return "invalid platform";
        case errc::no_matching_platform:
            return "no image for the requested platform";
        case errc::not_found:
            return "not found";
        case errc::size_mismatch:
            return "size mismatch";
        case errc::digest_mismatch:
            return "digest mismatch";
        case errc::index_too_deep:
            return "indexes nested too deep or in a cycle";
        case errc::invalid_layout:
            return "not a usable OCI image layout";
        case errc::invalid_archive:
            return "not a usable image archive";
        }
        return "unknown cz.oci error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& oci_category() noexcept {
    static const detail::oci_category_impl instance;
    return instance;
}

} // namespace cz::oci
