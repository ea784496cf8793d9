// cz/tar/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/tar/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/tar/impl/error.ipp>
#include <cz/tar/impl/header.ipp>
#include <cz/tar/impl/parser.ipp>
#include <cz/tar/impl/path.ipp>
#include <cz/tar/impl/reader.ipp>
#include <cz/tar/impl/writer.ipp>
