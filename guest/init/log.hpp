// guest/init/log.hpp — cz-init's log: one line per event on the console (the VM's serial port,
// which the host captures), prefixed with the level, filtered by `cz.log=` on the kernel command
// line (error, warn, info, debug; info by default).
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string_view>

namespace cz::guest {

enum class log_level { error, warn, info, debug };

// The level lines must reach to be written.
log_level& log_threshold() noexcept;
// "error", "warn", "info" or "debug"; false for anything else.
bool parse_log_level(std::string_view text, log_level& out) noexcept;
// Writes one line, "cz-init: <level>: <text>\n", in one write(2) so lines from the agent's
// threads never interleave.
void write_log_line(log_level level, std::string_view text) noexcept;

template <typename... Args>
void log(log_level level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    if (level > log_threshold()) return;
    try {
        write_log_line(level, fmt::format(format, std::forward<Args>(args)...));
    } catch (...) {
        write_log_line(level, "(log line could not be formatted)");
    }
}

} // namespace cz::guest
