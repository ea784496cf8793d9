// cz/core and its sha256 piece compiled once (linked with cz-core-sha256 alone).
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
