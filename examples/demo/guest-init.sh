#!/bin/busybox sh
# The demo's guest init (until cz-init exists): mount the image's ext4 root from /dev/vda
# read-only, run the container command inside it with chroot, report its exit code, power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
export PATH=/bin
for m in $(cat /lib/modules/load-order 2>/dev/null); do insmod "/lib/modules/$m" 2>/dev/null; done
mkdir -p /rootfs
if mount -t ext4 -o ro /dev/vda /rootfs; then
    mount -t proc proc /rootfs/proc 2>/dev/null
    chroot /rootfs /bin/sh -c 'cat /etc/motd; echo "uname: $(uname -sr)"; ls /'
    echo "demo: container command exited with $?"
else
    echo "demo: could not mount the image's root filesystem"
fi
sync
poweroff -f
