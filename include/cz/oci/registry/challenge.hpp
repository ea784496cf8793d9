// cz/oci/registry/challenge.hpp — WWW-Authenticate challenges (RFC 9110 section 11.6.1), parsed
// without I/O.
//
// A registry that wants credentials answers 401 with, for example:
//   WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
//                     scope="repository:library/busybox:pull"
// and the client asks the realm for a token with those parameters. The grammar:
//   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//   auth-param = token BWS "=" BWS ( token / quoted-string )
// with several challenges, comma-separated, in one header value. The value comes from the server
// and is not trusted: parameters are unique per challenge (a second realm would let two parts of a
// client disagree about where to send credentials), and the number of challenges and parameters
// is capped.
#pragma once

#include <cz/core/error.hpp>
#include <cz/oci/registry/error.hpp>
#include <cz/oci/registry/http.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cz::oci::registry {

struct auth_challenge {
    std::string scheme;  // as received ("Bearer", "Basic"); compare with iequals()
    std::string token68; // the scheme's token68 form, when it has one instead of parameters
    // Names in lowercase (they are case-insensitive), values unquoted and unescaped, in order.
    std::vector<std::pair<std::string, std::string>> params;

    // The value of parameter `name` (lowercase), if present.
    CZ_DECL std::optional<std::string_view> param(std::string_view name) const;
};

inline constexpr std::size_t max_challenges = 16;
inline constexpr std::size_t max_challenge_params = 32;

// Parses one WWW-Authenticate (or Proxy-Authenticate) field value. On errc::malformed_challenge,
// `detail` (if given) says what and at which offset in `value`.
CZ_DECL std::vector<auth_challenge> parse_challenges(std::string_view value, std::error_code& ec,
                                                     error_info* detail = nullptr);

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/challenge.ipp>
#endif
