// Fuzzes cz/netlink's parsers with arbitrary bytes as if the kernel had sent them: the reply
// reader (ACKs, errors with extended ACK, NLMSG_DONE, sequence and port checks), every typed
// parser (link, address, route, neighbour) on every data message, and nested attributes walked
// to a fixed depth. They must end in a result or a clean error, never crash or read out of
// bounds. The expected sequence number and port id are taken from the first message, so real
// dumps captured from the kernel (the seed corpus) get past the checks.
#include <cz/netlink/address.hpp>
#include <cz/netlink/link.hpp>
#include <cz/netlink/message.hpp>
#include <cz/netlink/neighbour.hpp>
#include <cz/netlink/route.hpp>

#include <vector>

namespace nl = cz::netlink;

namespace {

void walk(cz::bytes_view data, int depth) {
    nl::attribute_reader r(data);
    nl::attribute a;
    std::error_code ec;
    while (r.next(a, ec))
        if (depth < 4 && a.value.size() >= 4) walk(a.value, depth + 1);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* bytes, std::size_t size) {
    cz::bytes_view data(reinterpret_cast<const std::byte*>(bytes), size);
    nl::message first;
    std::error_code ec;
    std::uint32_t seq = 1, port = 0;
    if (nl::parse_message(data, first, ec)) {
        seq = first.header.seq;
        port = first.header.port;
    }
    nl::reply_reader reader;
    reader.reset(seq, 2, port);
    std::vector<nl::message> out;
    reader.feed(data, out, ec);
    if (out.size() > size / 16) __builtin_trap(); // every message needs at least a header

    nl::message_reader all(data);
    nl::message m;
    while (all.next(m, ec)) {
        int error = 0;
        nl::kernel_error detail;
        nl::parse_error_payload(m, error, detail, ec);
        walk(m.payload, 0);
        for (std::uint16_t type :
             {nl::rtm::newlink, nl::rtm::newaddr, nl::rtm::newroute, nl::rtm::newneigh}) {
            nl::message as = m;
            as.header.type = type;
            nl::link_info l;
            nl::address_info a;
            nl::route_info r;
            nl::neighbour_info n;
            if (nl::parse_link(as, l, ec)) (void)nl::to_string(l.address);
            if (nl::parse_address(as, a, ec)) (void)nl::to_string(a);
            if (nl::parse_route(as, r, ec)) (void)nl::destination_string(r);
            if (nl::parse_neighbour(as, n, ec)) (void)nl::neighbour_state_names(n.state);
        }
    }
    return 0;
}
