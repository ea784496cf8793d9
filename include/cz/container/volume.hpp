// cz/container/volume.hpp — host folders in a container: `docker run -v HOSTDIR:GUESTDIR[:ro]`.
//
// Each volume is a host directory shared with the VM (cz/vm/shared_dir.hpp: virtio-fs through a
// virtiofsd the run starts and stops, or virtio-9p served by QEMU) under a tag of its own
// ("czvol0", "czvol1", ...), and a mount of that tag at GUESTDIR in the container's OCI spec
// (type virtiofs or 9p, "ro" for a read-only volume), which cz-init's runtime mounts before the
// container's process starts. What docker users expect holds:
//   - owners: the guest's uid and gid reach the host as they are (root in the container writes
//     root's files when cz runs as root, as with docker); a rootless cz (virtio-9p, security model
//     none) writes files that belong to the user running it;
//   - a read-only volume refuses writes with EROFS, in the guest (its mount) and on the host
//     (virtiofsd's read-only view; QEMU's readonly=on);
//   - a symlink in the folder is resolved by the guest inside the container, never followed on
//     the host: nothing outside HOSTDIR is reachable.
// Not docker's: HOSTDIR must exist (docker creates a missing one), and named volumes are not
// supported (a host part that is not a path is an error).
#pragma once

#include <cz/container/error.hpp>
#include <cz/container/spec.hpp>
#include <cz/core/config.hpp>
#include <cz/vm/kernel.hpp>
#include <cz/vm/shared_dir.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::container {

struct volume {
    // A host directory; parse_volume makes it absolute, check_volumes canonical.
    std::filesystem::path host;
    // An absolute path in the container, not "/".
    std::string guest;
    bool read_only = false;
};

// How volumes reach the guest.
enum class volume_transport {
    automatic, // virtio-fs when cz is root and virtiofsd is installed, else virtio-9p
    virtiofs,
    virtio_9p,
};

// "HOSTDIR:GUESTDIR", "HOSTDIR:GUESTDIR:ro" (or ":rw"), as docker's -v takes a host path. A
// relative HOSTDIR ("./data", "../x", "data/") is made absolute against the working directory,
// as docker's CLI does; a bare name ("data") would be a named volume, which cz does not have.
// GUESTDIR must be absolute and is normalised ("/a/./b/" -> "/a/b"). errc::bad_option otherwise,
// with `*detail` saying which part and why.
CZ_DECL volume parse_volume(std::string_view text, std::error_code& ec,
                            std::string* detail = nullptr);

// Checks volumes against the host before a run: each HOSTDIR exists and is a directory (made
// canonical: a symlink given as HOSTDIR is shared as its target), no two GUESTDIRs are the same.
// errc::bad_option with `*detail` naming the volume (by its position, 1-based) otherwise.
CZ_DECL std::vector<volume> check_volumes(const std::vector<volume>& volumes, std::error_code& ec,
                                          std::string* detail = nullptr);

// "virtiofs" or "9p" (also "virtio-fs", "virtio-9p"); errc::bad_option otherwise.
CZ_DECL volume_transport parse_volume_transport(std::string_view name, std::error_code& ec);

// The transport a run uses: `wanted`, or for automatic what cz/vm chooses with `virtiofsd`
// (find_virtiofsd()).
CZ_DECL vm::shared_dir_transport resolve_volume_transport(volume_transport wanted,
                                                          const std::string& virtiofsd);

// The tag of the i-th volume: "czvol<i>".
CZ_DECL std::string volume_tag(std::size_t index);

// The container's mounts for the volumes, in their order, for spec_options::mounts.
CZ_DECL std::vector<spec_mount> volume_mounts(const std::vector<volume>& volumes,
                                              vm::shared_dir_transport transport);

// Whether a kernel module is one of a transport's (fuse, virtiofs; 9p, 9pnet, 9pnet_virtio,
// netfs, fscache): the guest loads them only when a run has volumes of that transport.
CZ_DECL bool is_volume_module(const std::filesystem::path& module);
CZ_DECL bool is_transport_module(const std::filesystem::path& module,
                                 vm::shared_dir_transport transport);

// Whether `kernel` can mount the transport: a module kernel has its modules (virtiofs.ko, or
// 9p.ko and 9pnet_virtio.ko), a minimal kernel its options built in (its `config`).
// errc::bad_option otherwise, with `*detail` saying what is missing and what to do.
CZ_DECL void check_kernel_supports(const vm::kernel_info& kernel,
                                   vm::shared_dir_transport transport, std::error_code& ec,
                                   std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/volume.ipp>
#endif
