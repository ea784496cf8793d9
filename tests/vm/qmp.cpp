#include <cz/vm/qmp.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

using namespace cz::vm;

namespace {

qmp_message parse_one(std::string_view text, std::error_code& ec, std::size_t* used = nullptr) {
    qmp_message m;
    auto n = parse_qmp_message(cz::as_bytes(text), m, ec);
    if (used) *used = n;
    return m;
}

// A fake QEMU on the other end of a socketpair: replays a script of lines, checking what the
// client sends between them.
struct fake_qmp {
    asio::io_context ctx;
    asio::local::stream_protocol::socket client{ctx}, server{ctx};
    fake_qmp() { asio::local::connect_pair(client, server); }
    void send(const std::string& line) { asio::write(server, asio::buffer(line + "\r\n")); }
    std::string pending; // bytes read past the last line returned
    nlohmann::json receive() {
        auto n = asio::read_until(server, asio::dynamic_buffer(pending), "\r\n");
        auto line = pending.substr(0, n);
        pending.erase(0, n);
        return nlohmann::json::parse(line);
    }
};

const char* greeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}})";

} // namespace

TEST_SUITE("vm") {

TEST_CASE("qmp parser: greeting, reply, error, event") {
    std::error_code ec;
    std::size_t used = 0;
    auto g = parse_one(std::string(greeting) + "\r\n", ec, &used);
    REQUIRE(!ec);
    CHECK(used == std::strlen(greeting) + 2);
    CHECK(g.type == qmp_message::kind::greeting);
    CHECK(g.value["version"]["qemu"]["major"] == 7);

    auto r = parse_one("{\"return\": {\"running\": true, \"status\": \"running\"}, \"id\": 7}\n", ec);
    REQUIRE(!ec);
    CHECK(r.type == qmp_message::kind::reply);
    CHECK(r.id == 7u);
    CHECK(r.value["status"] == "running");

    auto e = parse_one(R"({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 3})" "\r\n", ec);
    REQUIRE(!ec);
    CHECK(e.type == qmp_message::kind::error);
    CHECK(e.name == "CommandNotFound");
    CHECK(e.description == "nope");
    CHECK(e.id == 3u);

    auto ev = parse_one(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})" "\r\n", ec);
    REQUIRE(!ec);
    CHECK(ev.type == qmp_message::kind::event);
    CHECK(ev.name == "SHUTDOWN");
    CHECK(ev.value["reason"] == "guest-shutdown");
    CHECK_FALSE(ev.id);
}

TEST_CASE("qmp parser: partial input, two messages in one buffer, and garbage") {
    std::error_code ec;
    std::string two = "{\"return\": {}, \"id\": 1}\r\n{\"event\": \"STOP\"}\r\n";
    // Every strict prefix of the first message needs more.
    for (std::size_t i = 0; i < two.find('\n'); ++i) {
        ec.clear();
        std::size_t used = 99;
        parse_one(two.substr(0, i), ec, &used);
        CHECK(ec == errc::need_more);
        CHECK(used == 0);
    }
    ec.clear();
    std::size_t used = 0;
    auto first = parse_one(two, ec, &used);
    REQUIRE(!ec);
    CHECK(first.type == qmp_message::kind::reply);
    auto second = parse_one(std::string_view(two).substr(used), ec);
    REQUIRE(!ec);
    CHECK(second.name == "STOP");
    CHECK(second.value.is_null());

    for (auto bad : {"not json\n", "[1,2]\n", "{}\n", "{\"event\": 5}\n", "\n", "\"str\"\r\n",
                     "{\"error\": \"flat\"}\n"}) {
        ec.clear();
        parse_one(bad, ec);
        CHECK_MESSAGE(ec == errc::qmp_bad_message, bad);
    }
    ec.clear();
    qmp_message m;
    std::string long_line(100, 'x');
    parse_qmp_message(cz::as_bytes(long_line), m, ec, 50);
    CHECK(ec == errc::qmp_message_too_long);
    ec.clear();
    long_line += "\n";
    parse_qmp_message(cz::as_bytes(long_line), m, ec, 50);
    CHECK(ec == errc::qmp_message_too_long);
}

