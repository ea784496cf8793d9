// Out-of-line definitions for cz/vm/machine.hpp.
#pragma once

#include <cz/vm/machine.hpp>

#include <fmt/format.h>

namespace cz::vm {

CZ_DECL std::string_view to_string(exit_reason r) noexcept {
    switch (r) {
    case exit_reason::poweroff: return "poweroff";
    case exit_reason::reboot: return "reboot";
    case exit_reason::panic: return "panic";
    case exit_reason::stopped: return "stopped";
    case exit_reason::killed: return "killed";
    case exit_reason::vmm_error: return "vmm_error";
    }
    return "unknown";
}

CZ_DECL std::string exit_status::describe() const {
    std::string s(to_string(reason));
    if (reason == exit_reason::stopped && forced) s += " (forced)";
    if (process.signaled && (reason == exit_reason::killed || reason == exit_reason::vmm_error))
        s += fmt::format(" (signal {})", process.code);
    if (!message.empty()) s += ": " + message;
    return s;
}

} // namespace cz::vm
