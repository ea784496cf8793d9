// cz/netlink together with Asio and the C library's network and mount headers, which clash with
// <linux/if.h> and <linux/fs.h>: this TU compiling is the test that cz's public headers never
// include <linux/*.h>.
#include <cz/netlink.hpp>

#include <asio.hpp>

#include <net/if.h>
#include <sys/mount.h>

#include <doctest/doctest.h>

TEST_SUITE("netlink") {

TEST_CASE("cz/netlink mixes with <net/if.h> and <sys/mount.h>") {
    // The C library's IFF_* (an enum and macros) and cz's constants agree.
    CHECK(cz::netlink::iff::up == IFF_UP);
    CHECK(cz::netlink::iff::multicast == IFF_MULTICAST);
    CHECK(cz::netlink::ifnamsiz == IFNAMSIZ);
    CHECK(MS_RDONLY == 1);
    // A name from <net/if.h> used next to cz's own check.
    CHECK(::if_nametoindex("cz-surely-absent0") == 0);
    CHECK(cz::netlink::valid_link_name("cz-surely-absent0") == false); // 17 characters
    CHECK(cz::netlink::valid_link_name("eth0"));
}

}
