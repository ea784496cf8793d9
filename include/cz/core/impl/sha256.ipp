// Out-of-line definitions for cz/core/sha256.hpp.
#pragma once

#include <cz/core/sha256.hpp>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

namespace cz {
namespace detail {

inline SHA256_CTX* sha_ctx(std::array<unsigned char, 112>& storage) noexcept {
    static_assert(sizeof(SHA256_CTX) <= 112, "sha256_hasher::state_ is too small for SHA256_CTX");
    static_assert(alignof(SHA256_CTX) <= 8, "sha256_hasher::state_ is under-aligned");
    // SAFETY: storage is at least sizeof(SHA256_CTX) bytes, suitably aligned (asserted above),
    // and SHA256_CTX is a plain C struct that SHA256_Init fully initialises.
    return reinterpret_cast<SHA256_CTX*>(storage.data());
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

} // namespace detail

CZ_DECL digest digest::parse(std::string_view text, std::error_code& ec) {
    ec = make_error_code(errc::invalid_digest);
    constexpr std::string_view prefix = "sha256:";
    if (text.size() != prefix.size() + 2 * size || text.substr(0, prefix.size()) != prefix)
        return {};
    text.remove_prefix(prefix.size());
    value_type bytes{};
    for (std::size_t i = 0; i < size; ++i) {
        int hi = detail::hex_value(text[2 * i]), lo = detail::hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return {};
        bytes[i] = std::byte(hi << 4 | lo);
    }
    ec.clear();
    return digest(bytes);
}

CZ_DECL digest digest::parse(std::string_view text) {
    std::error_code ec;
    auto d = parse(text, ec);
    if (ec) throw_error(ec, "digest '{}'", text.substr(0, 100));
    return d;
}

CZ_DECL std::string digest::hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(2 * size, '0');
    for (std::size_t i = 0; i < size; ++i) {
        auto b = std::to_integer<unsigned>(bytes_[i]);
        out[2 * i] = digits[b >> 4];
        out[2 * i + 1] = digits[b & 15];
    }
    return out;
}

CZ_DECL std::string digest::str() const { return "sha256:" + hex(); }

CZ_DECL bool operator==(const digest& a, const digest& b) noexcept {
    return CRYPTO_memcmp(a.bytes_.data(), b.bytes_.data(), digest::size) == 0;
}

CZ_DECL sha256_hasher::sha256_hasher() noexcept { SHA256_Init(detail::sha_ctx(state_)); }

CZ_DECL void sha256_hasher::update(bytes_view data) noexcept {
    if (!data.empty()) SHA256_Update(detail::sha_ctx(state_), data.data(), data.size());
}

CZ_DECL digest sha256_hasher::final() noexcept {
    digest::value_type out;
    SHA256_Final(reinterpret_cast<unsigned char*>(out.data()), detail::sha_ctx(state_));
    SHA256_Init(detail::sha_ctx(state_));
    return digest(out);
}

CZ_DECL digest sha256(bytes_view data) noexcept {
    sha256_hasher h;
    h.update(data);
    return h.final();
}

} // namespace cz
