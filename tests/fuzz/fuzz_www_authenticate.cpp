// Fuzzes the WWW-Authenticate parser: any value either parses into at most max_challenges
// challenges, each with a token for a scheme and at most max_challenge_params uniquely named,
// lowercase parameters, or fails with errc::malformed_challenge at an offset inside the value.
#include <cz/oci/registry/challenge.hpp>

#include <set>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    namespace reg = cz::oci::registry;
    std::string_view value(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    cz::error_info detail;
    auto challenges = reg::parse_challenges(value, ec, &detail);
    if (ec) {
        if (ec != reg::errc::malformed_challenge || !challenges.empty()) __builtin_trap();
        if (!detail.offset || *detail.offset > size || detail.message.empty()) __builtin_trap();
        return 0;
    }
    if (challenges.size() > reg::max_challenges) __builtin_trap();
    for (const auto& c : challenges) {
        if (c.scheme.empty() || c.params.size() > reg::max_challenge_params) __builtin_trap();
        if (!c.token68.empty() && !c.params.empty()) __builtin_trap();
        std::set<std::string> names;
        for (const auto& [name, v] : c.params) {
            if (name.empty() || !names.insert(name).second) __builtin_trap();
            for (char ch : name)
                if (ch >= 'A' && ch <= 'Z') __builtin_trap();
            if (v.size() > size) __builtin_trap();
        }
    }
    return 0;
}
