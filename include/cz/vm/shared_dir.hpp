// cz/vm/shared_dir.hpp — a host directory shared with a QEMU guest: virtio-fs, served by a
// virtiofsd that the VM starts and stops, or virtio-9p, served by QEMU itself.
//
// virtio-fs (FUSE requests over a virtqueue; docs/system/devices/vhost-user.rst, virtiofsd's
// own --help): QEMU's `vhost-user-fs-device` (virtio-mmio, as on microvm) forwards the queues to
// a vhost-user backend, virtiofsd, which maps guest RAM (it must be shared: cz's VMs have a
// memfd with share=on, qemu_memory_args) and serves each request with the host's syscalls. The
// virtiofsd Debian's QEMU packages ship (/usr/lib/qemu/virtiofsd, QEMU 7.2's C daemon) needs
// root: it sandboxes itself with mount, pid and net namespaces and pivot_root into the shared
// directory (sandbox=namespace; sandbox=chroot needs CAP_SYS_CHROOT as much), and it takes on
// each caller's uid and gid (setresuid per thread, CAP_DAC_OVERRIDE) so that files the guest
// creates get the guest's owner, as a bind mount under `docker run -v` gives. cz makes the
// vhost-user socket itself and hands it over listening (--fd), so QEMU can connect the moment
// virtiofsd runs, with no wait for a socket file; virtiofsd exits when QEMU closes the
// connection, and it runs with PR_SET_PDEATHSIG (cz/vm/process.hpp), so it also dies with the
// thread that started it when cz is killed outright. A read-only directory is also read-only on
// the host side: virtiofsd runs in a mount namespace of its own where the directory is a
// read-only bind mount of itself (its own sandbox keeps that flag), so even a guest kernel that
// ignored its `ro` mount could not write.
//
// virtio-9p (the 9P2000.L protocol over virtio; QEMU's -fsdev local backend): no process of its
// own, and no root needed, but slower, and Debian's cloud kernel does not have it (the minimal
// kernel does; so does Debian's generic linux-image-amd64). Its security model decides owners:
//   passthrough   files get the guest's uid, gid and mode on the host (QEMU chowns them): the
//                 semantics of `docker run -v`; it needs QEMU to run as root (chown).
//   none          as passthrough, but a failed chown is ignored: files belong to the user who
//                 runs QEMU, with the modes the guest gave them. What a rootless cz gets: the
//                 host user owns what the container wrote, which is what someone sharing a
//                 work folder expects (mapped-xattr would hide owner and mode in user.virtfs.*
//                 xattrs and leave the host files at 0600, surprising on the host).
// readonly=on makes QEMU refuse every write (EROFS). QEMU's local backend walks each path
// component with O_NOFOLLOW below the shared directory, so a symlink in it is returned to the
// guest as a link and resolved there, never followed by QEMU on the host; virtiofsd does the same
// inside its pivot_root.
//
// The guest mounts either by its tag: `mount -t virtiofs TAG DIR`, or `mount -t 9p -o
// trans=virtio,version=9p2000.L TAG DIR` (guest_mount_type and guest_mount_options).
#pragma once

#include <cz/vm/qemu.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cz::vm {

enum class shared_dir_transport {
    virtiofs,  // vhost-user-fs-device + virtiofsd
    virtio_9p, // virtio-9p-device + QEMU's -fsdev local
};

CZ_DECL std::string_view to_string(shared_dir_transport t) noexcept;

struct shared_dir {
    // An existing host directory (absolute).
    std::filesystem::path host;
    // The name the guest mounts it by: 1..31 of [A-Za-z0-9_.-] (9p's limit is the tighter).
    std::string tag;
    bool read_only = false;
};

// Where Debian's QEMU packages put virtiofsd.
inline constexpr const char* debian_virtiofsd = "/usr/lib/qemu/virtiofsd";

// The virtiofsd to run: $CZ_VIRTIOFSD when set (empty: none, which forces virtio-9p), else
// /usr/lib/qemu/virtiofsd, /usr/libexec/virtiofsd, or `virtiofsd` in PATH; "" when none is
// executable.
CZ_DECL std::string find_virtiofsd();

// What a VM without a preference uses: virtio-fs when `virtiofsd` is non-empty and this process
// is root (virtiofsd needs it, see above), else virtio-9p.
CZ_DECL shared_dir_transport choose_shared_dir_transport(const std::string& virtiofsd);

// Whether `tag` is a valid tag (see shared_dir::tag).
CZ_DECL bool valid_shared_dir_tag(std::string_view tag) noexcept;

// QEMU's words for a virtio-fs device whose backend listens at `socket`.
CZ_DECL std::vector<std::string> qemu_virtiofs_args(const std::filesystem::path& socket,
                                                    const std::string& tag,
                                                    const std::string& chardev_id);
// virtiofsd's argv, serving `dir` on the listening socket `fd`.
CZ_DECL std::vector<std::string> virtiofsd_args(const std::string& virtiofsd, const shared_dir& dir,
                                                int fd);
// QEMU's words for a virtio-9p device; passthrough when `as_root`, else none (see above).
CZ_DECL std::vector<std::string> qemu_9p_args(const shared_dir& dir, const std::string& fsdev_id,
                                              bool as_root);

// The device hook that shares `dir` (index: a number unique in the VM, for QEMU's ids). For
// virtio-fs it starts virtiofsd before QEMU (its log: <state dir>/virtiofsd-<index>.log) and
// stops it once QEMU has gone; it fails the start (errc::invalid_config) for a bad tag or a
// host path that is not a directory, and (errc::vmm_not_found) when virtiofsd cannot run.
CZ_DECL device_hook qemu_shared_dir_device(shared_dir dir, shared_dir_transport transport,
                                           std::size_t index, std::string virtiofsd = {});

// The guest's mount type ("virtiofs", "9p") and its mount options (empty, or 9p's transport,
// protocol version and message size).
CZ_DECL std::string guest_mount_type(shared_dir_transport t);
CZ_DECL std::vector<std::string> guest_mount_options(shared_dir_transport t);

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/shared_dir.ipp>
#endif
