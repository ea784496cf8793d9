// cz/core/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/core/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/core/impl/compression.ipp>
#include <cz/core/impl/error.ipp>
#include <cz/core/impl/read_ahead.ipp>
#include <cz/core/impl/sha256.ipp>
#include <cz/core/impl/size.ipp>
#include <cz/core/impl/stream.ipp>
