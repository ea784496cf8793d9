// The one TU that compiles cz's out-of-line code for the registry's CZ_SEPARATE_COMPILATION test.
#include <cz/core/compression_src.hpp>
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
#include <cz/oci/registry_src.hpp>
#include <cz/oci/src.hpp>
#include <cz/tar/src.hpp>
