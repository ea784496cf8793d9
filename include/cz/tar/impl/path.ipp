// Out-of-line definitions for cz/tar/path.hpp.
#pragma once

#include <cz/tar/path.hpp>

namespace cz::tar {

CZ_DECL std::string normalize_path(std::string_view name, dotdot_policy policy,
                                   std::error_code& ec) {
    ec.clear();
    std::string out;
    out.reserve(name.size());
    std::size_t pos = 0;
    while (pos < name.size()) {
        auto slash = name.find('/', pos);
        auto end = slash == std::string_view::npos ? name.size() : slash;
        auto part = name.substr(pos, end - pos);
        pos = end + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (out.empty()) {
                if (policy == dotdot_policy::refuse) {
                    ec = errc::path_escapes_root;
                    return {};
                }
                continue;
            }
            auto cut = out.rfind('/');
            out.resize(cut == std::string::npos ? 0 : cut);
            continue;
        }
        if (!out.empty()) out += '/';
        out += part;
    }
    return out;
}

CZ_DECL std::string normalize_path(std::string_view name, dotdot_policy policy) {
    std::error_code ec;
    auto p = normalize_path(name, policy, ec);
    if (ec) throw_error(ec, "tar member '{}'", name);
    return p;
}

} // namespace cz::tar
