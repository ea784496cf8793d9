// Out-of-line definitions for cz/oci/platform.hpp.
#pragma once

#include <cz/oci/detail/report.hpp>
#include <cz/oci/platform.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace cz::oci {
namespace detail {

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

inline bool known_os(std::string_view os) {
    for (std::string_view k : {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd",
                               "illumos", "ios", "js", "linux", "nacl", "netbsd", "openbsd",
                               "plan9", "solaris", "wasip1", "windows", "zos", "macos"})
        if (os == k) return true;
    return false;
}

inline bool known_arch(std::string_view arch) {
    for (std::string_view k :
         {"386",       "amd64",       "amd64p32", "arm",    "armbe",   "arm64",   "arm64be",
          "ppc64",     "ppc64le",     "loong64",  "mips",   "mipsle",  "mips64",  "mips64le",
          "mips64p32", "mips64p32le", "ppc",      "riscv",  "riscv64", "s390",    "s390x",
          "sparc",     "sparc64",     "wasm",     "x86_64", "x86-64",  "aarch64", "armhf",
          "armel",     "i386",        "i686"})
        if (arch == k) return true;
    return false;
}

// The number in a "vN" variant, or -1.
inline int variant_number(std::string_view v) {
    if (v.size() < 2 || v[0] != 'v') return -1;
    int n = 0;
    for (char c : v.substr(1)) {
        if (c < '0' || c > '9' || n > 1000) return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

} // namespace detail

CZ_DECL platform normalize(platform p) {
    p.os = detail::lower(p.os);
    if (p.os == "macos") p.os = "darwin";
    p.architecture = detail::lower(p.architecture);
    p.variant = detail::lower(p.variant);
    auto& arch = p.architecture;
    auto& variant = p.variant;
    if (arch == "i386" || arch == "i686") {
        arch = "386";
        variant.clear();
    } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
        arch = "amd64";
        if (variant == "v1") variant.clear(); // the baseline is no variant, as containerd has it
    } else if (arch == "aarch64" || arch == "arm64") {
        arch = "arm64";
        if (variant.empty() || variant == "8" || variant == "v8.0")
            variant = "v8";
        else if (variant == "9" || variant == "v9.0")
            variant = "v9";
    } else if (arch == "armhf") {
        arch = "arm";
        variant = "v7";
    } else if (arch == "armel") {
        arch = "arm";
        variant = "v6";
    } else if (arch == "arm") {
        if (variant.empty() || variant == "7")
            variant = "v7";
        else if (variant == "5" || variant == "6" || variant == "8")
            variant = "v" + variant;
    }
    return p;
}

CZ_DECL platform parse_platform(std::string_view text, std::error_code& ec, std::string* detail) {
    ec.clear();
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        auto slash = text.find('/', start);
        parts.push_back(
            text.substr(start, slash == std::string_view::npos ? slash : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    auto fail = [&](std::string why) {
        detail::set_error(ec, detail, errc::invalid_platform,
                          fmt::format("{}: {}", detail::quote_input(text), why));
        return platform{};
    };
    if (parts.size() > 3) return fail("more than os/arch/variant");
    static constexpr const char* names[] = {"OS", "architecture", "variant"};
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (parts[i].empty()) return fail(fmt::format("empty {}", names[i]));
        for (char c : parts[i])
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
                return fail(
                    fmt::format("{} in the {}", detail::quote_input(std::string(1, c)), names[i]));
    }
    platform p;
    auto first = detail::lower(parts[0]);
    if (parts.size() == 1) {
        auto host = host_platform();
        if (detail::known_os(first)) {
            p = host;
            p.os = first;
        } else if (detail::known_arch(first)) {
            p.os = host.os;
            p.architecture = first;
        } else {
            return fail("neither a known OS nor a known architecture");
        }
    } else {
        p.os = first;
        p.architecture = std::string(parts[1]);
        if (parts.size() == 3) p.variant = std::string(parts[2]);
    }
    return normalize(std::move(p));
}

CZ_DECL platform parse_platform(std::string_view text) {
    std::error_code ec;
    std::string detail;
    auto p = parse_platform(text, ec, &detail);
    if (ec) throw cz::system_error(ec, "platform " + detail);
    return p;
}

CZ_DECL std::string format(const platform& p) {
    auto s = p.os + "/" + p.architecture;
    if (!p.variant.empty()) s += "/" + p.variant;
    return s;
}

CZ_DECL platform host_platform() {
    platform p;
    p.os = "linux";
#if defined(__x86_64__)
    p.architecture = "amd64";
#elif defined(__aarch64__)
    p.architecture = "arm64";
#elif defined(__arm__)
    p.architecture = "arm";
#elif defined(__i386__)
    p.architecture = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    p.architecture = "ppc64le";
#elif defined(__s390x__)
    p.architecture = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    p.architecture = "riscv64";
#else
    p.architecture = "unknown";
#endif
    return normalize(std::move(p));
}

CZ_DECL std::vector<platform> compatible_platforms(const platform& want_in) {
    auto want = normalize(want_in);
    std::vector<platform> out{want};
    auto with = [&](std::string arch, std::string variant) {
        platform p = want;
        p.architecture = std::move(arch);
        p.variant = std::move(variant);
        out.push_back(std::move(p));
    };
    int n = detail::variant_number(want.variant);
    if (want.architecture == "amd64") {
        for (int v = n - 1; v >= 2; --v)
            with("amd64", fmt::format("v{}", v));
        if (n >= 2) with("amd64", "");
        with("386", "");
    } else if (want.architecture == "arm64") {
        // v9 runs v8 code, and arm64 runs 32-bit arm (v8 down to v5).
        for (int v = n - 1; v >= 8; --v)
            with("arm64", fmt::format("v{}", v));
        for (int v = 8; v >= 5; --v)
            with("arm", fmt::format("v{}", v));
    } else if (want.architecture == "arm") {
        for (int v = n - 1; v >= 5; --v)
            with("arm", fmt::format("v{}", v));
    }
    return out;
}

CZ_DECL int platform_rank(const platform& want, const platform& candidate_in) {
    auto candidate = normalize(candidate_in);
    auto list = compatible_platforms(want);
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& p = list[i];
        if (p.os != candidate.os || p.architecture != candidate.architecture ||
            p.variant != candidate.variant)
            continue;
        if (!want.os_version.empty() && candidate.os_version != want.os_version) return -1;
        // An image that needs OS features runs only where all of them are wanted (Windows
        // "win32k"); a want without features accepts any, as containerd does.
        if (!want.os_features.empty())
            for (const auto& f : candidate.os_features)
                if (std::find(want.os_features.begin(), want.os_features.end(), f) ==
                    want.os_features.end())
                    return -1;
        return int(i);
    }
    return -1;
}

CZ_DECL const descriptor* select_platform(const image_index& index, const platform& want,
                                          std::error_code& ec, std::string* detail) {
    ec.clear();
    const descriptor* best = nullptr;
    int best_rank = -1;
    const descriptor* first_without = nullptr;
    std::string seen;
    for (const auto& d : index.manifests) {
        if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) continue;
        if (!d.platform) {
            if (!first_without) first_without = &d;
            continue;
        }
        seen += (seen.empty() ? "" : ", ") + format(*d.platform);
        int rank = platform_rank(want, *d.platform);
        if (rank >= 0 && (!best || rank < best_rank)) {
            best = &d;
            best_rank = rank;
        }
    }
    if (best) return best;
    if (first_without) return first_without;
    detail::set_error(ec, detail, errc::no_matching_platform,
                      fmt::format("no image for {} (the index has: {})", format(normalize(want)),
                                  seen.empty() ? "nothing with a platform" : seen));
    return nullptr;
}

} // namespace cz::oci
