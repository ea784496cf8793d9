// guest/init/boot.hpp — what cz-init does first, as PID 1 of a fresh VM: the kernel hands it an
// initramfs and nothing mounted.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cz::guest {

// Mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run and /sys/fs/cgroup (cgroup2), in
// that order, creating the mount points. One already mounted is left as it is. Throws
// std::system_error naming the mount that failed.
void mount_early_filesystems();

// Leaves the initramfs: pivot_root(2) refuses to work while / is the kernel's initial rootfs, and
// every container starts with it. So, as switch_root does: the initramfs's files are deleted
// (their memory is returned; cz-init keeps running from its open executable, the modules are
// loaded already), a tmpfs becomes the new /, and the early mounts move along. Nothing happens
// when / is not the initial rootfs. Throws std::system_error naming the step.
void leave_initramfs();

// Gives child cgroups every controller the root cgroup has (memory, cpu, pids, io...), so that
// containers can have limits. Returns the controllers enabled; throws on a write error.
std::vector<std::string>
enable_cgroup_controllers(const std::filesystem::path& root = "/sys/fs/cgroup");

// Loads the kernel modules cz/vm's initramfs builder packed: `dir`/load-order lists their file
// names, dependencies first. Without that file (the minimal kernel has everything built in) there
// is nothing to do. A module already loaded or built in counts as loaded. Returns one message per
// module that failed; the caller decides whether that matters (a missing overlay module shows up
// again, clearly, when the root filesystem is mounted).
std::vector<std::string> load_kernel_modules(const std::filesystem::path& dir = "/lib/modules");

// Syncs the file systems and powers the VM off (or reboots it). Never returns: if the kernel
// refuses, it waits forever rather than let PID 1 exit, which would panic the kernel.
[[noreturn]] void power_off(bool reboot = false) noexcept;

} // namespace cz::guest
