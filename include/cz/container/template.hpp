// cz/container/template.hpp — how `cz run` starts from a VM template (cz/vm/template.hpp): which
// runs can, the template's VM (the run's, with the root file system left to be mounted later),
// and what a clone is told once restored.
//
// A run's template is its VM as cz-init boots it without a container: the same kernel, cz-init
// initramfs, CPUs, memory, disks (placeholders in the root's and the scratch disk's slots),
// network and agent port, with `cz.template=1` instead of `cz.rootfs=`/`cz.scratch=` on the
// kernel command line. It is made on first use and kept under the cz root, per user. A clone is
// then told, before anything else (the Awaken RPC): a fresh 64-byte seed for its RNG (so no two
// clones share random state), the time, its hostname and a machine id; then it mounts the root
// file system (MountRootfs), and the run goes on as after a cold boot.
//
// Runs with volumes boot cold: virtio-fs needs guest RAM shared with virtiofsd, which a clone's
// private mapping is not.
#pragma once

#include <cz/agent/client.hpp>
#include <cz/vm/config.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cz::container {

// The kernel command line that marks a template's guest: cz-init boots without a root file
// system and waits for Awaken and MountRootfs.
inline constexpr const char* template_cmdline = "cz.template=1";

// The template's form of a run's VM: `cmdline` (without cz.rootfs= or cz.scratch=) in place of
// cfg.append.
CZ_DECL vm::config template_vm_config(vm::config cfg, const std::string& cmdline);

// A clone's Awaken: 64 bytes from the host's getrandom, the host's time, `hostname`, and a random
// machine id.
CZ_DECL cz_agent_Awaken make_awaken(const std::string& hostname, std::error_code& ec);

// The MountRootfs of a run: the root's disk /dev/vda, the scratch disk /dev/vdb when there is one.
CZ_DECL cz_agent_MountRootfs make_mount_rootfs(bool scratch);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/template.ipp>
#endif
