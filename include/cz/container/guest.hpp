// cz/container/guest.hpp — what every container's VM boots: a kernel from the cz root's cache and
// an initramfs of cz-init (the guest's PID 1) with that kernel's modules, built once and cached.
//
//   <root>/initramfs/<sha256 of cz-init, kernel release and modules, 16 hex>.cpio (uncompressed:
//   it boots faster than gzip under TCG)
//
// cz-init is a program of its own (guest/ in cz's source tree). find_init() looks where a build
// or an installation puts it.
#pragma once

#include <cz/container/error.hpp>
#include <cz/core/config.hpp>
#include <cz/vm/kernel.hpp>

#include <filesystem>
#include <string>
#include <system_error>

namespace cz::container {

// cz-init: `given` when not empty, else $CZ_INIT, else next to the running program (`cz-init`,
// `../guest/cz-init` in a build tree, `../libexec/cz/cz-init` installed). errc::init_not_found
// when none of these is an executable file.
CZ_DECL std::filesystem::path find_init(const std::filesystem::path& given, std::error_code& ec);

// The kernel for containers: `given` when it names a file, else the cached kernel of the flavour
// it names ("debian", "minimal"; empty: debian, else minimal). cz::vm's errc::kernel_not_found
// when none is cached (`cz kernel fetch`).
CZ_DECL vm::kernel_info find_container_kernel(const std::filesystem::path& root,
                                              const std::string& given, std::error_code& ec);

// The initramfs of `init` with `kernel`'s modules, from the cache or built into it.
CZ_DECL std::filesystem::path ensure_initramfs(const std::filesystem::path& root,
                                               const std::filesystem::path& init,
                                               const vm::kernel_info& kernel, std::error_code& ec,
                                               std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/guest.ipp>
#endif
