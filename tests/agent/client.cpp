#include <cz/agent/client.hpp>

#include "support/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/use_awaitable.hpp>

#include <cerrno>
#include <thread>
#include <unistd.h>

namespace agent = cz::agent;

namespace {

// The guest's end, on a thread with blocking I/O, speaking the protocol through the same codec.
struct fake_guest {
    int fd;
    agent::frame_reader reader{agent::default_max_frame_size};
    std::unique_ptr<agent::envelope> m = std::make_unique<agent::envelope>();
    std::unique_ptr<agent::envelope> out = std::make_unique<agent::envelope>();

    explicit fake_guest(int f) : fd(f) {}
    ~fake_guest() { ::close(fd); }

    void send_raw(cz::bytes_view b) {
        while (!b.empty()) {
            auto n = ::write(fd, b.data(), b.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return; // the host hung up: the test's checks say whether it should have
            b = b.subspan(std::size_t(n));
        }
    }
    void send(const agent::envelope& e) {
        cz::byte_buffer f;
        agent::encode_frame(e, agent::default_max_frame_size, f);
        send_raw(f);
    }
    // The next message from the host into *m; false at the end of the stream.
    bool next() {
        std::error_code ec;
        while (true) {
            auto frame = reader.next(ec);
            if (!ec) {
                agent::decode_message(frame, *m, ec);
                agent::check_sender(agent::role::host, *m, ec);
                return !ec;
            }
            auto space = reader.prepare();
            auto n = ::read(fd, space.data(), space.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            reader.commit(std::size_t(n));
        }
    }
    void hello(std::uint32_t window = agent::default_stream_window) {
        *out = cz_agent_Envelope_init_zero;
        out->which_kind = cz_agent_Envelope_hello_tag;
        out->kind.hello =
            agent::make_hello(agent::role::guest, agent::default_max_frame_size, window);
        send(*out);
        REQUIRE(next());
        REQUIRE(agent::kind_of(*m) == agent::message_kind::hello);
    }
    void respond(std::uint64_t id, pb_size_t result) {
        *out = cz_agent_Envelope_init_zero;
        out->which_kind = cz_agent_Envelope_response_tag;
        out->kind.response.id = id;
        out->kind.response.which_result = result;
    }
};

// A connected client and guest; run() drives the io_context until both are done.
struct harness {
    asio::io_context ctx;
    asio::local::stream_protocol::socket host{ctx};
    int guest_fd = -1;
    harness() {
        asio::local::stream_protocol::socket guest(ctx);
        asio::local::connect_pair(host, guest);
        guest_fd = guest.release();
    }
};

} // namespace

TEST_SUITE("agent") {

    TEST_CASE("client: responses in any order, errors, events, one call per RPC") {
        harness h;
        std::thread guest([fd = h.guest_fd] {
            fake_guest g(fd);
            g.hello();
            std::uint64_t stat_id = 0, mkdir_id = 0;
            for (int i = 0; i < 2; ++i) {
                REQUIRE(g.next());
                REQUIRE(agent::kind_of(*g.m) == agent::message_kind::request);
                if (g.m->kind.request.which_rpc == cz_agent_Request_stat_tag) {
                    CHECK(agent::get_string(g.m->kind.request.rpc.stat.path) == "/etc/hostname");
                    stat_id = g.m->kind.request.id;
                } else {
                    CHECK(g.m->kind.request.which_rpc == cz_agent_Request_mkdir_tag);
                    CHECK(g.m->kind.request.rpc.mkdir.mode == 0755);
                    mkdir_id = g.m->kind.request.id;
                }
            }
            REQUIRE(stat_id != mkdir_id);
            g.respond(mkdir_id, cz_agent_Response_done_tag); // the later request first
            g.send(*g.out);
            g.respond(stat_id, cz_agent_Response_stat_tag);
            g.out->kind.response.result.stat.size = 42;
            g.send(*g.out);

            *g.out = cz_agent_Envelope_init_zero; // an event between responses
            g.out->which_kind = cz_agent_Envelope_event_tag;
            g.out->kind.event.which_kind = cz_agent_Event_process_exited_tag;
            std::error_code ec;
            agent::set_string(g.out->kind.event.kind.process_exited.container_id, "c1", ec);
            g.out->kind.event.kind.process_exited.status = 137;
            g.send(*g.out);

            REQUIRE(g.next()); // KillProcess: refused
            CHECK(g.m->kind.request.which_rpc == cz_agent_Request_kill_process_tag);
            g.respond(g.m->kind.request.id, cz_agent_Response_error_tag);
            g.out->kind.response.result.error.code = cz_agent_ErrorCode_ERROR_NOT_FOUND;
            agent::set_string(g.out->kind.response.result.error.message, "no process c1/x", ec);
            g.send(*g.out);
            REQUIRE(g.next()); // Shutdown: the guest goes away without answering
            CHECK(g.m->kind.request.which_rpc == cz_agent_Request_shutdown_tag);
        });

        agent::client c(std::move(h.host));
        std::vector<int> exits;
        c.on_event([&](const agent::event& e) { exits.push_back(e.kind.process_exited.status); });
        std::error_code run_ec = agent::errc::bad_message;
        bool done = false;
        asio::co_spawn(
            h.ctx,
            [&]() -> asio::awaitable<void> {
                auto s = co_await c.async_handshake(asio::use_awaitable);
                CHECK(s.version == agent::max_protocol_version);
                c.async_run([&](std::error_code ec) { run_ec = ec; });

                cz_agent_Stat stat = cz_agent_Stat_init_zero;
                std::error_code ec;
                agent::set_string(stat.path, "/etc/hostname", ec);
                cz_agent_Mkdir mkdir = cz_agent_Mkdir_init_zero;
                agent::set_string(mkdir.path, "/run/x", ec);
                mkdir.mode = 0755;
                // Both in flight at once, with callbacks as completion tokens.
                int answered = 0;
                std::uint64_t size = 0;
                c.async_call(stat, [&](std::error_code e, agent::response r) {
                    CHECK(!e);
                    CHECK(r.which_result == cz_agent_Response_stat_tag);
                    size = r.result.stat.size;
                    ++answered;
                });
                c.async_call(mkdir, [&](std::error_code e, agent::response r) {
                    CHECK(!e);
                    CHECK(r.which_result == cz_agent_Response_done_tag);
                    ++answered;
                });
                cz_agent_KillProcess kill = cz_agent_KillProcess_init_zero;
                agent::set_string(kill.container_id, "c1", ec);
                agent::set_string(kill.process_id, "x", ec);
                kill.signal = 9;
                auto [kill_ec, r] =
                    co_await c.async_call(kill, asio::experimental::as_tuple(asio::use_awaitable));
                CHECK(kill_ec == agent::errc::rpc_failed);
                CHECK(r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND);
                CHECK(agent::get_string(r.result.error.message) == "no process c1/x");
                CHECK(answered == 2);
                CHECK(size == 42);
                auto [shutdown_ec, r2] =
                    co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                          asio::experimental::as_tuple(asio::use_awaitable));
                CHECK(shutdown_ec == agent::errc::connection_closed);
                done = true;
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        h.ctx.run();
        guest.join();
        CHECK(done);
        CHECK(!run_ec); // the guest closed cleanly between frames
        CHECK(exits == std::vector<int>{137});
    }

    TEST_CASE("client: once Shutdown is answered, the host closes the connection") {
        // cz-init powers off when it sees that close: it is how the guest knows the answer
        // arrived (bytes written into a virtqueue are lost with the power).
        harness h;
        bool host_closed = false;
        std::thread guest([fd = h.guest_fd, &host_closed] {
            fake_guest g(fd);
            g.hello();
            REQUIRE(g.next());
            CHECK(g.m->kind.request.which_rpc == cz_agent_Request_shutdown_tag);
            g.respond(g.m->kind.request.id, cz_agent_Response_done_tag);
            g.send(*g.out);
            host_closed = !g.next(); // eof, with nothing else sent
        });
        agent::client c(std::move(h.host));
        std::error_code run_ec = agent::errc::bad_message, shutdown_ec = agent::errc::bad_message;
        asio::co_spawn(
            h.ctx,
            [&]() -> asio::awaitable<void> {
                co_await c.async_handshake(asio::use_awaitable);
                c.async_run([&](std::error_code ec) { run_ec = ec; });
                auto [e, r] =
                    co_await c.async_call(cz_agent_Shutdown(cz_agent_Shutdown_init_zero),
                                          asio::experimental::as_tuple(asio::use_awaitable));
                shutdown_ec = e;
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        h.ctx.run();
        guest.join();
        CHECK(!shutdown_ec);
        CHECK(!run_ec);
        CHECK(host_closed);
    }

    TEST_CASE("client: streams both ways within the credit, many windows' worth") {
        harness h;
        constexpr std::size_t to_guest = 300 << 10, to_host = 1 << 20;
        constexpr std::uint32_t guest_window = 16 << 10;
        auto pattern = [](std::size_t i, int salt) { return std::byte((i * 7 + salt) % 253); };
        std::thread guest([&, fd = h.guest_fd] {
            fake_guest g(fd);
            g.hello(guest_window);
            // Stream 3, host -> guest: read it all, granting credit back as it is consumed.
            agent::stream_buffer in(guest_window);
            std::size_t got = 0;
            bool in_order = true;
            while (!in.finished()) {
                REQUIRE(g.next());
                REQUIRE(agent::kind_of(*g.m) == agent::message_kind::stream_data);
                REQUIRE(g.m->kind.stream_data.stream == 3);
                std::error_code ec;
                in.push(g.m->kind.stream_data.data.view(), g.m->kind.stream_data.eof, ec);
                REQUIRE(!ec); // the host kept within the guest's window
                std::array<std::byte, 5000> buf;
                std::uint32_t grant = 0;
                while (auto n = in.read(buf, grant)) {
                    for (std::size_t i = 0; i < n; ++i)
                        in_order &= buf[i] == pattern(got + i, 1);
                    got += n;
                    if (grant) {
                        *g.out = cz_agent_Envelope_init_zero;
                        g.out->which_kind = cz_agent_Envelope_stream_credit_tag;
                        g.out->kind.stream_credit.stream = 3;
                        g.out->kind.stream_credit.bytes = grant;
                        g.send(*g.out);
                    }
                }
            }
            CHECK(got == to_guest);
            CHECK(in_order);
            // Stream 2, guest -> host: 1 MiB within the host's window, then eof.
            agent::send_credit out(agent::default_stream_window);
            cz::byte_buffer data(to_host);
            for (std::size_t i = 0; i < data.size(); ++i)
                data[i] = pattern(i, 2);
            std::size_t sent = 0;
            while (sent < to_host) {
                auto n = out.take(std::min<std::size_t>(to_host - sent, 20000));
                if (n == 0) { // wait for the host's credit
                    REQUIRE(g.next());
                    REQUIRE(agent::kind_of(*g.m) == agent::message_kind::stream_credit);
                    std::error_code ec;
                    out.grant(g.m->kind.stream_credit.bytes, ec);
                    REQUIRE(!ec);
                    continue;
                }
                std::array<std::byte, agent::stream_data_head_max> head;
                std::error_code ec;
                bool last = sent + n == to_host;
                auto len = agent::encode_stream_data_head(2, last, n, agent::default_max_frame_size,
                                                          head, ec);
                REQUIRE(!ec);
                g.send_raw(cz::bytes_view(head).first(len));
                g.send_raw(cz::bytes_view(data).subspan(sent, n));
                sent += n;
            }
            while (g.next()) {
            } // credit until the host hangs up
        });

        agent::client c(std::move(h.host), {.max_frame_size = agent::default_max_frame_size,
                                            .stream_window = agent::default_stream_window});
        std::size_t read_total = 0, written = 0;
        bool host_in_order = true, reader_done = false;
        asio::co_spawn(
            h.ctx,
            [&]() -> asio::awaitable<void> {
                co_await c.async_handshake(asio::use_awaitable);
                CHECK(c.current_session().send_window == guest_window);
                c.async_run([](std::error_code) {});
                std::error_code ec;
                c.open_stream(3, ec);
                REQUIRE(!ec);
                c.open_stream(2, ec);
                REQUIRE(!ec);
                c.open_stream(2, ec);
                CHECK(ec == agent::errc::bad_stream);
                asio::co_spawn(
                    h.ctx,
                    [&]() -> asio::awaitable<void> {
                        std::array<std::byte, 7000> buf;
                        while (true) {
                            auto [e, n] = co_await c.async_read_stream(
                                2, buf, asio::experimental::as_tuple(asio::use_awaitable));
                            if (e) {
                                CHECK(e == asio::error::eof);
                                break;
                            }
                            for (std::size_t i = 0; i < n; ++i)
                                host_in_order &= buf[i] == pattern(read_total + i, 2);
                            read_total += n;
                        }
                        reader_done = true;
                        c.close();
                    },
                    asio::detached);
                cz::byte_buffer data(to_guest);
                for (std::size_t i = 0; i < data.size(); ++i)
                    data[i] = pattern(i, 1);
                written = co_await c.async_write_stream(3, data, true, asio::use_awaitable);
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        h.ctx.run();
        guest.join();
        CHECK(written == to_guest);
        CHECK(reader_done);
        CHECK(read_total == to_host);
        CHECK(host_in_order);
    }

    TEST_CASE("client: a hostile guest ends the connection with an error, never the host") {
        struct scenario {
            const char* name;
            std::function<void(fake_guest&)> act; // after the handshake
            std::error_code expected;
        };
        auto frame_with_length = [](std::uint32_t length) {
            cz::byte_buffer b(4);
            cz::store_le(b.data(), length);
            return b;
        };
        std::vector<scenario> scenarios = {
            {"a frame larger than the maximum",
             [&](fake_guest& g) {
                 g.send_raw(frame_with_length(agent::default_max_frame_size + 1));
             },
             agent::errc::frame_too_large},
            {"a 4 GiB frame", [&](fake_guest& g) { g.send_raw(frame_with_length(0xffffffff)); },
             agent::errc::frame_too_large},
            {"a zero-length frame", [&](fake_guest& g) { g.send_raw(frame_with_length(0)); },
             agent::errc::empty_frame},
            {"garbage",
             [&](fake_guest& g) {
                 auto b = frame_with_length(8);
                 for (int i = 0; i < 8; ++i)
                     b.push_back(std::byte{0xff});
                 g.send_raw(b);
             },
             agent::errc::bad_message},
            {"stops mid-frame",
             [&](fake_guest& g) {
                 auto b = frame_with_length(100);
                 b.push_back(std::byte{0x1a});
                 g.send_raw(b);
             },
             agent::errc::truncated},
            {"a request, which only the host sends",
             [&](fake_guest& g) {
                 *g.out = cz_agent_Envelope_init_zero;
                 g.out->which_kind = cz_agent_Envelope_request_tag;
                 g.out->kind.request.which_rpc = cz_agent_Request_sync_tag;
                 g.send(*g.out);
             },
             agent::errc::unexpected_message},
            {"a response to no request",
             [&](fake_guest& g) {
                 g.respond(999, cz_agent_Response_done_tag);
                 g.send(*g.out);
             },
             agent::errc::unexpected_message},
            {"a second hello",
             [&](fake_guest& g) {
                 *g.out = cz_agent_Envelope_init_zero;
                 g.out->which_kind = cz_agent_Envelope_hello_tag;
                 g.out->kind.hello = agent::make_hello(agent::role::guest);
                 g.send(*g.out);
             },
             agent::errc::unexpected_message},
            {"stream data beyond the credit",
             [&](fake_guest& g) {
                 static cz::byte_buffer big(70000);
                 agent::frame_writer w;
                 std::error_code ec;
                 // One frame more than the window the client granted.
                 for (std::size_t i = 0; i <= agent::default_host_stream_window / big.size(); ++i)
                     w.write_stream_data(5, false, big, ec);
                 g.send_raw(w.pending());
             },
             agent::errc::credit_exceeded},
            {"credit never owed",
             [&](fake_guest& g) {
                 *g.out = cz_agent_Envelope_init_zero;
                 g.out->which_kind = cz_agent_Envelope_stream_credit_tag;
                 g.out->kind.stream_credit.stream = 5;
                 g.out->kind.stream_credit.bytes = 1;
                 g.send(*g.out);
             },
             agent::errc::credit_overflow},
        };
        for (auto& sc : scenarios) {
            CAPTURE(sc.name);
            harness h;
            std::thread guest([&, fd = h.guest_fd] {
                fake_guest g(fd);
                g.hello();
                REQUIRE(g.next()); // the request the host keeps pending
                sc.act(g);
                ::shutdown(g.fd, SHUT_WR);
                while (g.next()) {
                }
            });
            agent::client c(std::move(h.host));
            std::error_code run_ec, call_ec, read_ec;
            asio::co_spawn(
                h.ctx,
                [&]() -> asio::awaitable<void> {
                    co_await c.async_handshake(asio::use_awaitable);
                    std::error_code ec;
                    c.open_stream(5, ec);
                    c.async_run([&](std::error_code e) { run_ec = e; });
                    c.async_call(cz_agent_Sync(cz_agent_Sync_init_zero),
                                 [&](std::error_code e, agent::response) { call_ec = e; });
                    static std::array<std::byte, 16> buf;
                    auto [e, n] = co_await c.async_read_stream(
                        5, buf, asio::experimental::as_tuple(asio::use_awaitable));
                    read_ec = e;
                },
                [](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            h.ctx.run();
            guest.join();
            CHECK(run_ec == sc.expected);
            CHECK(call_ec == sc.expected);
            if (sc.expected != agent::errc::credit_exceeded) CHECK(read_ec == sc.expected);
        }
    }

} // TEST_SUITE
