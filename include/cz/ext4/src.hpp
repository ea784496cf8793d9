// cz/ext4/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/ext4/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/ext4/impl/error.ipp>
#include <cz/ext4/impl/formatter.ipp>
#include <cz/ext4/impl/reader.ipp>
#include <cz/ext4/impl/applier.ipp>
#include <cz/ext4/impl/export.ipp>
