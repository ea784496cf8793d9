#include <cz/agent/protocol.hpp>

#include "messages.hpp"
#include "support/support.hpp"

namespace agent = cz::agent;

TEST_SUITE("agent") {

    TEST_CASE("each side may send only its own kinds of message") {
        using k = agent::message_kind;
        for (k kind : {k::hello, k::stream_data, k::stream_credit}) {
            CHECK(agent::may_send(agent::role::host, kind));
            CHECK(agent::may_send(agent::role::guest, kind));
        }
        CHECK(agent::may_send(agent::role::host, k::request));
        CHECK_FALSE(agent::may_send(agent::role::guest, k::request));
        for (k kind : {k::response, k::event}) {
            CHECK_FALSE(agent::may_send(agent::role::host, kind));
            CHECK(agent::may_send(agent::role::guest, kind));
        }
        CHECK_FALSE(agent::may_send(agent::role::host, k::none));
        CHECK_FALSE(agent::may_send(agent::role::guest, k::none));
    }

    TEST_CASE("check_sender: kinds, directions and stream ids") {
        auto all = cz_agent_test::every_message();
        for (auto& m : all) {
            CAPTURE(agent::to_string(agent::kind_of(*m)));
            for (auto sender : {agent::role::host, agent::role::guest}) {
                std::error_code ec;
                agent::check_sender(sender, *m, ec);
                if (agent::may_send(sender, agent::kind_of(*m)))
                    CHECK(!ec);
                else
                    CHECK(ec == agent::errc::unexpected_message);
            }
        }
        agent::envelope m = cz_agent_Envelope_init_zero;
        std::error_code ec;
        agent::check_sender(agent::role::guest, m, ec);
        CHECK(ec == agent::errc::unknown_message);
        m.which_kind = 77;
        agent::check_sender(agent::role::guest, m, ec);
        CHECK(ec == agent::errc::unknown_message);

        m.which_kind = cz_agent_Envelope_stream_data_tag;
        m.kind.stream_data.stream = 0;
        agent::check_sender(agent::role::guest, m, ec);
        CHECK(ec == agent::errc::bad_stream);
        m.which_kind = cz_agent_Envelope_stream_credit_tag;
        m.kind.stream_credit.stream = 0;
        agent::check_sender(agent::role::host, m, ec);
        CHECK(ec == agent::errc::bad_stream);
        m.kind.stream_credit.stream = 4;
        agent::check_sender(agent::role::host, m, ec);
        CHECK(!ec);

        // A request for an RPC this build does not know passes: the guest answers it.
        m.which_kind = cz_agent_Envelope_request_tag;
        m.kind.request.id = 1;
        m.kind.request.which_rpc = 0;
        agent::check_sender(agent::role::host, m, ec);
        CHECK(!ec);
    }

    TEST_CASE("set_string and get_string keep to the field's bound") {
        char field[8];
        std::error_code ec;
        agent::set_string(field, "1234567", ec);
        CHECK(!ec);
        CHECK(agent::get_string(field) == "1234567");
        agent::set_string(field, "12345678", ec);
        CHECK(ec == agent::errc::message_too_large);
        CHECK(agent::get_string(field).empty());
        agent::set_string(field, std::string_view("a\0b", 3), ec);
        CHECK(ec == agent::errc::bad_message);
        std::memset(field, 'x', sizeof field); // no NUL at all
        CHECK(agent::get_string(field).size() == 8);
    }

    TEST_CASE("errors have names and messages") {
        std::error_code ec = agent::errc::credit_exceeded;
        CHECK(std::string(ec.category().name()) == "cz.agent");
        CHECK(ec.message() == "stream data beyond the granted credit");
        for (int e = 1; e <= int(agent::errc::connection_closed); ++e)
            CHECK(agent::make_error_code(agent::errc(e)).message() != "unknown cz.agent error");
    }

} // TEST_SUITE
