// cz/core/config.hpp — how cz's non-template code is compiled.
//
// cz is header-only by default: every out-of-line function is declared with CZ_DECL and its body
// lives in an `impl/*.ipp` file that the header includes. A program that prefers one compiled copy
// (faster builds) defines CZ_SEPARATE_COMPILATION in its compile args and compiles, in exactly one
// translation unit, `cz/<module>/src.hpp` for each module it uses and each module those need
// (cz/core's pieces have their own: `cz/core/compression_src.hpp`, `cz/core/sha256_src.hpp`) —
// Asio's ASIO_SEPARATE_COMPILATION pattern.
#pragma once

#if defined(CZ_SEPARATE_COMPILATION)
#define CZ_DECL
#define CZ_HEADER_ONLY 0
#else
#define CZ_DECL inline
#define CZ_HEADER_ONLY 1
#endif

namespace cz {

// The version of the toolkit, bumped with every release.
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
inline constexpr const char* version_string = "0.1.0";

} // namespace cz
