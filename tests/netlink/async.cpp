// The protocol type makes netlink sockets ordinary Asio sockets: an asynchronous dump with
// async_send / async_receive and the I/O-free builder and reply reader.
#include <cz/netlink/protocol.hpp>

#include <cz/netlink/link.hpp>
#include <cz/netlink/message.hpp>

#include "netns.hpp"

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>

#include <sys/socket.h>

namespace nl = cz::netlink;
using netns::ensure;

TEST_SUITE("netlink") {

TEST_CASE("async: a link dump over an Asio raw socket matches ip") {
    CZ_NETNS_TEST([] {
        netns::cz_session c;
        nl::create_veth(c.s, "as0", "as1");
        nl::create_bridge(c.s, "asbr");

        asio::io_context io;
        nl::raw_protocol::socket sock(io, nl::raw_protocol::route());
        sock.bind(nl::endpoint(0));
        std::uint32_t port = sock.local_endpoint().port();

        nl::message_builder req;
        req.begin(nl::rtm::getlink, nl::nlm_f::dump);
        req.put(nl::link_header{});
        req.stamp(7);
        nl::reply_reader reader;
        reader.reset(7, 1, port);

        std::vector<std::string> names;
        cz::byte_buffer buf(64 * 1024);
        std::vector<nl::message> batch;
        std::error_code final_ec;
        std::function<void()> receive = [&] {
            sock.async_receive(asio::buffer(buf.data(), buf.size()),
                               [&](std::error_code ec, std::size_t n) {
                                   if (ec) {
                                       final_ec = ec;
                                       return;
                                   }
                                   batch.clear();
                                   bool done = reader.feed(cz::bytes_view(buf.data(), n), batch, ec);
                                   for (const auto& m : batch) {
                                       nl::link_info l;
                                       std::error_code pec;
                                       if (nl::parse_link(m, l, pec)) names.push_back(l.name);
                                   }
                                   if (ec || done) {
                                       final_ec = ec;
                                       return;
                                   }
                                   receive();
                               });
        };
        sock.async_send_to(asio::buffer(req.data().data(), req.data().size()), nl::endpoint(0),
                           [&](std::error_code ec, std::size_t) {
                               if (ec) final_ec = ec;
                               else receive();
                           });
        io.run();
        ensure(!final_ec, "async dump: " + final_ec.message());
        std::set<std::string> cz_names(names.begin(), names.end());
        std::set<std::string> ip_names;
        for (const auto& l : netns::ip_json("link show")) ip_names.insert(l["ifname"].get<std::string>());
        netns::ensure_equal(cz_names, ip_names, "async link dump");
        ensure(names.size() == 4, "lo, as0, as1, asbr");
    });
}

}
