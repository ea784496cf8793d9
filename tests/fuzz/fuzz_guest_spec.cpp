// Fuzzes cz-init's config.json parser: the host sends these bytes, and a broken or hostile host
// must get an error naming a JSON path, never a crash or a spec that breaks the runtime's
// assumptions.
#include "runtime/spec.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    cz::guest::error err;
    auto spec = cz::guest::parse_spec(text, err);
    if (err) {
        if (err.message.empty()) __builtin_trap(); // every error says what and where
        return 0;
    }
    // What the runtime relies on once a spec has parsed.
    if (spec.process.args.empty() || spec.process.cwd.empty() || spec.process.cwd[0] != '/')
        __builtin_trap();
    if (spec.root.path.empty() || spec.root.path[0] != '/') __builtin_trap();
    if (!spec.has_namespace(cz::guest::namespace_kind::mount)) __builtin_trap();
    for (const auto& m : spec.mounts)
        if (m.destination.empty() || m.destination[0] != '/') __builtin_trap();
    for (const auto& r : spec.process.rlimits)
        if (r.soft > r.hard) __builtin_trap();
    if (spec.process.capabilities && (spec.process.capabilities->bounding >> 41) != 0)
        __builtin_trap();
    if (spec.seccomp)
        for (const auto& s : spec.seccomp->syscalls) {
            if (s.names.empty()) __builtin_trap();
            for (const auto& a : s.args)
                if (a.index > 5) __builtin_trap();
        }
    // The same bytes as a process object alone (an exec).
    cz::guest::parse_process(text, err);
    return 0;
}
