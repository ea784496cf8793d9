// cz/netlink/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/netlink/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/netlink/impl/address.ipp>
#include <cz/netlink/impl/error.ipp>
#include <cz/netlink/impl/link.ipp>
#include <cz/netlink/impl/message.ipp>
#include <cz/netlink/impl/neighbour.ipp>
#include <cz/netlink/impl/route.ipp>
#include <cz/netlink/impl/session.ipp>
#include <cz/netlink/impl/tun.ipp>
