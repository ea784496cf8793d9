// netlink_veth: makes a veth pair in the current network namespace, gives each end an address,
// brings both up and prints them as the kernel reports them back.
//
//     netlink_veth NAME ADDRESS/PREFIX PEER ADDRESS/PREFIX
//     unshare -n netlink_veth veth0 10.0.0.1/24 veth1 10.0.0.2/24   # in a fresh namespace
//
// cz/netlink speaks rtnetlink over an Asio socket: one session, then `ip link add ... type veth`,
// `ip address add` and `ip link set up` as function calls. Each throwing call's cz::system_error
// names the link and carries the kernel's own message.
#include <cz/netlink.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include <charconv>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

// "10.0.0.1/24" -> an address_spec for link `index`; throws on a malformed address or prefix.
cz::netlink::address_spec parse_spec(int index, const std::string& text) {
    auto slash = text.find('/');
    if (slash == std::string::npos) throw std::invalid_argument(text + ": no /PREFIX");
    cz::netlink::address_spec spec;
    spec.index = index;
    std::error_code ec;
    spec.local = asio::ip::make_address(text.substr(0, slash), ec);
    if (ec) throw std::invalid_argument(text + ": bad address");
    unsigned prefix = 0;
    const char* end = text.data() + text.size();
    auto [stop, err] = std::from_chars(text.data() + slash + 1, end, prefix);
    if (err != std::errc() || stop != end || slash + 1 == text.size() ||
        prefix > (spec.local.is_v4() ? 32u : 128u))
        throw std::invalid_argument(text + ": bad prefix length");
    spec.prefix_len = std::uint8_t(prefix);
    return spec;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: netlink_veth NAME ADDRESS/PREFIX PEER ADDRESS/PREFIX\n");
        return 2;
    }
    namespace nl = cz::netlink;
    asio::io_context io;
    std::optional<nl::session> s;
    int created = 0; // the first end's index once the pair exists
    try {
        s.emplace(io.get_executor());
        nl::create_veth(*s, argv[1], argv[3]);
        created = nl::get_link(*s, argv[1]).index;
        for (int arg : {1, 3}) {
            nl::link_info link = nl::get_link(*s, argv[arg]);
            nl::add_address(*s, parse_spec(link.index, argv[arg + 1]));
            nl::set_link_up(*s, link.index, true);
        }
        // The addresses given (global scope); the kernel's own IPv6 link-local ones are left out.
        for (int arg : {1, 3}) {
            nl::link_info link = nl::get_link(*s, argv[arg]);
            for (const auto& a : nl::list_addresses(*s, 0, link.index))
                if (a.scope == nl::rt_scope::universe)
                    std::printf("%s %s %s\n", link.name.c_str(), nl::to_string(a).c_str(),
                                link.is_up() ? "up" : "down");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "netlink_veth: %s\n", e.what());
        std::error_code ignored; // a half-configured pair is not left behind
        if (created) nl::delete_link(*s, created, ignored);
        return 1;
    }
}
