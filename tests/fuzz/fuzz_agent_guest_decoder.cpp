// Fuzzes cz-init's side of the agent protocol with arbitrary bytes from the host: framing,
// decoding, the checks on what a host may send, the handshake and stream flow control. cz-init
// must answer bad input with an error, never crash (it is PID 1: its crash is a kernel panic).
// See agent_fuzz.hpp for the invariants.
#include "agent_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    fuzz_agent_receiver(data, size, cz::agent::role::host);
    return 0;
}
