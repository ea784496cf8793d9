#include "runtime/terminal.hpp"

#include "runtime/report.hpp"

#include <cz/core/unique_fd.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace cz::guest {

namespace {

bool fail(error& err, const std::string& what) {
    err.set({errno, std::system_category()}, "terminal: " + what);
    return false;
}

} // namespace

bool resize_terminal(int master_fd, console_size size, error& err) {
    winsize ws{};
    ws.ws_row = size.height;
    ws.ws_col = size.width;
    if (::ioctl(master_fd, TIOCSWINSZ, &ws) != 0) return fail(err, "TIOCSWINSZ");
    return true;
}

bool setup_terminal(int report_sock, uid_t uid, const std::optional<console_size>& size,
                    error& err) {
    unique_fd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master) return fail(err, "open /dev/ptmx (is devpts mounted at /dev/pts?)");
    int unlock = 0;
    if (::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) return fail(err, "unlock the pty");
    // TIOCGPTPEER opens the slave through the master, not by a path that could be swapped.
    unique_fd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave) return fail(err, "open the pty slave");
    // devpts makes slaves group-tty writable only: the process's own user must own it.
    if (::fchown(slave.get(), uid, static_cast<gid_t>(-1)) != 0) return fail(err, "chown slave");
    if (size && !resize_terminal(master.get(), *size, err)) return false;
    if (!report::send_fd(report_sock, report::kind::terminal, master.get()))
        return fail(err, "send the pty master");
    master.reset();
    if (::setsid() < 0 && errno != EPERM) return fail(err, "setsid");
    if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0) return fail(err, "make it the controlling tty");
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(slave.get(), fd) < 0) return fail(err, "dup2 onto stdio");
    return true;
}

} // namespace cz::guest
