// cz/oci/platform.hpp — platform strings, normalisation, and choosing an index entry.
//
// Names follow Go's GOOS/GOARCH, as OCI and containerd write them: "linux/amd64",
// "linux/arm64/v8", "linux/arm/v7". Normalisation maps the names other tools use onto those
// (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7, armel -> arm/v6, i386 -> 386), fills the
// default variants (arm64 is v8, arm is v7) and lowercases everything, as containerd's
// platforms package does, so "linux/aarch64" and "linux/arm64/v8" compare equal.
//
// Choosing from an index follows containerd's platforms.Only: the wanted platform first, then
// what runs on it, best first:
//   amd64/vN  -> amd64/vN-1 ... amd64/v1, then 386
//   arm64/v8  -> arm/v8, arm/v7, arm/v6, arm/v5 (arm64 CPUs run 32-bit arm code)
//   arm/v7    -> arm/v6, arm/v5
// Entries without a platform come after every match (they may be nested indexes).
#pragma once

#include <cz/oci/error.hpp>
#include <cz/oci/types.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace cz::oci {

// The platform with its names normalised and its default variant filled in.
CZ_DECL platform normalize(platform p);

// Parses "os", "arch", "os/arch" or "os/arch/variant" (any case; each part [A-Za-z0-9_.-]+),
// then normalises. A single part is an OS when it names one cz knows ("linux", "windows",
// "darwin", "freebsd", ...) and gets the host's architecture, else an architecture and gets the
// host's OS. Fails with errc::invalid_platform and *detail saying which part is wrong.
CZ_DECL platform parse_platform(std::string_view text, std::error_code& ec,
                                std::string* detail = nullptr);
CZ_DECL platform parse_platform(std::string_view text);

// "linux/arm64/v8"; os/arch only when there is no variant.
CZ_DECL std::string format(const platform& p);

// The platform this program was built for (linux/amd64, linux/arm64/v8, ...).
CZ_DECL platform host_platform();

// The platforms an image may have to run on `want`, best first (see the table above). All
// normalised.
CZ_DECL std::vector<platform> compatible_platforms(const platform& want);

// How well `candidate` fits `want`: 0 is an exact match, higher is a worse fallback, -1 means it
// does not run there. OS features and os.version are compared only when `want` has them.
CZ_DECL int platform_rank(const platform& want, const platform& candidate);

// The index entry to use on `want`: the best ranked image manifest or nested index, entries
// with a platform before those without, the index's own order among equals. Fails with
// errc::no_matching_platform (and the platforms the index has in *detail) when none fits.
CZ_DECL const descriptor* select_platform(const image_index& index, const platform& want,
                                          std::error_code& ec, std::string* detail = nullptr);

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/platform.ipp>
#endif
