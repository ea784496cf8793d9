// cz/core and cz/vsock compiled once (linked with cz-vsock alone).
#include <cz/core/src.hpp>
#include <cz/vsock/src.hpp>
