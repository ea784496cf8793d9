#include <cz/core/unique_fd.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>

namespace {
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
} // namespace

TEST_SUITE("core") {

TEST_CASE("unique_fd closes, moves and releases") {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(raw >= 0);
    {
        cz::unique_fd a(raw);
        CHECK(a.valid());
        cz::unique_fd b(std::move(a));
        CHECK(!a.valid());
        CHECK(b.get() == raw);
        CHECK(is_open(raw));
    }
    CHECK(!is_open(raw));

    int raw2 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    cz::unique_fd c(raw2);
    CHECK(c.release() == raw2);
    CHECK(!c);
    CHECK(is_open(raw2));
    ::close(raw2);

    cz::unique_fd d(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int first = d.get();
    d = cz::unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    CHECK(!is_open(first));
}

}
