// cz/core/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
//
// Core proper only (errors, bytes, streams, sizes, read-ahead): it needs fmt and nothing else.
// The two pieces with libraries of their own have their own source headers, compiled only by a
// program that uses them: cz/core/compression_src.hpp (ISA-L, zlib, zstd) and
// cz/core/sha256_src.hpp (BoringSSL's libcrypto).
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/core/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/core/impl/error.ipp>
#include <cz/core/impl/read_ahead.ipp>
#include <cz/core/impl/size.ipp>
#include <cz/core/impl/stream.ipp>
