// guest/runtime/shim.hpp — pid 1 of a container's pid namespace, when it is not the program.
//
// The kernel protects a pid namespace's init from signals sent inside the namespace that it has
// no handler for: `sh -c 'kill -9 $$'` run as pid 1 survives its own SIGKILL and exits 0, and
// orphans in the container would stay zombies unless the program reaps them. So cz, like
// `docker run --init` (tini), keeps a small init as pid 1: it forks the real program (pid 2),
// forwards every signal it gets to it, reaps every process that is reparented to it, and exits
// with the program's status, 128+n when signal n killed it. When it exits, the kernel kills
// what is left in the namespace.
//
// The shim is a copy of cz-init that never execs, so it first closes every fd it inherited:
// it must not hold the agent's connection or any stdio pipe open.
#pragma once

#include <sys/types.h>

namespace cz::guest {

// Called in pid 1 of the new namespace with every signal blocked; `program` is its child.
[[noreturn]] void run_shim(pid_t program);

} // namespace cz::guest
