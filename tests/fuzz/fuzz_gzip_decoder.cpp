// Fuzzes the gzip decoder with arbitrary input (see decoder_fuzz.hpp).
#include "decoder_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    fuzz_decoder(data, size, cz::decompressing_source::mode::gzip);
    return 0;
}
