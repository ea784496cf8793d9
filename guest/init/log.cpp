#include "log.hpp"

#include <unistd.h>

#include <string>

namespace cz::guest {

log_level& log_threshold() noexcept {
    static log_level threshold = log_level::info;
    return threshold;
}

bool parse_log_level(std::string_view text, log_level& out) noexcept {
    constexpr std::pair<std::string_view, log_level> names[] = {{"error", log_level::error},
                                                                {"warn", log_level::warn},
                                                                {"info", log_level::info},
                                                                {"debug", log_level::debug}};
    for (const auto& [name, level] : names) {
        if (text == name) {
            out = level;
            return true;
        }
    }
    return false;
}

void write_log_line(log_level level, std::string_view text) noexcept {
    constexpr std::string_view names[] = {"error", "warn", "info", "debug"};
    try {
        std::string line = "cz-init: ";
        line += names[static_cast<int>(level)];
        line += ": ";
        line += text;
        line += '\n';
        // The console may be slow or gone; a short write loses the rest of a log line, nothing
        // else.
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {
    }
}

} // namespace cz::guest
