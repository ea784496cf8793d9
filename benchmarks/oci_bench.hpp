// What the benchmarks that make OCI images share (oci_load.cpp, registry_pull.cpp): a setting
// from the environment or the command line, and a sink that hashes a layer's tar (its diff_id)
// on its way into the compressor.
#pragma once

#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace cz::bench {

// $env when set, else argv[index] when given, else `fallback`.
inline std::uint64_t setting(const char* env, int argc, char** argv, int index,
                             std::uint64_t fallback) {
    if (const char* v = std::getenv(env)) return std::stoull(v);
    return argc > index ? std::stoull(argv[index]) : fallback;
}

// Hashes what passes on to `inner` (the layer's diff_id); finish() leaves `inner` open.
struct hashing_sink {
    cz::sink_ref inner;
    cz::sha256_hasher hasher;
    void write(cz::bytes_view data, std::error_code& ec) {
        hasher.update(data);
        inner.write(data, ec);
    }
    void finish(std::error_code& ec) { ec.clear(); }
};

} // namespace cz::bench
