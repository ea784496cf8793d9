// cz/core/sha256_src.hpp — cz/core/sha256.hpp's out-of-line code, for builds that define
// CZ_SEPARATE_COMPILATION: include it in exactly one .cpp, beside cz/core/src.hpp. It is what
// needs BoringSSL's libcrypto (Meson: dependency('cz-core-sha256')).
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/core/sha256_src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/core/impl/sha256.ipp>
