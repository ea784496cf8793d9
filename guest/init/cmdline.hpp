// guest/init/cmdline.hpp — the kernel command line as cz-init reads it: words separated by spaces,
// `key=value` or a bare `key`, double quotes around a value that holds spaces (as the kernel's
// own parser allows: `cz.env="A B"`). The host writes it; cz-init reads its `cz.*` settings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cz::guest {

class kernel_cmdline {
public:
    kernel_cmdline() = default;
    // Parses /proc/cmdline's text (a trailing newline is ignored). Never fails: an unterminated
    // quote runs to the end, as in the kernel.
    static kernel_cmdline parse(std::string_view text);

    // The value of the last `key=value` (a later word overrides an earlier one, as in the kernel);
    // an empty string for a bare `key`; nullopt when the key is absent.
    std::optional<std::string> get(std::string_view key) const;
    const std::vector<std::pair<std::string, std::string>>& params() const noexcept {
        return params_;
    }

private:
    std::vector<std::pair<std::string, std::string>> params_;
};

// cz.net=IFACE,ADDRESS/PREFIX,GATEWAY: the interface cz-init brings up as it boots, its address
// and its default route. The parts are checked when they are applied (guest/agent/net.hpp).
struct net_setting {
    std::string interface, address, gateway;
};
// False unless `text` has exactly three non-empty parts.
bool parse_net_setting(std::string_view text, net_setting& out);

} // namespace cz::guest
