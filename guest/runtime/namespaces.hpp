// guest/runtime/namespaces.hpp — the clone flags of a spec's namespaces.
#pragma once

#include "runtime/spec.hpp"

namespace cz::guest {

// CLONE_NEW* for every namespace in linux.namespaces (user namespaces are refused by the parser).
int clone_flags(const std::vector<namespace_spec>& namespaces);

} // namespace cz::guest
