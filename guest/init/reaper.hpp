// guest/init/reaper.hpp — PID 1 adopts every orphan in the VM, so it must wait for all of them,
// or zombies pile up. cz-init calls this whenever SIGCHLD arrives (through its signalfd) and
// hands the exits of processes it started to whoever waits for them; the rest are just reaped.
#pragma once

#include <sys/types.h>

#include <vector>

namespace cz::guest {

struct child_exit {
    pid_t pid;
    int wait_status; // as waitpid reports it (WIFEXITED, WTERMSIG...)
};

// Waits for every child that has exited, without blocking; empty when none has.
std::vector<child_exit> reap_exited_children();

} // namespace cz::guest
