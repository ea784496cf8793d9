// cz/ext4 and what it needs compiled once (linked with cz-ext4 alone).
#include <cz/core/compression_src.hpp>
#include <cz/core/src.hpp>
#include <cz/ext4/src.hpp>
#include <cz/tar/src.hpp>
