#include "reaper.hpp"

#include <sys/wait.h>

#include <cerrno>

namespace cz::guest {

std::vector<child_exit> reap_exited_children() {
    std::vector<child_exit> exits;
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            exits.push_back({pid, status});
            continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        return exits; // 0: children left, none exited; -1 ECHILD: no children at all
    }
}

} // namespace cz::guest
