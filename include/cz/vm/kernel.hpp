// cz/vm/kernel.hpp — the guest kernels cached under the cz root.
//
// kernel/fetch-debian-kernel.sh and kernel/build-minimal-kernel.sh fill
// `<root>/kernels/<flavour>/` with:
//
//   vmlinuz         the kernel image (bzImage)
//   vmlinux         the kernel ELF with a PVH entry note, when there is one: booted in
//                   preference to vmlinuz because it skips the guest's own decompression
//   version         its release string (one line)
//   modules/*.ko    (debian only) the modules cz guests need
//   modules.order   (debian only) their file names, dependencies first
//
// This header finds them; the scripts are what put them there.
#pragma once

#include <cz/vm/config.hpp>
#include <cz/vm/error.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cz::vm {

enum class kernel_flavor {
    debian,  // Debian's cloud kernel, virtio/vsock/overlay as modules loaded by the guest init
    minimal, // built from Debian's linux-source with everything cz needs built in
};

CZ_DECL std::string_view to_string(kernel_flavor f) noexcept;
// "debian" or "minimal"; errc::bad_syntax otherwise.
CZ_DECL kernel_flavor parse_kernel_flavor(std::string_view name, std::error_code& ec);

struct kernel_info {
    kernel_flavor flavor = kernel_flavor::debian;
    std::filesystem::path directory;
    // vmlinux where there is one, else vmlinuz.
    std::filesystem::path image;
    std::string version;
    // Modules to load, in order (empty when everything is built in).
    std::vector<std::filesystem::path> modules;
};

// `<root>/kernels`.
inline std::filesystem::path kernels_dir(const std::filesystem::path& root) {
    return root / "kernels";
}

// The kernel of a flavour cached under `root`; errc::kernel_not_found when there is none, or when
// its modules.order names a module that is missing.
CZ_DECL kernel_info find_kernel(const std::filesystem::path& root, kernel_flavor flavor,
                                std::error_code& ec);
inline kernel_info find_kernel(const std::filesystem::path& root, kernel_flavor flavor) {
    std::error_code ec;
    auto k = find_kernel(root, flavor, ec);
    if (ec) throw_error(ec, "{} kernel under {}", to_string(flavor), kernels_dir(root).string());
    return k;
}

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/kernel.ipp>
#endif
