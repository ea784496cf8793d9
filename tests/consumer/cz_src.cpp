// The one translation unit that compiles the out-of-line code of cz/core and of its compression
// and sha256 pieces (CZ_SEPARATE_COMPILATION), for main.cpp.
#include <cz/core/compression_src.hpp>
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
