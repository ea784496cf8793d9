// cz/core/sha256.hpp — SHA-256 hashing and OCI content digests.
//
// OCI identifies every blob by `sha256:<64 lowercase hex>`. The hasher streams (it is a byte_sink,
// so it can sit in a pipeline), and cz::digest parses, prints and compares such strings. Hashing is
// BoringSSL's, which uses the SHA extensions where the CPU has them.
//
// A piece of cz/core with a library of its own: Meson dependency('cz-core-sha256') (BoringSSL's
// libcrypto); with CZ_SEPARATE_COMPILATION, one .cpp compiles cz/core/sha256_src.hpp.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/error.hpp>
#include <cz/core/stream.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace cz {

// A sha256 content digest. Only sha256 is supported: it is what every registry serves, and the
// OCI spec makes sha512 optional. A default-constructed digest is all zeros.
class digest {
public:
    static constexpr std::size_t size = 32;
    using value_type = std::array<std::byte, size>;

    digest() noexcept = default;
    explicit digest(const value_type& bytes) noexcept : bytes_(bytes) {}

    // Parses "sha256:<64 lowercase hex>". Uppercase hex is refused, as the OCI spec's grammar
    // does (`[a-f0-9]`), so one blob has exactly one name.
    CZ_DECL static digest parse(std::string_view text, std::error_code& ec);
    CZ_DECL static digest parse(std::string_view text);

    const value_type& bytes() const noexcept { return bytes_; }
    // "sha256:<hex>"
    CZ_DECL std::string str() const;
    // The 64 hex characters alone, as used for blob file names.
    CZ_DECL std::string hex() const;

    // Constant-time comparison: used when checking content against an expected digest, so the
    // time taken says nothing about how many leading bytes matched.
    CZ_DECL friend bool operator==(const digest& a, const digest& b) noexcept;
    // A strict ordering for maps; not constant-time.
    friend bool operator<(const digest& a, const digest& b) noexcept { return a.bytes_ < b.bytes_; }

private:
    value_type bytes_{};
};

// Incremental SHA-256. Also a byte_sink, so `cz::copy(source, hasher)` hashes a stream.
class sha256_hasher {
public:
    CZ_DECL sha256_hasher() noexcept;
    sha256_hasher(const sha256_hasher&) = default;
    sha256_hasher& operator=(const sha256_hasher&) = default;

    CZ_DECL void update(bytes_view data) noexcept;
    // Returns the digest of everything passed to update(). The hasher starts over afterwards.
    CZ_DECL digest final() noexcept;

    // byte_sink
    void write(bytes_view data, std::error_code& ec) noexcept {
        ec.clear();
        update(data);
    }
    void finish(std::error_code& ec) noexcept { ec.clear(); }

private:
    // BoringSSL's SHA256_CTX, kept as opaque storage so this header does not include
    // <openssl/sha.h>: its size is checked against the real struct in impl/sha256.ipp.
    alignas(8) std::array<unsigned char, 112> state_;
};

// One-shot helper.
CZ_DECL digest sha256(bytes_view data) noexcept;

// A byte_source that hashes what passes through it: read a blob once, check its digest at the end.
class hashing_source {
public:
    explicit hashing_source(source_ref inner) noexcept : inner_(inner) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        auto n = inner_.read_some(buf, ec);
        hasher_.update(buf.first(n));
        count_ += n;
        return n;
    }
    digest final() noexcept { return hasher_.final(); }
    std::uint64_t count() const noexcept { return count_; }

private:
    source_ref inner_;
    sha256_hasher hasher_;
    std::uint64_t count_ = 0;
};

} // namespace cz

template <>
struct fmt::formatter<cz::digest> : fmt::formatter<std::string_view> {
    auto format(const cz::digest& d, fmt::format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(d.str(), ctx);
    }
};

#if CZ_HEADER_ONLY
#include <cz/core/impl/sha256.ipp>
#endif
