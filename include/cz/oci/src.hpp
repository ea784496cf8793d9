// cz/oci/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/oci/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/oci/impl/archive.ipp>
#include <cz/oci/impl/error.ipp>
#include <cz/oci/impl/import.ipp>
#include <cz/oci/impl/platform.ipp>
#include <cz/oci/impl/reference.ipp>
#include <cz/oci/impl/store.ipp>
#include <cz/oci/impl/types.ipp>
