// cz/core/error.hpp — the error model shared by every cz module.
//
// Every failure is a std::error_code. Each module has its own `enum class errc` registered as an
// error-code enum with its own category, so `ec == cz::tar::errc::bad_checksum` reads naturally
// and `ec.message()` says what went wrong. Functions come in pairs, as in Asio:
//
//     std::size_t f(args, std::error_code& ec);   // never throws for input errors
//     std::size_t f(args);                        // throws cz::system_error
//
// An error_code cannot say *where* a failure happened or give the input's own words for it, so
// every stateful object that can fail (a parser, an applier, a session, a VM) keeps that for its
// last failure as a cz::error_info, returned by `error_detail()`, and a function that validates
// fills one passed in beside its error_code. The throwing layer and the CLI put it into
// cz::system_error's context: "layer sha256:ab12..: tar header at offset 1536" (cz::throw_error,
// cz::to_string(error_info)).
#pragma once

#include <cz/core/config.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace cz {

// Errors of cz/core itself. Modules declare their own enums the same way.
enum class errc {
    // A stream ended in the middle of a structure (gzip member, zstd frame, header).
    truncated = 1,
    // Bytes that cannot be what they claim to be (bad magic, bad checksum, corrupt block).
    corrupt_data,
    // Decompressed output went past the caller's size limit (decompression-bomb guard).
    output_limit_exceeded,
    // Output grew faster than the caller's allowed expansion ratio (decompression-bomb guard).
    ratio_limit_exceeded,
    // A digest string is not `<algorithm>:<hex>` with a known algorithm and the right length.
    invalid_digest,
    // Content hashed to a different digest than expected.
    digest_mismatch,
    // An argument outside what the function accepts (documented at the function).
    invalid_argument,
    // A value in the input is larger than this implementation allows.
    too_large,
};

// The category of cz::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& core_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), core_category()};
}

// Where and what, beside an error_code: `message` names what failed in the input's terms
// ("layer 2: entry 'etc/passwd'", "tar header", the kernel's extended-ACK text, QEMU's error);
// `offset` is the byte offset in that input, where one applies. Either may be absent.
struct error_info {
    std::string message;
    std::optional<std::uint64_t> offset;

    bool empty() const noexcept { return message.empty() && !offset; }
    void clear() noexcept {
        message.clear();
        offset.reset();
    }
    friend bool operator==(const error_info&, const error_info&) = default;
};

// "<message> at offset <offset>", or the part that is there ("" when empty).
inline std::string to_string(const error_info& info) {
    if (!info.offset) return info.message;
    if (info.message.empty()) return fmt::format("at offset {}", *info.offset);
    return fmt::format("{} at offset {}", info.message, *info.offset);
}

// std::system_error with the context prepended: "what: message".
class system_error : public std::system_error {
public:
    system_error(std::error_code ec, const std::string& context)
        : std::system_error(ec, context) {}
};

// Throws cz::system_error(ec, context) when ec is set. The context names the input and the
// position ("archive.tar: header at offset 1536").
inline void throw_if(std::error_code ec, const std::string& context) {
    if (ec) throw system_error(ec, context);
}

template <class... Args>
[[noreturn]] void throw_error(std::error_code ec, fmt::format_string<Args...> context,
                              Args&&... args) {
    throw system_error(ec, fmt::format(context, std::forward<Args>(args)...));
}

// The error_code for the calling thread's errno.
inline std::error_code last_system_error() noexcept {
    return {errno, std::system_category()};
}

} // namespace cz

template <>
struct std::is_error_code_enum<cz::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/core/impl/error.ipp>
#endif
