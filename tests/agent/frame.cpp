#include <cz/agent/frame.hpp>

#include "messages.hpp"
#include "support/support.hpp"

#include <memory>
#include <random>

using namespace cz_agent_test;
namespace agent = cz::agent;

namespace {

std::unique_ptr<agent::envelope> fresh() {
    auto m = std::make_unique<agent::envelope>();
    *m = cz_agent_Envelope_init_zero;
    return m;
}

// Every frame the reader cuts out of `input`, fed in pieces of the given sizes (cycled).
std::vector<cz::byte_buffer> read_all(cz::bytes_view input, std::vector<std::size_t> pieces,
                                      std::error_code& ec) {
    agent::frame_reader reader;
    std::vector<cz::byte_buffer> frames;
    std::size_t pos = 0, i = 0;
    while (pos < input.size()) {
        auto n = std::min(pieces[i++ % pieces.size()], input.size() - pos);
        reader.feed(input.subspan(pos, n));
        pos += n;
        for (auto f = reader.next(ec); !ec; f = reader.next(ec))
            frames.emplace_back(f.begin(), f.end());
        if (ec != agent::errc::need_more) return frames;
    }
    reader.finish(ec);
    return frames;
}

} // namespace

TEST_SUITE("agent") {

    TEST_CASE("every message kind survives encode, frame, decode, encode unchanged") {
        auto all = every_message();
        // Hello + 28 requests + 7 results + 2 events + StreamData + StreamCredit.
        CHECK(all.size() == 1 + 28 + 7 + 2 + 1 + 1);
        auto decoded = fresh();
        for (auto& m : all) {
            CAPTURE(agent::to_string(agent::kind_of(*m)));
            auto frame = frame_of(*m);
            REQUIRE(frame.size() > agent::frame_header_size);
            CHECK(cz::load_le<std::uint32_t>(frame.data()) ==
                  frame.size() - agent::frame_header_size);

            agent::frame_reader reader;
            reader.feed(frame);
            std::error_code ec;
            auto message = reader.next(ec);
            REQUIRE(!ec);
            std::string_view detail;
            agent::decode_message(message, *decoded, ec, &detail);
            REQUIRE_MESSAGE(!ec, ec.message(), ": ", detail);
            CHECK(decoded->which_kind == m->which_kind);
            // Nothing lost or clipped: the decoded message encodes to the same bytes.
            CHECK(frame_of(*decoded) == frame);
        }
    }

    TEST_CASE("decoded bytes fields are views into the frame, not copies") {
        auto m = fresh();
        m->which_kind = cz_agent_Envelope_stream_data_tag;
        m->kind.stream_data.stream = 9;
        m->kind.stream_data.data.set(cz::as_bytes("hello, stream"));
        auto frame = frame_of(*m);
        auto decoded = fresh();
        agent::decode_message(cz::bytes_view(frame).subspan(agent::frame_header_size), *decoded);
        auto view = decoded->kind.stream_data.data.view();
        CHECK(cz::as_chars(view) == "hello, stream");
        CHECK(view.data() >= frame.data());
        CHECK(view.data() + view.size() == frame.data() + frame.size()); // data is the last field
        CHECK(decoded->kind.stream_data.stream == 9);
        CHECK_FALSE(decoded->kind.stream_data.eof);

        // CreateProcess.config and WriteFile.data too.
        m = fresh();
        m->which_kind = cz_agent_Envelope_request_tag;
        m->kind.request.id = 3;
        m->kind.request.which_rpc = cz_agent_Request_create_process_tag;
        auto& create = m->kind.request.rpc.create_process;
        std::error_code ec;
        agent::set_string(create.container_id, "c1", ec);
        agent::set_string(create.process_id, "c1", ec);
        create.config.set(cz::as_bytes(R"({"ociVersion":"1.0.2"})"));
        create.stdout_stream = 2;
        create.terminal = true;
        frame = frame_of(*m);
        agent::decode_message(cz::bytes_view(frame).subspan(agent::frame_header_size), *decoded);
        auto& got = decoded->kind.request.rpc.create_process;
        CHECK(decoded->kind.request.which_rpc == cz_agent_Request_create_process_tag);
        CHECK(agent::get_string(got.container_id) == "c1");
        CHECK(cz::as_chars(got.config.view()) == R"({"ociVersion":"1.0.2"})");
        CHECK(got.config.view().data() > frame.data());
        CHECK(got.config.view().data() < frame.data() + frame.size());
        CHECK(got.stdout_stream == 2);
        CHECK(got.stdin_stream == 0);
        CHECK(got.terminal);
    }

    TEST_CASE("frames split at every byte boundary come out whole and in order") {
        cz::byte_buffer stream;
        std::vector<cz::byte_buffer> expected;
        auto all = every_message();
        for (auto& m : all) { // the small kinds (every split point costs a pass over the stream)
            auto f = frame_of(*m);
            if (f.size() > 2500 || stream.size() > 8000) continue;
            expected.emplace_back(f.begin() + agent::frame_header_size, f.end());
            stream.insert(stream.end(), f.begin(), f.end());
        }
        REQUIRE(expected.size() >= 5);
        for (std::size_t split = 0; split <= stream.size(); ++split) {
            CAPTURE(split);
            std::error_code ec;
            auto got = read_all(stream, {split ? split : 1, stream.size()}, ec);
            REQUIRE(!ec);
            REQUIRE(got == expected);
        }
        std::error_code ec;
        CHECK(read_all(stream, {1}, ec) == expected); // byte by byte
        CHECK(!ec);
        CHECK(read_all(stream, {7, 4096, 3}, ec) == expected);
        CHECK(!ec);
    }

    TEST_CASE("the reader reads straight into its own buffer and offsets name each frame") {
        auto a = frame_of(*every_message()[0]);
        agent::frame_reader reader;
        auto space = reader.prepare(a.size() * 2);
        REQUIRE(space.size() >= a.size() * 2);
        std::memcpy(space.data(), a.data(), a.size());
        std::memcpy(space.data() + a.size(), a.data(), a.size());
        reader.commit(a.size() * 2);
        std::error_code ec;
        CHECK(reader.next(ec).size() == a.size() - 4);
        CHECK(reader.frame_offset() == 0);
        CHECK(reader.next(ec).size() == a.size() - 4);
        CHECK(reader.frame_offset() == a.size());
        CHECK(reader.next(ec).empty());
        CHECK(ec == agent::errc::need_more);
        reader.finish(ec);
        CHECK(!ec);
    }

    TEST_CASE("bad lengths are refused before the frame is buffered; errors are sticky") {
        SUBCASE("over the maximum") {
            agent::frame_reader reader(64 << 10);
            cz::byte_buffer prefix(4);
            cz::store_le(prefix.data(), std::uint32_t((64 << 10) + 1));
            reader.feed(prefix);
            std::error_code ec;
            CHECK(reader.next(ec).empty());
            CHECK(ec == agent::errc::frame_too_large);
            reader.feed(cz::as_bytes("more"));
            CHECK(reader.next(ec).empty());
            CHECK(ec == agent::errc::frame_too_large);
            reader.finish(ec);
            CHECK(ec == agent::errc::frame_too_large);
        }
        SUBCASE("exactly the maximum is fine") {
            agent::frame_reader reader(64 << 10);
            cz::byte_buffer frame(4 + (64 << 10), std::byte{0});
            cz::store_le(frame.data(), std::uint32_t(64 << 10));
            reader.feed(frame);
            std::error_code ec;
            CHECK(reader.next(ec).size() == (64u << 10));
            CHECK(!ec);
        }
        SUBCASE("a huge length: 4 GiB - 1") {
            agent::frame_reader reader;
            reader.feed(cz::as_bytes("\xff\xff\xff\xff"));
            std::error_code ec;
            reader.next(ec);
            CHECK(ec == agent::errc::frame_too_large);
            CHECK(reader.buffered() == 4);
        }
        SUBCASE("zero length, after a good frame") {
            auto good = frame_of(*every_message()[0]);
            agent::frame_reader reader;
            reader.feed(good);
            reader.feed(cz::as_bytes(std::string_view("\0\0\0\0", 4)));
            std::error_code ec;
            CHECK(!reader.next(ec).empty());
            CHECK(reader.next(ec).empty());
            CHECK(ec == agent::errc::empty_frame);
            CHECK(reader.frame_offset() == good.size());
        }
    }

    TEST_CASE("a stream that ends inside a frame is truncated") {
        auto frame = frame_of(*every_message()[3]);
        for (std::size_t cut :
             {std::size_t(1), std::size_t(3), std::size_t(4), std::size_t(5), frame.size() - 1}) {
            CAPTURE(cut);
            agent::frame_reader reader;
            reader.feed(cz::bytes_view(frame).first(cut));
            std::error_code ec;
            CHECK(reader.next(ec).empty());
            CHECK(ec == agent::errc::need_more);
            reader.finish(ec);
            CHECK(ec == agent::errc::truncated);
        }
        agent::frame_reader empty;
        std::error_code ec;
        empty.finish(ec);
        CHECK(!ec);
    }

    TEST_CASE("malformed messages are errors, not crashes") {
        auto out = fresh();
        std::error_code ec;
        std::string_view detail;
        auto decode = [&](const pb_builder& b) {
            agent::decode_message(b.bytes, *out, ec, &detail);
            return ec;
        };

        SUBCASE("a wire type that does not exist") {
            pb_builder b;
            b.key(2, 7);
            CHECK(decode(b) == agent::errc::bad_message);
            CHECK(!detail.empty());
        }
        SUBCASE("a length past the end") {
            pb_builder b;
            b.key(2, 2).varint(100).varint(1);
            CHECK(decode(b) == agent::errc::bad_message);
        }
        SUBCASE("a varint that never ends") {
            pb_builder b;
            b.key(1, 0);
            for (int i = 0; i < 12; ++i)
                b.bytes.push_back(std::byte{0xff});
            CHECK(decode(b) == agent::errc::bad_message);
        }
        SUBCASE("a path longer than PATH_MAX") {
            pb_builder stat, req, env;
            stat.field(1, std::string(4096, 'p')); // 4096 characters + NUL > 4096
            req.field(1, 5).field(cz_agent_Request_stat_tag, stat);
            env.field(cz_agent_Envelope_request_tag, req);
            CHECK(decode(env) == agent::errc::field_too_large);
            CHECK(detail == "string overflow");
            // One less fits.
            pb_builder stat2, req2, env2;
            stat2.field(1, std::string(4095, 'p'));
            req2.field(1, 5).field(cz_agent_Request_stat_tag, stat2);
            env2.field(cz_agent_Envelope_request_tag, req2);
            CHECK(!decode(env2));
            CHECK(agent::get_string(out->kind.request.rpc.stat.path).size() == 4095);
        }
        SUBCASE("more nameservers than the bound") {
            pb_builder dns, req, env;
            for (int i = 0; i < 9; ++i)
                dns.field(2, "10.0.0.1");
            req.field(1, 5).field(cz_agent_Request_configure_dns_tag, dns);
            env.field(cz_agent_Envelope_request_tag, req);
            CHECK(decode(env) == agent::errc::field_too_large);
        }
        SUBCASE("a bytes field sent as a varint: no view of a copy") {
            pb_builder data, env;
            data.field(1, 4).field(3, 12345);
            env.field(cz_agent_Envelope_stream_data_tag, data);
            CHECK(decode(env) == agent::errc::bad_message);
        }
        SUBCASE("unknown fields are skipped, an unknown kind decodes to none") {
            pb_builder env;
            env.field(99, "from a newer peer");
            CHECK(!decode(env));
            CHECK(agent::kind_of(*out) == agent::message_kind::none);
        }
        SUBCASE("random garbage") {
            std::mt19937 rng(42);
            for (int i = 0; i < 20000; ++i) {
                pb_builder b;
                b.bytes.resize(rng() % 64);
                for (auto& x : b.bytes)
                    x = std::byte(rng());
                decode(b); // any outcome but a crash; sanitizers watch the rest
                if (!ec) CHECK(agent::kind_of(*out) <= agent::message_kind::stream_credit);
            }
        }
    }

    TEST_CASE("encoding refuses what the peer could not accept") {
        auto m = fresh();
        std::error_code ec;
        cz::byte_buffer out;
        agent::encode_frame(*m, agent::default_max_frame_size, out, ec);
        CHECK(ec == agent::errc::bad_message); // no kind: it would be an empty frame
        CHECK(out.empty());

        static std::array<std::byte, 70000> big{};
        m->which_kind = cz_agent_Envelope_stream_data_tag;
        m->kind.stream_data.stream = 1;
        m->kind.stream_data.data.set(big);
        agent::encode_frame(*m, 64 << 10, out, ec);
        CHECK(ec == agent::errc::message_too_large);
        CHECK(out.empty());
        agent::encode_frame(*m, 128 << 10, out, ec);
        CHECK(!ec);
        CHECK_THROWS_AS(agent::encode_frame(*m, 64 << 10, out), cz::system_error);
    }

    TEST_CASE("a StreamData head plus its payload is the frame encode_frame makes") {
        static std::array<std::byte, 70000> data;
        for (std::size_t i = 0; i < data.size(); ++i)
            data[i] = std::byte(i * 7);
        auto m = fresh();
        m->which_kind = cz_agent_Envelope_stream_data_tag;
        for (std::uint32_t stream : {0u, 1u, 127u, 128u, 300000u, 0xffffffffu})
            for (bool eof : {false, true})
                for (std::size_t size : {0, 1, 127, 128, 16383, 16384, 65516, 70000}) {
                    CAPTURE(stream);
                    CAPTURE(eof);
                    CAPTURE(size);
                    m->kind.stream_data.stream = stream;
                    m->kind.stream_data.eof = eof;
                    m->kind.stream_data.data.set(cz::bytes_view(data).first(size));
                    std::array<std::byte, agent::stream_data_head_max> head;
                    std::error_code ec;
                    auto n = agent::encode_stream_data_head(stream, eof, size, 64 << 10, head, ec);
                    if (size > agent::max_stream_payload(64 << 10)) {
                        CHECK(ec == agent::errc::message_too_large);
                        continue;
                    }
                    REQUIRE(!ec);
                    cz::byte_buffer mine(head.begin(), head.begin() + std::ptrdiff_t(n));
                    mine.insert(mine.end(), data.begin(), data.begin() + std::ptrdiff_t(size));
                    CHECK(mine == frame_of(*m));
                    CHECK(mine.size() <= 4 + (64u << 10));
                }
    }

    TEST_CASE("frame_writer queues frames until they are sent") {
        agent::frame_writer writer(64 << 10);
        auto all = every_message();
        std::error_code ec;
        cz::byte_buffer expected;
        for (auto& m : all) {
            writer.write(*m, ec);
            REQUIRE(!ec);
            auto f = frame_of(*m);
            expected.insert(expected.end(), f.begin(), f.end());
        }
        writer.write_stream_data(5, true, cz::as_bytes("tail"), ec);
        REQUIRE(!ec);
        cz::byte_buffer sent;
        while (!writer.empty()) { // a transport that takes 1000 bytes at a time
            auto chunk =
                writer.pending().first(std::min<std::size_t>(1000, writer.pending().size()));
            sent.insert(sent.end(), chunk.begin(), chunk.end());
            writer.consume(chunk.size());
        }
        REQUIRE(sent.size() > expected.size());
        CHECK(cz::byte_buffer(sent.begin(), sent.begin() + std::ptrdiff_t(expected.size())) ==
              expected);
        agent::frame_reader reader;
        reader.feed(cz::bytes_view(sent).subspan(expected.size()));
        auto last = fresh();
        agent::decode_message(reader.next(ec), *last);
        CHECK(last->kind.stream_data.stream == 5);
        CHECK(last->kind.stream_data.eof);
        CHECK(cz::as_chars(last->kind.stream_data.data.view()) == "tail");
    }

    TEST_CASE("frame_writer: a StreamData sent from elsewhere, its unsent rest queued") {
        // Whatever a writev of head + payload took (every split, the whole, nothing), what is
        // queued completes the frame, and the frame queued after it follows intact.
        std::array<std::byte, 300> data;
        for (std::size_t i = 0; i < data.size(); ++i)
            data[i] = std::byte(i * 13 + 1);
        std::array<std::byte, agent::stream_data_head_max> h;
        std::error_code ec;
        auto head = std::span<const std::byte>(h).first(
            agent::encode_stream_data_head(9, false, data.size(), 64 << 10, h, ec));
        REQUIRE(!ec);
        for (std::size_t sent = 0; sent <= head.size() + data.size(); ++sent) {
            CAPTURE(sent);
            agent::frame_writer writer(64 << 10);
            writer.queue_unsent(head, data, sent);
            writer.write_stream_data(9, true, cz::as_bytes("end"), ec);
            REQUIRE(!ec);
            cz::byte_buffer stream(head.begin(), head.end());
            stream.insert(stream.end(), data.begin(), data.end());
            stream.resize(sent); // what the transport took, then what the writer holds
            auto rest = writer.pending();
            stream.insert(stream.end(), rest.begin(), rest.end());
            agent::frame_reader reader;
            reader.feed(stream);
            auto m = fresh();
            agent::decode_message(reader.next(ec), *m);
            REQUIRE(!ec);
            CHECK(m->kind.stream_data.stream == 9);
            CHECK(!m->kind.stream_data.eof);
            CHECK(cz::byte_buffer(m->kind.stream_data.data.view().begin(),
                                  m->kind.stream_data.data.view().end()) ==
                  cz::byte_buffer(data.begin(), data.end()));
            agent::decode_message(reader.next(ec), *m);
            REQUIRE(!ec);
            CHECK(m->kind.stream_data.eof);
            CHECK(cz::as_chars(m->kind.stream_data.data.view()) == "end");
            reader.next(ec);
            CHECK(ec == agent::errc::need_more);
        }
    }

} // TEST_SUITE