TEST_CASE("qmp parser: events and errors without the fields QMP requires are malformed") {
    // QEMU names every event and class; fuzz_qmp_parser found {"event": ""} parsed as an event
    // with no name. Each of these must end in qmp_bad_message and consume nothing.
    for (auto bad : {
             R"({"event": "", "timestamp": {"seconds": 1, "microseconds": 2}})",
             R"({"event": "", "data": {}})",
             R"({"event": "STOP", "data": 5})",
             R"({"event": "STOP", "data": [1]})",
             R"({"event": "STOP", "data": "x"})",
             R"({"error": {}, "id": 1})",
             R"({"error": {"class": "", "desc": "x"}, "id": 1})",
             R"({"error": {"class": "GenericError"}, "id": 1})",
             R"({"error": {"class": 7, "desc": "x"}, "id": 1})",
             R"({"error": {"class": "GenericError", "desc": null}, "id": 1})",
         }) {
        std::error_code ec;
        std::size_t used = 99;
        parse_one(std::string(bad) + "\r\n", ec, &used);
        CHECK_MESSAGE(ec == errc::qmp_bad_message, bad);
        CHECK(used == 0);
    }
    // The smallest well-formed ones still parse: an event without data, an error with an empty
    // description.
    std::error_code ec;
    auto ev = parse_one("{\"event\": \"RESUME\"}\n", ec);
    REQUIRE(!ec);
    CHECK(ev.type == qmp_message::kind::event);
    CHECK(ev.name == "RESUME");
    CHECK(ev.value.is_null());
    auto e =
        parse_one(std::string(R"({"error": {"class": "GenericError", "desc": ""}})") + "\n", ec);
    REQUIRE(!ec);
    CHECK(e.type == qmp_message::kind::error);
    CHECK(e.name == "GenericError");
    CHECK(e.description.empty());
    CHECK_FALSE(e.id);
}

TEST_CASE("qmp client: a malformed event from QEMU ends async_run with qmp_bad_message") {
    fake_qmp f;
    qmp_client qmp(std::move(f.client));
    int events = 0;
    qmp.on_event([&](const qmp_message&) { ++events; });
    f.send(greeting);
    std::error_code hs_ec = make_error_code(errc::timed_out);
    qmp.async_handshake([&](std::error_code ec) { hs_ec = ec; });
    while (f.ctx.poll() > 0) {
    }
    CHECK(f.receive()["execute"] == "qmp_capabilities");
    f.send(R"({"return": {}})");
    f.ctx.run();
    f.ctx.restart();
    REQUIRE(!hs_ec);

    std::error_code run_ec = make_error_code(errc::timed_out);
    qmp.async_run([&](std::error_code ec) { run_ec = ec; });
    std::error_code cmd_ec;
    qmp.async_execute("query-status", nullptr,
                      [&](std::error_code ec, nlohmann::json) { cmd_ec = ec; });
    while (f.ctx.poll() > 0) {
    }
    CHECK(f.receive()["execute"] == "query-status");
    f.send(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})");
    f.send(R"({"event": "", "timestamp": {"seconds": 1, "microseconds": 3}})");
    f.ctx.run();
    CHECK(events == 1);
    CHECK(run_ec == errc::qmp_bad_message);
    CHECK(cmd_ec == errc::qmp_closed);
    CHECK(qmp.closed());
}

