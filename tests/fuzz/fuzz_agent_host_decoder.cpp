// Fuzzes the host's side of the agent protocol with arbitrary bytes from the guest, which is
// untrusted (a container may own the guest kernel): framing, decoding, the checks on what a guest
// may send, the handshake and stream flow control. See agent_fuzz.hpp for the invariants.
#include "agent_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    fuzz_agent_receiver(data, size, cz::agent::role::guest);
    return 0;
}
