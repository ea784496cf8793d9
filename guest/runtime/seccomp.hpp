// guest/runtime/seccomp.hpp — a process's seccomp filter, from linux.seccomp, through
// libseccomp.
//
// As runc: libseccomp must not set no_new_privs on its own (the spec's noNewPrivileges decides);
// syscall names the running architecture does not know are skipped; a rule whose action equals
// the default is skipped (it would change nothing, and libseccomp refuses it); an errno action
// without errnoRet returns EPERM; conditions on distinct arguments are one rule (all must hold),
// and when one argument is named twice each condition becomes its own rule (any may hold).
// Loading needs CAP_SYS_ADMIN unless no_new_privs is set, which is why the caller loads it before
// dropping capabilities when noNewPrivileges is false.
#pragma once

#include "runtime/error.hpp"
#include "runtime/spec.hpp"

namespace cz::guest {

bool load_seccomp(const seccomp_spec& spec, error& err);

} // namespace cz::guest
