// The one translation unit that compiles cz/core's and cz/tar's out-of-line code
// (CZ_SEPARATE_COMPILATION), for tar_main.cpp: no codec, no libcrypto.
#include <cz/core/src.hpp>
#include <cz/tar/src.hpp>
