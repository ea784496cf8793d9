// guest/init/rootfs.hpp — the container's root file system inside the VM: the image's ext4 disk,
// read-only (one cached image serves every container of that image), under an overlay whose upper
// layer takes the container's writes, on tmpfs by default or on a scratch disk.
//
//   <base>/lower    the image disk, mounted read-only
//   <base>/scratch  the upper layer's file system (tmpfs, or the scratch disk)
//                   with upper/ and work/ in it
//   <base>/merged   the overlay: what the container sees as /
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace cz::guest {

struct rootfs_options {
    std::filesystem::path image_device = "/dev/vda";
    std::string image_fstype = "ext4";
    // Empty: the upper layer lives on tmpfs (of tmpfs_size, or the kernel's default of half the
    // RAM). Else a block device with an empty or earlier-used file system of scratch_fstype.
    std::filesystem::path scratch_device;
    std::string scratch_fstype = "ext4";
    std::string tmpfs_size;
    std::filesystem::path base = "/run/cz/rootfs";
    // How long to wait for a disk's device node: virtio-blk probes as its module loads, but the
    // node appears in devtmpfs a moment later.
    std::chrono::milliseconds device_wait{5000};
    // The image disk's read-ahead. Each read is a round trip through QEMU (about 2 ms under TCG),
    // and the image file sits in the host's page cache: a few large reads beat many small ones.
    // Linux's default, 128 KiB, takes 15 reads to page in a 2 MB program such as busybox.
    unsigned image_read_ahead_kib = 2048;
};

// Mounts the three layers and returns <base>/merged. Throws std::system_error naming the step
// (which device, which mount) on failure; what was mounted before the failure stays mounted.
std::filesystem::path mount_rootfs(const rootfs_options& opts);

} // namespace cz::guest
