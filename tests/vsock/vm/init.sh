#!/bin/busybox sh
# /init of the vsock test initramfs: load the virtio-mmio and vsock drivers, run the test guest.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_mmio vsock vmw_vsock_virtio_transport_common \
         vmw_vsock_virtio_transport virtio_console; do
    [ -f /modules/$m.ko ] && /bin/busybox insmod /modules/$m.ko
done
echo "init: modules loaded"
exec /vsock_guest
