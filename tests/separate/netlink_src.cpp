// cz/core and cz/netlink compiled once (linked with cz-netlink alone).
#include <cz/core/src.hpp>
#include <cz/netlink/src.hpp>
