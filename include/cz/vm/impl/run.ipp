// Out-of-line definitions for cz/vm/run.hpp.
#pragma once

#include <cz/vm/run.hpp>

namespace cz::vm {

CZ_DECL std::string console_tail(std::string_view console, std::size_t lines) {
    if (lines == 0) return {};
    // A final newline ends the last line; it does not start another.
    std::size_t end = console.size();
    if (end > 0 && console[end - 1] == '\n') --end;
    std::size_t begin = end;
    for (std::size_t found = 0; begin > 0; --begin) {
        if (console[begin - 1] == '\n' && ++found == lines) break;
    }
    return std::string(console.substr(begin));
}

} // namespace cz::vm
