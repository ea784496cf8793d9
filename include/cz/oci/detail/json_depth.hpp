// cz/oci/detail/json_depth.hpp — a bound on how deeply a JSON text nests, checked before it is
// parsed: for cz/oci's documents and for the registry side's docker config file.
#pragma once

#include <cstddef>
#include <string_view>

namespace cz::oci::detail {

// The deepest nesting of arrays and objects in `bytes`, counted outside strings. Syntax is the
// JSON parser's business; this only bounds the depth before anything recursive sees the data
// (nlohmann's parser is iterative, but comparison and dump() recurse).
inline bool depth_within(std::string_view bytes, std::size_t max) {
    std::size_t depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        char c = bytes[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

} // namespace cz::oci::detail