TEST_CASE("qmp client: handshake, commands with ids, events between replies, errors, close") {
    fake_qmp f;
    qmp_client qmp(std::move(f.client));
    std::vector<std::string> events;
    qmp.on_event([&](const qmp_message& m) { events.push_back(m.name); });

    f.send(greeting);
    std::error_code hs_ec = make_error_code(errc::timed_out);
    qmp.async_handshake([&](std::error_code ec) { hs_ec = ec; });
    // The client answers the greeting with qmp_capabilities; run until it has been sent.
    while (f.ctx.poll() > 0) {
    }
    auto caps = f.receive();
    CHECK(caps["execute"] == "qmp_capabilities");
    f.send(R"({"return": {}})");
    f.ctx.run();
    f.ctx.restart();
    REQUIRE(!hs_ec);
    CHECK(qmp.greeting()["version"]["qemu"]["minor"] == 2);

    std::error_code run_ec = make_error_code(errc::timed_out);
    qmp.async_run([&](std::error_code ec) { run_ec = ec; });
    std::error_code ec1, ec2;
    nlohmann::json r1, r2;
    qmp.async_execute("query-status", nullptr, [&](std::error_code ec, nlohmann::json r) {
        ec1 = ec;
        r1 = std::move(r);
    });
    qmp.async_execute("bogus", {{"x", 1}}, [&](std::error_code ec, nlohmann::json r) {
        ec2 = ec;
        r2 = std::move(r);
    });
    while (f.ctx.poll() > 0) {
    }
    auto c1 = f.receive();
    auto c2 = f.receive();
    CHECK(c1["execute"] == "query-status");
    CHECK_FALSE(c1.contains("arguments"));
    CHECK(c2["execute"] == "bogus");
    CHECK(c2["arguments"]["x"] == 1);
    f.send(R"({"event": "RESUME", "timestamp": {"seconds": 0, "microseconds": 0}})");
    f.send(R"({"return": {"status": "running", "running": true}, "id": )" + c1["id"].dump() + "}");
    f.send(R"({"event": "STOP"})");
    f.send(R"({"error": {"class": "CommandNotFound", "desc": "The command bogus has not been found"}, "id": )" + c2["id"].dump() + "}");
    while (f.ctx.poll() > 0) {
    }
    CHECK(!ec1);
    CHECK(r1["status"] == "running");
    CHECK(ec2 == errc::qmp_command_failed);
    CHECK(qmp.error_detail().message == "CommandNotFound: The command bogus has not been found");
    CHECK(events == std::vector<std::string>{"RESUME", "STOP"});

    // A command waiting when QEMU goes away fails with qmp_closed; run() ends cleanly.
    std::error_code ec3;
    qmp.async_execute("quit", nullptr, [&](std::error_code ec, nlohmann::json) { ec3 = ec; });
    while (f.ctx.poll() > 0) {
    }
    CHECK(f.receive()["execute"] == "quit");
    f.server.close();
    f.ctx.run();
    CHECK(ec3 == errc::qmp_closed);
    CHECK(!run_ec);
    CHECK(qmp.closed());
    // After the end, commands fail at once.
    f.ctx.restart();
    std::error_code ec4;
    qmp.async_execute("query-status", nullptr, [&](std::error_code ec, nlohmann::json) { ec4 = ec; });
    f.ctx.run();
    CHECK(ec4 == errc::qmp_closed);
}

TEST_CASE("qmp client: a peer that is not QMP fails the handshake") {
    for (std::string first : {std::string(R"({"return": {}})"), std::string("garbage"), std::string()}) {
        fake_qmp f;
        qmp_client qmp(std::move(f.client));
        if (first.empty()) f.server.close();
        else f.send(first);
        std::error_code ec;
        qmp.async_handshake([&](std::error_code e) { ec = e; });
        f.ctx.run();
        CHECK_MESSAGE((ec == errc::qmp_handshake_failed || ec == errc::qmp_bad_message), first);
    }
    // A capabilities negotiation answered with an error.
    fake_qmp f;
    qmp_client qmp(std::move(f.client));
    f.send(greeting);
    f.send(R"({"error": {"class": "GenericError", "desc": "no"}})");
    std::error_code ec;
    qmp.async_handshake([&](std::error_code e) { ec = e; });
    f.ctx.run();
    CHECK(ec == errc::qmp_handshake_failed);
    CHECK(qmp.error_detail().message == "GenericError: no");
}

} // TEST_SUITE
