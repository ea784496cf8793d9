#include "cmdline.hpp"

namespace cz::guest {

kernel_cmdline kernel_cmdline::parse(std::string_view text) {
    kernel_cmdline out;
    std::size_t i = 0;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i]))
            ++i;
        if (i == text.size()) break;
        // One word: quotes group spaces and are not part of the result.
        std::string word;
        bool quoted = false;
        for (; i < text.size() && (quoted || !is_space(text[i])); ++i) {
            if (text[i] == '"')
                quoted = !quoted;
            else
                word += text[i];
        }
        auto eq = word.find('=');
        if (eq == std::string::npos)
            out.params_.emplace_back(std::move(word), std::string());
        else
            out.params_.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
    return out;
}

std::optional<std::string> kernel_cmdline::get(std::string_view key) const {
    for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
        if (it->first == key) return it->second;
    }
    return std::nullopt;
}

bool parse_net_setting(std::string_view text, net_setting& out) {
    std::string* parts[] = {&out.interface, &out.address, &out.gateway};
    for (std::size_t i = 0; i < 3; ++i) {
        auto comma = text.find(',');
        if ((comma == std::string_view::npos) != (i == 2)) return false;
        *parts[i] = std::string(text.substr(0, comma));
        if (parts[i]->empty()) return false;
        text = i == 2 ? std::string_view() : text.substr(comma + 1);
    }
    return true;
}

} // namespace cz::guest
