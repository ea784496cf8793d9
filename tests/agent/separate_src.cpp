// The one TU that compiles cz's out-of-line code for the CZ_SEPARATE_COMPILATION test build.
#include <cz/agent/src.hpp>
#include <cz/core/src.hpp>
