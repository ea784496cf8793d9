#include <cz/netlink/message.hpp>

#include <cz/netlink/address.hpp>
#include <cz/netlink/link.hpp>
#include <cz/netlink/neighbour.hpp>
#include <cz/netlink/route.hpp>

#include <doctest/doctest.h>

#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace nl = cz::netlink;
using cz::byte_buffer;
using cz::bytes_view;

namespace {

template <class T>
void append_struct(byte_buffer& out, const T& v) {
    auto at = out.size();
    out.resize(at + sizeof v);
    std::memcpy(out.data() + at, &v, sizeof v);
}

void pad(byte_buffer& out) { out.resize(nl::align(out.size())); }

void append_attr(byte_buffer& out, std::uint16_t type, bytes_view value) {
    nl::attribute_header h{std::uint16_t(4 + value.size()), type};
    append_struct(out, h);
    out.insert(out.end(), value.begin(), value.end());
    pad(out);
}

// A message as the kernel would send it: header, then payload, padded.
void append_message(byte_buffer& out, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                    std::uint32_t port, bytes_view payload) {
    nl::message_header h{std::uint32_t(16 + payload.size()), type, flags, seq, port};
    append_struct(out, h);
    out.insert(out.end(), payload.begin(), payload.end());
    pad(out);
}

byte_buffer error_payload(int error, const nl::message_header& request, bytes_view echo,
                          bytes_view tlvs) {
    byte_buffer p;
    nl::error_header e{error, request};
    append_struct(p, e);
    p.insert(p.end(), echo.begin(), echo.end());
    pad(p);
    p.insert(p.end(), tlvs.begin(), tlvs.end());
    return p;
}

byte_buffer string_value(std::string_view s) {
    byte_buffer b = cz::to_buffer(s);
    b.push_back(std::byte{0});
    return b;
}

} // namespace

