// cz/core and cz/tar compiled once (linked with cz-tar alone: no codec, no libcrypto).
#include <cz/core/src.hpp>
#include <cz/tar/src.hpp>
