// The one translation unit that compiles cz-core's out-of-line code (CZ_SEPARATE_COMPILATION).
#include <cz/core/src.hpp>
