// cz/oci/registry_src.hpp — the bodies of cz/oci/registry/: include in exactly one .cpp when
// building with CZ_SEPARATE_COMPILATION (beside cz/oci/src.hpp and those of what cz/oci needs).
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/oci/registry_src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/oci/registry/impl/challenge.ipp>
#include <cz/oci/registry/impl/client.ipp>
#include <cz/oci/registry/impl/credentials.ipp>
#include <cz/oci/registry/impl/error.ipp>
#include <cz/oci/registry/impl/http.ipp>
#include <cz/oci/registry/impl/proxy.ipp>
#include <cz/oci/registry/impl/push.ipp>
#include <cz/oci/registry/impl/url.ipp>
