#include "runtime/report.hpp"

#include "support/support.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace cz::guest;

TEST_SUITE("guest") {

    TEST_CASE("report: failures and fds cross the setup socket, then end of file") {
        cz::unique_fd ends[2];
        error err;
        REQUIRE(report::channel(ends, err));
        // Both ends close at exec: that is what tells the parent the exec happened.
        CHECK((::fcntl(ends[0].get(), F_GETFD) & FD_CLOEXEC) != 0);
        CHECK((::fcntl(ends[1].get(), F_GETFD) & FD_CLOEXEC) != 0);

        int p[2];
        REQUIRE(::pipe(p) == 0);
        cz::unique_fd rd(p[0]), wr(p[1]);
        REQUIRE(report::send_fd(ends[1].get(), report::kind::process, rd.get(), 4242));
        error sent;
        sent.set(std::error_code(ENOENT, std::system_category()), "exec \"nosuch\"");
        sent.exec_failed = true;
        REQUIRE(report::send_failure(ends[1].get(), sent));
        sent.set(errc::unknown_user, std::string(5000, 'x')); // longer than a record holds
        REQUIRE(report::send_failure(ends[1].get(), sent));
        ends[1].reset();

        report::message m;
        REQUIRE(report::receive(ends[0].get(), m, err));
        CHECK(m.type == report::kind::process);
        CHECK(m.pid == 4242);
        REQUIRE(m.fd);
        CHECK((::fcntl(m.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
        // The passed fd is the pipe's read end: what goes in the write end comes out of it.
        REQUIRE(::write(wr.get(), "z", 1) == 1);
        char c = 0;
        CHECK(::read(m.fd.get(), &c, 1) == 1);
        CHECK(c == 'z');

        REQUIRE(report::receive(ends[0].get(), m, err));
        CHECK(m.type == report::kind::failure);
        CHECK(m.failure.code == std::errc::no_such_file_or_directory);
        CHECK(m.failure.message == "exec \"nosuch\"");
        CHECK(m.failure.exec_failed);
        REQUIRE(report::receive(ends[0].get(), m, err));
        CHECK(m.failure.code == errc::unknown_user);
        CHECK(!m.failure.exec_failed);
        CHECK(m.failure.message.size() < 2000);
        CHECK(m.failure.message.find_first_not_of('x') == std::string::npos);

        CHECK(!report::receive(ends[0].get(), m, err)); // end of file
        CHECK(!err);
    }

    TEST_CASE("report: a record of the wrong size is an error, not a message") {
        cz::unique_fd ends[2];
        error err;
        REQUIRE(report::channel(ends, err));
        REQUIRE(::send(ends[1].get(), "abc", 3, 0) == 3);
        report::message m;
        CHECK(!report::receive(ends[0].get(), m, err));
        CHECK(err.code == errc::setup_failed);
        CHECK(err.message == "reading the container setup report");
    }

} // TEST_SUITE
