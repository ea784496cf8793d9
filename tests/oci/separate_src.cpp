// The one TU that compiles cz's out-of-line code for the CZ_SEPARATE_COMPILATION test build.
#include <cz/core/compression_src.hpp>
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
#include <cz/oci/src.hpp>
#include <cz/tar/src.hpp>
