// Out-of-line definitions for cz/core/error.hpp.
#pragma once

#include <cz/core/error.hpp>

namespace cz {
namespace detail {

class core_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.core"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::truncated: return "stream ended early (truncated input)";
        case errc::corrupt_data: return "corrupt data";
        case errc::output_limit_exceeded: return "decompressed size limit exceeded";
        case errc::ratio_limit_exceeded: return "decompression ratio limit exceeded";
        case errc::invalid_digest: return "invalid digest string";
        case errc::digest_mismatch: return "digest mismatch";
        case errc::invalid_argument: return "invalid argument";
        case errc::too_large: return "value too large";
        }
        return "unknown cz.core error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& core_category() noexcept {
    static const detail::core_category_impl instance;
    return instance;
}

} // namespace cz
