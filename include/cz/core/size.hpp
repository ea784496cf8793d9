// cz/core/size.hpp — sizes as people write them on a command line: "512", "64K", "1.5G", "2GiB".
//
// The one grammar every cz size takes (disk sizes, memory, output limits):
//
//     size   = digits [ "." digits ] [ unit ]
//     unit   = ( "K" | "M" | "G" | "T" ) [ "iB" | "B" ]  |  "B"      (letters in either case)
//
// Units are binary (K = 1024 bytes); a number without a unit counts `unitless` bytes (1 unless
// the caller says otherwise: memory sizes, as QEMU's -m, count MiB). A fraction is allowed
// and the result is rounded down to a whole byte ("1.5K" = 1536). Spaces, signs, exponents and
// values past 2^64 - 1 bytes are refused.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/error.hpp>

#include <cstdint>
#include <string_view>

namespace cz {

// Parses `text` by the grammar above into bytes. On anything else, errc::invalid_argument (and
// errc::too_large when the value does not fit in 64 bits). `unitless` must be a power of two.
CZ_DECL std::uint64_t parse_size(std::string_view text, std::error_code& ec,
                                 std::uint64_t unitless = 1);

// As above; throws cz::system_error naming the text.
CZ_DECL std::uint64_t parse_size(std::string_view text, std::uint64_t unitless = 1);

} // namespace cz

#if CZ_HEADER_ONLY
#include <cz/core/impl/size.ipp>
#endif
