// Fuzzes the QMP message parser: arbitrary bytes from a (possibly hostile or broken) QEMU must
// parse into messages or end in a clean error, consuming only what is there.
#include <cz/vm/qmp.hpp>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    cz::bytes_view in(reinterpret_cast<const std::byte*>(data), size);
    // Parse message after message, as the client does on a buffer holding several.
    while (!in.empty()) {
        cz::vm::qmp_message m;
        std::error_code ec;
        auto used = cz::vm::parse_qmp_message(in, m, ec, 4096);
        if (ec) {
            if (used != 0) __builtin_trap(); // an error consumes nothing
            break;
        }
        if (used == 0 || used > in.size()) __builtin_trap(); // progress, within bounds
        // Events and errors always carry a name (QEMU's event name, the error class).
        if (m.type == cz::vm::qmp_message::kind::event && m.name.empty()) __builtin_trap();
        if (m.type == cz::vm::qmp_message::kind::event && !m.value.is_null() &&
            !m.value.is_object())
            __builtin_trap();
        if (m.type == cz::vm::qmp_message::kind::error && m.name.empty()) __builtin_trap();
        in = in.subspan(used);
    }
    return 0;
}
