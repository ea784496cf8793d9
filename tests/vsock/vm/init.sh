#!/bin/busybox sh
# /init of the vsock test initramfs (vm_harness.hpp): load the kernel's modules in the order
# cz::vm::initramfs_builder wrote down, then run the test guest.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /lib/modules/load-order); do
    /bin/busybox insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done
echo "init: modules loaded"
exec /bin/vsock_guest
