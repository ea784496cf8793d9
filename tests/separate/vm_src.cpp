// cz/vm and what it needs compiled once (linked with cz-vm alone).
#include <cz/core/compression_src.hpp>
#include <cz/core/src.hpp>
#include <cz/vm/src.hpp>
#include <cz/vsock/src.hpp>