TEST_SUITE("netlink") {

TEST_CASE("builder lays out headers, attributes, strings and nested attributes") {
    nl::message_builder b;
    b.begin(nl::rtm::newlink, nl::nlm_f::ack | nl::nlm_f::create);
    nl::link_header h;
    h.index = 7;
    b.put(h);
    b.attr_u32(nl::ifla::mtu, 1400);
    b.attr_string(nl::ifla::ifname, "abc"); // 3 + NUL = 4: no padding
    auto info = b.begin_nested(nl::ifla::linkinfo);
    b.attr_string(nl::ifla_info::kind, "veth"); // 4 + NUL = 5: 3 bytes of padding
    b.end_nested(info);
    b.attr_u8(nl::ifla::operstate, 6);
    REQUIRE(!b.error());
    CHECK(b.stamp(41) == 1);

    bytes_view data = b.data();
    CHECK(data.size() % 4 == 0);
    nl::message m;
    std::error_code ec;
    CHECK(nl::parse_message(data, m, ec) == data.size());
    REQUIRE(!ec);
    CHECK(m.header.length == data.size());
    CHECK(m.header.type == nl::rtm::newlink);
    CHECK(m.header.flags == (nl::nlm_f::request | nl::nlm_f::ack | nl::nlm_f::create));
    CHECK(m.header.seq == 41);
    nl::link_header got;
    REQUIRE(nl::decode(m.payload, got));
    CHECK(got.index == 7);

    nl::attribute_reader r(m.payload.subspan(sizeof got));
    nl::attribute a;
    std::uint32_t mtu = 0;
    REQUIRE(r.next(a, ec));
    CHECK(a.type == nl::ifla::mtu);
    CHECK(nl::get_integer(a.value, mtu));
    CHECK(mtu == 1400);
    REQUIRE(r.next(a, ec));
    CHECK(a.type == nl::ifla::ifname);
    CHECK(a.value.size() == 4);
    CHECK(nl::get_string(a.value) == "abc");
    REQUIRE(r.next(a, ec));
    CHECK(a.type == nl::ifla::linkinfo);
    CHECK(a.nested);
    CHECK(a.value.size() == 4 + 5 + 3); // the kind attribute, with its padding
    nl::attribute inner;
    nl::attribute_reader nested(a.value);
    REQUIRE(nested.next(inner, ec));
    CHECK(inner.type == nl::ifla_info::kind);
    CHECK(nl::get_string(inner.value) == "veth");
    CHECK(!nested.next(inner, ec));
    CHECK(!ec);
    REQUIRE(r.next(a, ec));
    CHECK(a.type == nl::ifla::operstate);
    CHECK(a.value.size() == 1);
    CHECK(!r.next(a, ec));
    CHECK(!ec);
}

TEST_CASE("builder numbers a batch of messages consecutively") {
    nl::message_builder b;
    for (int i = 0; i < 3; ++i) {
        b.begin(nl::rtm::newaddr, nl::nlm_f::ack);
        b.put(nl::address_header{});
        b.attr_string(nl::ifa::label, std::string(std::size_t(i) + 1, 'x'));
    }
    CHECK(b.message_count() == 3);
    CHECK(b.stamp(0xfffffffe) == 3); // wraps like the kernel's u32
    nl::message_reader r(b.data());
    nl::message m;
    std::error_code ec;
    std::vector<std::uint32_t> seqs;
    while (r.next(m, ec)) seqs.push_back(m.header.seq);
    CHECK(!ec);
    CHECK(seqs == std::vector<std::uint32_t>{0xfffffffe, 0xffffffff, 0});
}

TEST_CASE("builder refuses attributes that nla_len cannot express") {
    nl::message_builder b;
    b.begin(nl::rtm::newlink, 0);
    byte_buffer big(70000);
    b.attr(nl::ifla::address, big);
    CHECK(b.error() == nl::errc::message_too_large);

    nl::message_builder n;
    n.begin(nl::rtm::newlink, 0);
    auto at = n.begin_nested(nl::ifla::linkinfo);
    for (int i = 0; i < 20; ++i) n.attr(nl::ifla_info::data, byte_buffer(4000));
    n.end_nested(at);
    CHECK(n.error() == nl::errc::message_too_large);
}

TEST_CASE("truncated messages are errors at every cut") {
    byte_buffer buf;
    byte_buffer payload(20, std::byte{0x5a});
    append_message(buf, nl::rtm::newlink, nl::nlm_f::multi, 1, 2, payload);
    append_message(buf, nl::nlmsg::done, nl::nlm_f::multi, 1, 2, byte_buffer(4));
    for (std::size_t cut = 0; cut < buf.size(); ++cut) {
        nl::message_reader r(bytes_view(buf).first(cut));
        nl::message m;
        std::error_code ec;
        int n = 0;
        while (r.next(m, ec)) ++n;
        if (cut == 0 || cut == 36) {
            CHECK(!ec); // cut exactly between messages: complete, just fewer
        } else {
            CHECK(ec == nl::errc::truncated);
        }
        CHECK(n == (cut >= 36 ? 1 : 0));
    }
}

TEST_CASE("a length smaller than the header is rejected, not looped on") {
    byte_buffer buf;
    nl::message_header h{8, nl::rtm::newlink, 0, 1, 2};
    append_struct(buf, h);
    nl::message m;
    std::error_code ec;
    CHECK(nl::parse_message(buf, m, ec) == 0);
    CHECK(ec == nl::errc::bad_length);

    byte_buffer attrs;
    nl::attribute_header a{2, 1};
    append_struct(attrs, a);
    nl::attribute at;
    CHECK(nl::parse_attribute(attrs, at, ec) == 0);
    CHECK(ec == nl::errc::bad_length);
}

TEST_CASE("misaligned buffers and unpadded lengths parse") {
    // A message whose length is not a multiple of 4 (21), padded to 24, then another; both in a
    // buffer that starts at an odd address.
    byte_buffer msgs;
    append_message(msgs, nl::rtm::newlink, 0, 5, 9, byte_buffer(5, std::byte{1}));
    append_message(msgs, nl::rtm::newlink, 0, 6, 9, byte_buffer(4, std::byte{2}));
    byte_buffer shifted(1 + msgs.size());
    std::copy(msgs.begin(), msgs.end(), shifted.begin() + 1);
    nl::message_reader r(bytes_view(shifted).subspan(1));
    nl::message m;
    std::error_code ec;
    REQUIRE(r.next(m, ec));
    CHECK(m.header.length == 21);
    CHECK(m.payload.size() == 5);
    REQUIRE(r.next(m, ec));
    CHECK(m.header.seq == 6);
    CHECK(m.payload.size() == 4);
    CHECK(!r.next(m, ec));
    CHECK(!ec);

    // The last message's padding may be missing.
    nl::message_reader last(bytes_view(msgs).first(16 + 5));
    REQUIRE(last.next(m, ec));
    CHECK(!last.next(m, ec));
    CHECK(!ec);

    // Attributes with odd lengths, padded, at an odd address.
    byte_buffer attrs;
    append_attr(attrs, 1, cz::as_bytes("a"));
    append_attr(attrs, 2, cz::as_bytes("bcdef"));
    append_attr(attrs, 3, {});
    byte_buffer odd(1 + attrs.size());
    std::copy(attrs.begin(), attrs.end(), odd.begin() + 1);
    nl::attribute_reader ar(bytes_view(odd).subspan(1));
    nl::attribute a;
    std::vector<std::size_t> sizes;
    while (ar.next(a, ec)) sizes.push_back(a.value.size());
    CHECK(!ec);
    CHECK(sizes == std::vector<std::size_t>{1, 5, 0});
}

TEST_CASE("a message missing the padding before the next one is caught") {
    // Length 17 but the next header starts right after, at 17 instead of 20: the reader looks
    // for it at 20 and finds the middle of a header.
    byte_buffer buf;
    nl::message_header h1{17, nl::rtm::newlink, 0, 1, 2};
    append_struct(buf, h1);
    buf.push_back(std::byte{0});
    nl::message_header h2{16, nl::nlmsg::done, 0, 0x01000000, 0x02000000};
    append_struct(buf, h2);
    nl::message_reader r(buf);
    nl::message m;
    std::error_code ec;
    REQUIRE(r.next(m, ec));
    CHECK(!r.next(m, ec));
    CHECK(ec == nl::errc::truncated); // bytes 20..33: a "length" of 0x00010000 + ... past the end
}

TEST_CASE("attribute tables: last one wins, unknown types skipped, malformed input rejected") {
    byte_buffer attrs;
    std::uint32_t one = 1, two = 2;
    append_attr(attrs, 4, {reinterpret_cast<const std::byte*>(&one), 4});
    append_attr(attrs, 40, cz::as_bytes("far"));
    append_attr(attrs, std::uint16_t(4 | nl::nla_f::net_byteorder), {reinterpret_cast<const std::byte*>(&two), 4});
    std::array<std::optional<bytes_view>, 8> t;
    std::error_code ec;
    REQUIRE(nl::parse_attributes(attrs, t, ec));
    std::uint32_t v = 0;
    REQUIRE(t[4]);
    CHECK(nl::get_integer(*t[4], v));
    CHECK(v == 2);
    CHECK(!t[3]);

    // An attribute that claims more than is left.
    byte_buffer bad;
    nl::attribute_header h{12, 1};
    append_struct(bad, h);
    bad.resize(8);
    CHECK(!nl::parse_attributes(bad, t, ec));
    CHECK(ec == nl::errc::truncated);
    // 1..3 stray bytes after the last attribute.
    byte_buffer tail = attrs;
    tail.push_back(std::byte{0});
    CHECK(!nl::parse_attributes(tail, t, ec));
    CHECK(ec == nl::errc::truncated);
    // Wrong-size integers are refused.
    std::uint16_t small = 0;
    CHECK(!nl::get_integer(*t[4], small));
}

TEST_CASE("reply reader: ACK, kernel error with extended ACK, capped error") {
    nl::reply_reader rr;
    std::vector<nl::message> out;
    std::error_code ec;
    nl::message_header req{40, nl::rtm::newaddr, nl::nlm_f::request | nl::nlm_f::ack, 10, 0};

    rr.reset(10, 1, 77);
    byte_buffer ack;
    append_message(ack, nl::nlmsg::error, nl::nlm_f::capped, 10, 77, error_payload(0, req, {}, {}));
    CHECK(rr.feed(ack, out, ec));
    CHECK(!ec);
    CHECK(rr.done());
    CHECK(!rr.kernel().code);

    // Uncapped: the request's 24 payload bytes are echoed before the TLVs.
    byte_buffer tlvs;
    append_attr(tlvs, nl::nlmsgerr_attr::msg, string_value("ipv4: Address already assigned."));
    std::uint32_t offset = 36;
    append_attr(tlvs, nl::nlmsgerr_attr::offs, {reinterpret_cast<const std::byte*>(&offset), 4});
    byte_buffer err;
    append_message(err, nl::nlmsg::error, nl::nlm_f::ack_tlvs, 11, 77,
                   error_payload(-EEXIST, req, byte_buffer(24, std::byte{0xee}), tlvs));
    rr.reset(11, 1, 77);
    CHECK(rr.feed(err, out, ec));
    CHECK(ec == std::errc::file_exists);
    CHECK(rr.kernel().message == "ipv4: Address already assigned.");
    CHECK(rr.kernel().has_offset);
    CHECK(rr.kernel().offset == 36);

    byte_buffer capped;
    append_message(capped, nl::nlmsg::error, nl::nlm_f::ack_tlvs | nl::nlm_f::capped, 12, 77,
                   error_payload(-EINVAL, req, {}, tlvs));
    rr.reset(12, 1, 77);
    CHECK(rr.feed(capped, out, ec));
    CHECK(ec == std::errc::invalid_argument);
    CHECK(rr.kernel().message == "ipv4: Address already assigned.");

    // An error without room for the request header is truncated.
    byte_buffer shortErr;
    std::int32_t e = -EPERM;
    append_message(shortErr, nl::nlmsg::error, 0, 13, 77, {reinterpret_cast<const std::byte*>(&e), 4});
    rr.reset(13, 1, 77);
    CHECK(!rr.feed(shortErr, out, ec));
    CHECK(ec == nl::errc::truncated);
    CHECK(out.empty());

    // Errnos the kernel never sends (found by the fuzzer: -INT_MIN overflowed).
    for (int bad : {1, -4096, std::numeric_limits<int>::min()}) {
        byte_buffer weird;
        append_message(weird, nl::nlmsg::error, 0, 14, 77, error_payload(bad, req, {}, {}));
        rr.reset(14, 1, 77);
        CHECK(!rr.feed(weird, out, ec));
        CHECK(ec == nl::errc::bad_payload);
    }
}

TEST_CASE("reply reader: multipart dump over several datagrams ends at NLMSG_DONE") {
    nl::reply_reader rr;
    rr.reset(100, 1, 5);
    std::vector<nl::message> out;
    std::error_code ec;
    byte_buffer d1, d2;
    append_message(d1, nl::rtm::newlink, nl::nlm_f::multi, 100, 5, byte_buffer(16));
    append_message(d1, nl::rtm::newlink, nl::nlm_f::multi, 100, 5, byte_buffer(16));
    append_message(d2, nl::rtm::newlink, nl::nlm_f::multi | nl::nlm_f::dump_intr, 100, 5, byte_buffer(16));
    append_message(d2, nl::nlmsg::done, nl::nlm_f::multi, 100, 5, byte_buffer(4));
    CHECK(!rr.feed(d1, out, ec));
    CHECK(!ec);
    CHECK(out.size() == 2);
    CHECK(rr.feed(d2, out, ec));
    CHECK(!ec);
    CHECK(out.size() == 3);
    CHECK(rr.interrupted());

    // A dump that fails: NLMSG_DONE carries the negative errno and an extended ACK.
    byte_buffer fail;
    std::int32_t e = -EMSGSIZE;
    byte_buffer payload(4);
    std::memcpy(payload.data(), &e, 4);
    append_attr(payload, nl::nlmsgerr_attr::msg, string_value("dump too big"));
    append_message(fail, nl::nlmsg::done, nl::nlm_f::multi | nl::nlm_f::ack_tlvs, 101, 5, payload);
    rr.reset(101, 1, 5);
    out.clear();
    CHECK(rr.feed(fail, out, ec));
    CHECK(ec == std::errc::message_size);
    CHECK(rr.kernel().message == "dump too big");
}

TEST_CASE("reply reader: sequence numbers and port ids are checked") {
    nl::reply_reader rr;
    std::vector<nl::message> out;
    std::error_code ec;
    nl::message_header req{16, nl::rtm::newlink, 0, 0, 0};
    byte_buffer d;
    append_message(d, nl::rtm::newlink, 0, 49, 5, byte_buffer(16)); // stale: an older request
    append_message(d, nl::rtm::newlink, 0, 50, 6, byte_buffer(16)); // another port
    append_message(d, nl::nlmsg::noop, 0, 50, 5, {});
    append_message(d, nl::nlmsg::error, 0, 50, 5, error_payload(0, req, {}, {}));
    rr.reset(50, 1, 5);
    CHECK(rr.feed(d, out, ec));
    CHECK(!ec);
    CHECK(out.empty());
    CHECK(rr.stray() == 2);

    byte_buffer future;
    append_message(future, nl::nlmsg::error, 0, 51, 5, error_payload(0, req, {}, {}));
    rr.reset(50, 1, 5);
    CHECK(!rr.feed(future, out, ec));
    CHECK(ec == nl::errc::sequence_mismatch);

    byte_buffer overrun;
    append_message(overrun, nl::nlmsg::overrun, 0, 50, 5, {});
    rr.reset(50, 1, 5);
    CHECK(!rr.feed(overrun, out, ec));
    CHECK(ec == nl::errc::overrun);

    byte_buffer reserved;
    append_message(reserved, 7, 0, 50, 5, {}); // below NLMSG_MIN_TYPE, not a control type
    rr.reset(50, 1, 5);
    CHECK(!rr.feed(reserved, out, ec));
    CHECK(ec == nl::errc::unexpected_message);

    byte_buffer extra;
    append_message(extra, nl::nlmsg::error, 0, 50, 5, error_payload(0, req, {}, {}));
    append_message(extra, nl::nlmsg::error, 0, 50, 5, error_payload(0, req, {}, {}));
    rr.reset(50, 1, 5);
    CHECK(!rr.feed(extra, out, ec));
    CHECK(ec == nl::errc::unexpected_message);
}

TEST_CASE("reply reader: a batch reports its first failure after every answer") {
    nl::reply_reader rr;
    std::vector<nl::message> out;
    std::error_code ec;
    nl::message_header req{16, nl::rtm::newaddr, 0, 0, 0};
    byte_buffer d;
    append_message(d, nl::nlmsg::error, 0, 7, 1, error_payload(0, req, {}, {}));
    append_message(d, nl::nlmsg::error, 0, 8, 1, error_payload(-ENODEV, req, {}, {}));
    rr.reset(7, 3, 1);
    CHECK(!rr.feed(d, out, ec));
    CHECK(!ec);
    byte_buffer d2;
    append_message(d2, nl::nlmsg::error, 0, 9, 1, error_payload(-EEXIST, req, {}, {}));
    CHECK(rr.feed(d2, out, ec));
    CHECK(ec == std::errc::no_such_device);
}

TEST_CASE("parse_link, parse_address, parse_route, parse_neighbour decode what a builder wrote") {
    std::error_code ec;
    nl::message m;
    {
        nl::message_builder b;
        b.begin(nl::rtm::newlink, 0);
        nl::link_header h;
        h.index = 3;
        h.type = 1;
        h.flags = nl::iff::up | nl::iff::broadcast;
        b.put(h);
        b.attr_string(nl::ifla::ifname, "veth0");
        b.attr_u32(nl::ifla::mtu, 9000);
        b.attr_u32(nl::ifla::master, 5);
        b.attr_u8(nl::ifla::operstate, nl::if_oper::up);
        auto mac = nl::parse_hw_address("02:00:00:00:00:0a");
        b.attr(nl::ifla::address, mac.view());
        std::array<std::uint64_t, 24> stats{};
        stats[0] = 11;
        stats[3] = 44;
        stats[17] = 7;
        b.attr(nl::ifla::stats64, std::as_bytes(std::span(stats)));
        auto info = b.begin_nested(nl::ifla::linkinfo);
        b.attr_string(nl::ifla_info::kind, "veth");
        b.attr_string(nl::ifla_info::slave_kind, "bridge");
        b.end_nested(info);
        REQUIRE(nl::parse_message(b.data(), m, ec));
        nl::link_info l;
        REQUIRE(nl::parse_link(m, l, ec));
        CHECK(l.index == 3);
        CHECK(l.name == "veth0");
        CHECK(l.mtu == 9000);
        CHECK(l.master == 5);
        CHECK(l.is_up());
        CHECK(l.kind == "veth");
        CHECK(l.slave_kind == "bridge");
        CHECK(nl::to_string(l.address) == "02:00:00:00:00:0a");
        REQUIRE(l.stats);
        CHECK(l.stats->rx_packets == 11);
        CHECK(l.stats->tx_bytes == 44);
        CHECK(l.stats->tx_carrier_errors == 7);
    }
    {
        nl::message_builder b;
        b.begin(nl::rtm::newlink, 0);
        b.put(nl::link_header{});
        b.attr_u16(nl::ifla::mtu, 1500); // wrong size
        REQUIRE(nl::parse_message(b.data(), m, ec));
        nl::link_info l;
        CHECK(!nl::parse_link(m, l, ec));
        CHECK(ec == nl::errc::bad_payload);
    }
    {
        nl::message_builder b;
        b.begin(nl::rtm::newaddr, 0);
        nl::address_header h;
        h.family = AF_INET;
        h.prefix_len = 24;
        h.index = 2;
        b.put(h);
        b.attr_address(nl::ifa::local, asio::ip::make_address("10.0.0.1"));
        b.attr_address(nl::ifa::address, asio::ip::make_address("10.0.0.2"));
        b.attr_address(nl::ifa::broadcast, asio::ip::make_address("10.0.0.255"));
        b.attr_string(nl::ifa::label, "eth0:1");
        b.attr_u32(nl::ifa::flags, nl::ifa_f::permanent | nl::ifa_f::noprefixroute);
        REQUIRE(nl::parse_message(b.data(), m, ec));
        nl::address_info a;
        REQUIRE(nl::parse_address(m, a, ec));
        CHECK(a.local.to_string() == "10.0.0.1");
        REQUIRE(a.peer);
        CHECK(a.peer->to_string() == "10.0.0.2");
        REQUIRE(a.broadcast);
        CHECK(a.broadcast->to_string() == "10.0.0.255");
        CHECK(a.label == "eth0:1");
        CHECK(a.flags == (nl::ifa_f::permanent | nl::ifa_f::noprefixroute));
        CHECK(nl::to_string(a) == "10.0.0.1/24");
    }
    {
        nl::message_builder b;
        b.begin(nl::rtm::newroute, 0);
        nl::route_header h;
        h.family = AF_INET6;
        h.dst_len = 64;
        h.table = 0;
        b.put(h);
        b.attr_u32(nl::rta::table, 1000);
        b.attr_address(nl::rta::dst, asio::ip::make_address("2001:db8::"));
        b.attr_address(nl::rta::gateway, asio::ip::make_address("fe80::1"));
        b.attr_u32(nl::rta::oif, 4);
        b.attr_u32(nl::rta::priority, 1024);
        REQUIRE(nl::parse_message(b.data(), m, ec));
        nl::route_info r;
        REQUIRE(nl::parse_route(m, r, ec));
        CHECK(r.table == 1000);
        CHECK(nl::destination_string(r) == "2001:db8::/64");
        CHECK(r.gateway->to_string() == "fe80::1");
        CHECK(r.oif == 4);
        CHECK(r.priority == 1024u);
        // A 5-byte address is no address.
        nl::message_builder bad;
        bad.begin(nl::rtm::newroute, 0);
        bad.put(h);
        bad.attr(nl::rta::gateway, byte_buffer(5));
        REQUIRE(nl::parse_message(bad.data(), m, ec));
        CHECK(!nl::parse_route(m, r, ec));
        CHECK(ec == nl::errc::bad_payload);
    }
    {
        nl::message_builder b;
        b.begin(nl::rtm::newneigh, 0);
        nl::neighbour_header h;
        h.family = AF_INET;
        h.index = 2;
        h.state = nl::nud::permanent;
        b.put(h);
        b.attr_address(nl::nda::dst, asio::ip::make_address("10.0.0.9"));
        b.attr(nl::nda::lladdr, nl::parse_hw_address("2:0:0:0:0:9").view());
        REQUIRE(nl::parse_message(b.data(), m, ec));
        nl::neighbour_info n;
        REQUIRE(nl::parse_neighbour(m, n, ec));
        CHECK(n.dst.to_string() == "10.0.0.9");
        CHECK(nl::to_string(n.lladdr) == "02:00:00:00:00:09");
        CHECK(nl::neighbour_state_names(n.state) == std::vector<std::string_view>{"PERMANENT"});
    }
    // Every parser refuses a message of another type and a payload shorter than its header.
    nl::message_builder shortmsg;
    shortmsg.begin(nl::rtm::newroute, 0);
    REQUIRE(nl::parse_message(shortmsg.data(), m, ec));
    nl::route_info r;
    CHECK(!nl::parse_route(m, r, ec));
    CHECK(ec == nl::errc::bad_payload);
    nl::link_info l;
    CHECK(!nl::parse_link(m, l, ec));
    CHECK(ec == nl::errc::unexpected_message);
}

TEST_CASE("hardware addresses, broadcast addresses, destinations") {
    std::error_code ec;
    CHECK(nl::to_string(nl::parse_hw_address("AA:b:00:1:2:3", ec)) == "aa:0b:00:01:02:03");
    for (const char* bad : {"", ":", "aa:", ":aa", "aa::bb", "aaa:bb", "g0:00", "aa:bb:"}) {
        nl::parse_hw_address(bad, ec);
        CHECK_MESSAGE(ec == nl::errc::invalid_hw_address, bad);
    }
    std::string too_long = "00";
    for (int i = 0; i < 32; ++i) too_long += ":00";
    nl::parse_hw_address(too_long, ec);
    CHECK(ec == nl::errc::invalid_hw_address);
    CHECK_THROWS_AS(nl::parse_hw_address("zz"), cz::system_error);

    auto v4 = asio::ip::make_address_v4("10.1.2.3");
    CHECK(nl::broadcast_for(v4, 24).to_string() == "10.1.2.255");
    CHECK(nl::broadcast_for(v4, 0).to_string() == "255.255.255.255");
    CHECK(nl::broadcast_for(v4, 31).to_string() == "10.1.2.3");
    CHECK(nl::broadcast_for(v4, 32).to_string() == "10.1.2.3");

    nl::route_info r;
    r.family = AF_INET;
    CHECK(nl::destination_string(r) == "default");
    r.dst = asio::ip::make_address("192.168.9.1");
    r.dst_len = 32;
    CHECK(nl::destination_string(r) == "192.168.9.1");

    CHECK(nl::valid_link_name("eth0"));
    CHECK(nl::valid_link_name("fifteen-chars-x"));
    CHECK(!nl::valid_link_name("sixteen-chars-xx"));
    CHECK(!nl::valid_link_name(""));
    CHECK(!nl::valid_link_name("a/b"));
    CHECK(!nl::valid_link_name("a b"));
    CHECK(!nl::valid_link_name("a:b"));
}

TEST_CASE("error categories name every enumerator") {
    for (int e = int(nl::errc::truncated); e <= int(nl::errc::invalid_argument); ++e) {
        std::error_code ec = nl::errc(e);
        CHECK(ec.category().name() == std::string("cz.netlink"));
        CHECK(ec.message().find("unknown") == std::string::npos);
    }
}

}
