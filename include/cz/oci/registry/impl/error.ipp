// Out-of-line definitions for cz/oci/registry/error.hpp.
#pragma once

#include <cz/oci/registry/error.hpp>

#include <string>

namespace cz::oci::registry {
namespace detail {

class registry_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.oci.registry"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::need_more:
            return "need more input";
        case errc::malformed_response:
            return "malformed HTTP response";
        case errc::head_too_large:
            return "HTTP response head too large";
        case errc::truncated_response:
            return "connection closed in the middle of an HTTP response";
        case errc::unexpected_response:
            return "unexpected HTTP response";
        case errc::malformed_challenge:
            return "malformed WWW-Authenticate challenge";
        case errc::invalid_url:
            return "invalid URL";
        case errc::unauthorized:
            return "unauthorized";
        case errc::refused_redirect:
            return "redirect refused";
        case errc::unexpected_status:
            return "unexpected HTTP status";
        case errc::malformed_credentials:
            return "malformed docker config file";
        case errc::credential_helper_failed:
            return "docker credential helper failed";
        case errc::proxy_refused:
            return "HTTP proxy refused to tunnel or forward";
        }
        return "unknown cz.oci.registry error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& registry_category() noexcept {
    static const detail::registry_category_impl category;
    return category;
}

} // namespace cz::oci::registry
