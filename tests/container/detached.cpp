// Detached containers without a VM: state files (atomic, locked, liveness through the
// supervisor's lock), name and id-prefix lookup, the log's records and rotation, the control
// protocol's frames (every split of a stream, every bad length and type).
#include <cz/container/control.hpp>
#include <cz/container/log.hpp>
#include <cz/container/state.hpp>
#include <cz/container/supervisor.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

namespace ct = cz::container;
namespace fs = std::filesystem;

namespace {

ct::container_state make_state(std::string id, std::string name) {
    ct::container_state s;
    s.id = std::move(id);
    s.name = std::move(name);
    s.image = "busybox";
    s.command = {"sh", "-c", "echo \xff"};
    return s;
}

std::string hex_id(char c) {
    return std::string(64, c);
}

std::string read_all_log(const fs::path& dir, long tail = -1) {
    std::string out;
    ct::log_read_options o;
    o.tail = tail;
    std::error_code ec;
    ct::read_log(
        dir, o,
        [&](const ct::log_record& r) {
            out += r.stream == 2 ? "E:" : "";
            out += cz::as_chars(r.data);
        },
        ec);
    REQUIRE_FALSE(ec);
    return out;
}

} // namespace

TEST_SUITE("container") {

    TEST_CASE("detached: state JSON round trip and refusals") {
        auto s = make_state(hex_id('a'), "web");
        s.status = ct::container_status::exited;
        s.exit_code = 3;
        s.error = "why";
        std::error_code ec;
        std::string why;
        auto back = ct::state_from_json(ct::to_json(s), ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(back.id == s.id);
        CHECK(back.name == "web");
        CHECK(back.status == ct::container_status::exited);
        CHECK(back.exit_code == 3);
        CHECK(back.command.size() == 3);
        CHECK(back.command[2] == "echo \xef\xbf\xbd"); // invalid UTF-8 replaced, not refused

        for (const char* bad : {"", "[]", "{}", R"({"id":"x"})"}) {
            ct::state_from_json(bad, ec, &why);
            CHECK(ec == ct::errc::bad_state);
        }
        auto j = ct::to_json(s);
        auto wrong = j;
        wrong.replace(wrong.find("\"exited\""), 8, "\"zombie\"");
        ct::state_from_json(wrong, ec, &why);
        CHECK(ec == ct::errc::bad_state);
        CHECK(why.find("status") != std::string::npos);
        s.name = "bad/name";
        ct::state_from_json(ct::to_json(s), ec, &why);
        CHECK(ec == ct::errc::bad_state);
        CHECK(why.find("name") != std::string::npos);
    }

    TEST_CASE("detached: ids, names and prefixes") {
        std::vector<ct::container_state> all = {make_state("abc1" + std::string(60, '0'), "web"),
                                                make_state("abc2" + std::string(60, '0'), "db"),
                                                make_state("ffff" + std::string(60, '0'), "abc1")};
        std::error_code ec;
        std::string why;
        CHECK(ct::match_container(all, "web", ec) == 0);
        CHECK(ct::match_container(all, "db", ec) == 1);
        // A name wins over an id prefix that it also is.
        CHECK(ct::match_container(all, "abc1", ec) == 2);
        CHECK(ct::match_container(all, "abc2", ec) == 1);
        CHECK(ct::match_container(all, "f", ec) == 2);
        CHECK(ct::match_container(all, all[1].id, ec) == 1);
        ct::match_container(all, "abc", ec, &why);
        CHECK(ec == ct::errc::ambiguous_container);
        CHECK(why.find("abc100000000") != std::string::npos);
        ct::match_container(all, "0", ec, &why);
        CHECK(ec == ct::errc::no_such_container);
        ct::match_container(all, "", ec, &why);
        CHECK(ec == ct::errc::no_such_container);
    }

    TEST_CASE("detached: created containers, unique names, a dead supervisor, removal") {
        cz_test::temp_dir root;
        auto a = make_state(ct::new_container_id(), "web");
        std::error_code ec;
        std::string why;
        auto lock_a = ct::create_container(root.path, a, ec, &why);
        REQUIRE_FALSE(ec);
        auto dir_a = ct::container_dir(root.path, a.id);
        struct stat st {};
        REQUIRE(::stat(dir_a.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0700);
        CHECK(ct::supervisor_alive(dir_a));

        auto b = make_state(ct::new_container_id(), "web");
        ct::create_container(root.path, b, ec, &why);
        CHECK(ec == ct::errc::name_in_use);
        b.name = "";
        auto lock_b = ct::create_container(root.path, b, ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(b.name == b.id.substr(0, 12));

        auto found = ct::find_container(root.path, "web", ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(found.id == a.id);
        CHECK(found.status == ct::container_status::created);
        ct::update_state(
            dir_a,
            [](ct::container_state& s) {
                s.status = ct::container_status::running;
                s.supervisor_pid = 4242;
            },
            ec);
        REQUIRE_FALSE(ec);
        CHECK(ct::find_container(root.path, a.id.substr(0, 8), ec).status ==
              ct::container_status::running);

        // Running, but its lock is free: the supervisor died. Recorded, with the reason.
        ct::remove_container(root.path, found, ec);
        CHECK(ec == ct::errc::still_running);
        lock_a.reset();
        CHECK_FALSE(ct::supervisor_alive(dir_a));
        auto dead = ct::find_container(root.path, "web", ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(dead.status == ct::container_status::exited);
        CHECK(dead.exit_code == 137);
        CHECK(dead.error.find("4242") != std::string::npos);
        CHECK(ct::read_state(dir_a, ec).status == ct::container_status::exited);
        auto list = ct::list_containers(root.path, ec);
        REQUIRE(list.size() == 2);
        CHECK(list[0].id == a.id); // oldest first

        ct::remove_container(root.path, dead, ec);
        REQUIRE_FALSE(ec);
        CHECK_FALSE(fs::exists(dir_a));
        ct::find_container(root.path, "web", ec);
        CHECK(ec == ct::errc::no_such_container);
        // The name is free again.
        auto c = make_state(ct::new_container_id(), "web");
        ct::create_container(root.path, c, ec, &why);
        CHECK_FALSE(ec);

        // A state file that does not parse is an error naming the file.
        cz_test::write_file(ct::container_dir(root.path, b.id) / "state.json", "{\"id\":");
        ct::list_containers(root.path, ec, &why);
        CHECK(ec == ct::errc::bad_state);
        CHECK(why.find("state.json") != std::string::npos);
    }

    TEST_CASE("detached: a supervisor lock dies with its holder's process") {
        cz_test::temp_dir root;
        auto s = make_state(ct::new_container_id(), "x");
        std::error_code ec;
        auto lock = ct::create_container(root.path, s, ec);
        REQUIRE_FALSE(ec);
        auto dir = ct::container_dir(root.path, s.id);
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::pause();
            ::_exit(0);
        }
        lock.reset(); // only the child holds it now
        CHECK(ct::supervisor_alive(dir));
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        CHECK_FALSE(ct::supervisor_alive(dir));
    }

    TEST_CASE("detached: log records, lines, tail and rotation") {
        cz_test::temp_dir dir;
        std::error_code ec;
        ct::log_options o;
        o.max_bytes = 200;
        o.max_files = 3;
        ct::log_writer w(dir.path, o, ec);
        REQUIRE_FALSE(ec);
        w.write(1, cz::as_bytes("one\ntwo\nthr"), 1, ec);
        w.write(1, cz::as_bytes("ee\n"), 2, ec);
        w.write(2, cz::as_bytes(std::string("bin\0\xff\n", 6)), 3, ec);
        REQUIRE_FALSE(ec);
        CHECK(read_all_log(dir.path) == "one\ntwo\nthree\nE:" + std::string("bin\0\xff\n", 6));
        CHECK(read_all_log(dir.path, 1) == "E:" + std::string("bin\0\xff\n", 6));
        CHECK(read_all_log(dir.path, 2) == "three\nE:" + std::string("bin\0\xff\n", 6));
        CHECK(read_all_log(dir.path, 0).empty());
        CHECK(read_all_log(dir.path, 100).size() == read_all_log(dir.path).size());

        // Past 200 bytes a file rotates; three files at most: the oldest lines go.
        for (int i = 0; i < 100; ++i)
            w.write(1, cz::as_bytes("line " + std::to_string(i) + "\n"), 10 + i, ec);
        REQUIRE_FALSE(ec);
        CHECK(fs::exists(dir / "container.log.1"));
        CHECK(fs::exists(dir / "container.log.2"));
        CHECK_FALSE(fs::exists(dir / "container.log.3"));
        for (const char* f : {"container.log", "container.log.1", "container.log.2"})
            CHECK(fs::file_size(dir / f) <= 200);
        auto text = read_all_log(dir.path);
        CHECK(text.find("one\n") == std::string::npos);
        CHECK(text.size() >= 12);
        CHECK(text.substr(text.size() - 8) == "line 99\n");
        CHECK(read_all_log(dir.path, 2) == "line 98\nline 99\n");
        // Consecutive lines, none lost within what is kept.
        auto first = text.find("line ");
        int n = std::stoi(text.substr(first + 5));
        std::string expect;
        for (int i = n; i < 100; ++i)
            expect += "line " + std::to_string(i) + "\n";
        CHECK(text.substr(first) == expect);
    }

    TEST_CASE("detached: log record decoding refuses what is no record") {
        std::error_code ec;
        std::string why;
        ct::log_record r;
        auto ok = ct::encode_log_header(5, 2, 3) + "abc";
        // Every cut of a record needs more; the whole is one record.
        for (std::size_t i = 0; i < ok.size(); ++i) {
            CHECK(ct::decode_log_record(cz::as_bytes(std::string_view(ok).substr(0, i)), r, ec) ==
                  0);
            CHECK_FALSE(ec);
        }
        REQUIRE(ct::decode_log_record(cz::as_bytes(ok), r, ec) == ok.size());
        CHECK(r.time == 5);
        CHECK(r.stream == 2);
        CHECK(cz::as_chars(r.data) == "abc");
        for (const char* bad : {"x o 1\na", "1 x 1\na", "1 o -1\n", "1 o 99999999999\n", "1o1\n",
                                "99999999999999999999 o 1\na"}) {
            CHECK(ct::decode_log_record(cz::as_bytes(std::string_view(bad)), r, ec, &why) == 0);
            CHECK(ec == ct::errc::bad_state);
        }
        CHECK(ct::decode_log_record(cz::as_bytes(std::string(60, '1')), r, ec, &why) == 0);
        CHECK(ec == ct::errc::bad_state);
    }

    TEST_CASE("detached: control frames, split at every byte, and bad ones") {
        std::string stream =
            ct::encode_control_frame(ct::control_type::started) +
            ct::encode_control_frame(ct::control_type::stdout_data,
                                     cz::as_bytes(std::string("out\0", 4))) +
            ct::encode_control_error(127, "not\nfound") +
            ct::encode_control_frame(ct::control_type::exit, cz::as_bytes(ct::encode_i32(42)));
        for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
            ct::control_reader reader(true);
            std::vector<std::pair<ct::control_type, std::string>> got;
            std::error_code ec;
            for (auto part :
                 {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)}) {
                reader.feed(cz::as_bytes(part));
                while (auto f = reader.next(ec))
                    got.emplace_back(f->type, std::string(cz::as_chars(f->payload)));
                REQUIRE_FALSE(ec);
            }
            REQUIRE(got.size() == 4);
            CHECK(got[0].first == ct::control_type::started);
            CHECK(got[1].second == std::string("out\0", 4));
            auto e = ct::decode_control_error(cz::as_bytes(got[2].second), ec);
            REQUIRE_FALSE(ec);
            CHECK(e.exit_code == 127);
            CHECK(e.message == "not?found"); // control characters never reach a terminal
            CHECK(ct::decode_i32(cz::as_bytes(got[3].second), ec) == 42);
            CHECK(reader.pending() == 0);
        }

        std::error_code ec;
        std::string why;
        ct::control_frame f;
        auto bytes = [](std::initializer_list<int> b) {
            std::string s;
            for (int c : b)
                s += static_cast<char>(c);
            return s;
        };
        // Length 0, a length past the limit, a type the client never receives.
        for (const auto& bad :
             {bytes({0, 0, 0, 0, 64}), bytes({2, 0, 0x10, 0, 64}), bytes({0xff, 0xff, 0xff, 0xff}),
              bytes({1, 0, 0, 0, 1}), bytes({1, 0, 0, 0, 72})}) {
            CHECK(ct::decode_control_frame(cz::as_bytes(bad), true, f, ec, &why) == 0);
            CHECK(ec == ct::errc::bad_frame);
        }
        // The supervisor refuses the client's types the other way round.
        CHECK(ct::decode_control_frame(cz::as_bytes(bytes({1, 0, 0, 0, 64})), false, f, ec) == 0);
        CHECK(ec == ct::errc::bad_frame);
        CHECK(ct::decode_control_frame(cz::as_bytes(bytes({1, 0, 0, 0, 3})), false, f, ec) == 5);
        CHECK_FALSE(ec);
        CHECK(ct::decode_control_frame(cz::as_bytes(bytes({1, 0, 0, 0, 12})), false, f, ec) == 0);
        CHECK(ec == ct::errc::bad_frame);
        CHECK(ct::decode_control_frame(cz::as_bytes(bytes({1, 0, 0, 0, 11})), false, f, ec) == 5);
        CHECK_FALSE(ec);
        // Offsets in the reader's errors.
        ct::control_reader reader(true);
        reader.feed(
            cz::as_bytes(ct::encode_control_frame(ct::control_type::ok) + bytes({1, 0, 0, 0, 9})));
        CHECK(reader.next(ec));
        CHECK_FALSE(reader.next(ec, &why));
        CHECK(ec == ct::errc::bad_frame);
        CHECK(why.find("offset 5") != std::string::npos);

        // Payloads: sizes and ranges.
        ct::decode_i32(cz::as_bytes(std::string("abc")), ec);
        CHECK(ec == ct::errc::bad_frame);
        ct::decode_control_error(cz::as_bytes(ct::encode_i32(300) + "x"), ec);
        CHECK(ec == ct::errc::bad_frame);
        ct::decode_control_error(cz::as_bytes(ct::encode_i32(1) + std::string(5000, 'x')), ec);
        CHECK(ec == ct::errc::bad_frame);
        std::uint16_t rows = 0, cols = 0;
        auto rz = ct::encode_resize(24, 80);
        ct::decode_resize(cz::as_bytes(std::string_view(rz).substr(5)), rows, cols, ec);
        CHECK_FALSE(ec);
        CHECK(rows == 24);
        CHECK(cols == 80);
        ct::decode_resize(cz::as_bytes(bytes({0, 0, 80, 0})), rows, cols, ec);
        CHECK(ec == ct::errc::bad_frame);
    }

    TEST_CASE("detached: stats figures") {
        ct::container_stats s;
        s.time = 7;
        s.cpu_usec = std::uint64_t{1} << 40;
        s.pids_current = 3;
        std::error_code ec;
        std::string why;
        auto back = ct::stats_from_json(ct::to_json(s), ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(back.time == 7);
        CHECK(back.cpu_usec == (std::uint64_t{1} << 40));
        CHECK(back.pids_current == 3);
        auto j = ct::to_json(s);
        for (const auto& bad :
             {std::string("[]"), std::string("{\"time\":1}"),
              j.replace(j.find("\"pids_current\":3"), 16, "\"pids_current\":-3")}) {
            ct::stats_from_json(bad, ec, &why);
            CHECK(ec == ct::errc::bad_frame);
        }
        CHECK(why.find("pids_current") != std::string::npos);
    }

    TEST_CASE("detached: exec requests and signal names") {
        ct::exec_request r;
        r.args = {"sh", "-c", "true"};
        r.env = {"A=b"};
        r.working_dir = "/tmp";
        r.terminal = true;
        r.rows = 24;
        r.columns = 80;
        std::error_code ec;
        std::string why;
        auto back = ct::exec_request_from_json(ct::to_json(r), ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(back.args == r.args);
        CHECK(back.env == r.env);
        CHECK(back.working_dir == "/tmp");
        CHECK(back.terminal);
        CHECK(back.rows == 24);
        for (const char* bad : {"", "{}", R"({"args":[]})", R"({"args":"sh"})",
                                R"({"args":["sh"],"env":[],"cwd":"","user":"","terminal":false,)"
                                R"("interactive":false,"rows":70000,"columns":0})"}) {
            ct::exec_request_from_json(bad, ec, &why);
            CHECK(ec == ct::errc::bad_frame);
        }
        CHECK(ct::parse_signal("TERM") == SIGTERM);
        CHECK(ct::parse_signal("SIGKILL") == SIGKILL);
        CHECK(ct::parse_signal("9") == 9);
        CHECK(ct::parse_signal("SIGRTMAX+1") == 0);
        CHECK(ct::parse_signal("65") == 0);
        CHECK(ct::parse_signal("") == 0);
    }

} // TEST_SUITE
