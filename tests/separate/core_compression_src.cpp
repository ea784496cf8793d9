// cz/core and its compression piece compiled once (linked with cz-core-compression alone).
#include <cz/core/compression_src.hpp>
#include <cz/core/src.hpp>
