#include "runtime/namespaces.hpp"

#include <sched.h>

namespace cz::guest {

int clone_flags(const std::vector<namespace_spec>& namespaces) {
    int flags = 0;
    for (const auto& n : namespaces) {
        switch (n.kind) {
        case namespace_kind::pid:
            flags |= CLONE_NEWPID;
            break;
        case namespace_kind::network:
            flags |= CLONE_NEWNET;
            break;
        case namespace_kind::mount:
            flags |= CLONE_NEWNS;
            break;
        case namespace_kind::ipc:
            flags |= CLONE_NEWIPC;
            break;
        case namespace_kind::uts:
            flags |= CLONE_NEWUTS;
            break;
        case namespace_kind::user:
            flags |= CLONE_NEWUSER;
            break;
        case namespace_kind::cgroup:
            flags |= CLONE_NEWCGROUP;
            break;
        case namespace_kind::time:
            flags |= CLONE_NEWTIME;
            break;
        }
    }
    return flags;
}

} // namespace cz::guest
