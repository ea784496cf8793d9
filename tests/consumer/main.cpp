// A consumer of cz/core's compression and sha256 pieces: hashes a gzip stream's decoded bytes.
#include <cz/core/compression.hpp>
#include <cz/core/sha256.hpp>

#include <cstdio>

int main() {
    cz::byte_buffer packed;
    cz::buffer_sink sink(packed);
    cz::compressing_sink gz(sink, cz::compression::gzip);
    std::error_code ec;
    gz.write(cz::as_bytes("abc"), ec);
    gz.finish(ec);
    cz::memory_source mem(packed);
    cz::decompressing_source dec(mem);
    cz::hashing_source hashed(dec);
    cz::null_sink out;
    cz::copy(hashed, out, ec);
    auto d = hashed.final();
    std::printf("%s\n", d.str().c_str());
    return d == cz::digest::parse(
                    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
               ? 0
               : 1;
}
