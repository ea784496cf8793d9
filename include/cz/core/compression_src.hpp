// cz/core/compression_src.hpp — cz/core/compression.hpp's out-of-line code, for builds that define
// CZ_SEPARATE_COMPILATION: include it in exactly one .cpp, beside cz/core/src.hpp. It is what
// needs ISA-L, zlib and zstd (Meson: dependency('cz-core-compression')).
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/core/compression_src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/core/impl/compression.ipp>
