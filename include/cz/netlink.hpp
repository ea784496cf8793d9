// cz/netlink.hpp — rtnetlink for Asio: links (veth, bridge, dummy), addresses, routes,
// neighbours, TAP/TUN. Needs cz/core and standalone Asio (ASIO_STANDALONE from cz-netlink's
// compile args); never includes <linux/*.h>, so it mixes with <net/if.h> and <sys/mount.h>.
#pragma once

#include <cz/netlink/address.hpp>
#include <cz/netlink/constants.hpp>
#include <cz/netlink/error.hpp>
#include <cz/netlink/link.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/neighbour.hpp>
#include <cz/netlink/protocol.hpp>
#include <cz/netlink/route.hpp>
#include <cz/netlink/session.hpp>
#include <cz/netlink/tun.hpp>
