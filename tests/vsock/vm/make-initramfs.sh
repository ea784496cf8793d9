#!/bin/sh
# Builds the vsock VM test assets: OUT/vmlinuz (Debian's cloud kernel, the version that
# linux-image-cloud-amd64 depends on) and OUT/initramfs.cpio.gz (busybox-static, the vsock and
# virtio-mmio modules, /init, and the static test guest).
#
# usage: make-initramfs.sh OUT GUEST_BINARY INIT_SCRIPT
# Needs apt-get (to download the kernel package once; cached in OUT), dpkg-deb, cpio, busybox.
set -eu
out=$1; guest=$(realpath "$2"); init=$(realpath "$3")
mkdir -p "$out"
cd "$out"
fetch_kernel() {
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$pkg" ] || { echo "no linux-image-cloud-amd64 dependency known to apt" >&2; return 1; }
    rm -rf deb x && mkdir deb && (cd deb && apt-get download "$pkg" >/dev/null 2>&1) || return 1
    dpkg-deb -x deb/*.deb x || return 1
    rm -rf modules && mkdir modules
    for m in virtio_ring virtio virtio_mmio vsock vmw_vsock_virtio_transport_common \
             vmw_vsock_virtio_transport virtio_console; do
        f=$(find x/lib/modules -name "$m.ko*" | head -1)
        [ -n "$f" ] || continue
        case $f in
            *.xz) xz -dc "$f" > modules/$m.ko ;;
            *.zst) zstd -qdc "$f" > modules/$m.ko ;;
            *) cp "$f" modules/$m.ko ;;
        esac
    done
    cp x/boot/vmlinuz-* vmlinuz.tmp && mv vmlinuz.tmp vmlinuz
    rm -rf x deb
}
if [ ! -f vmlinuz ] || [ ! -d modules ]; then
    # Without a kernel the VM tests skip (saying why); the build itself does not fail.
    fetch_kernel || echo "make-initramfs: could not fetch the Debian cloud kernel" >&2
fi
busybox=$(command -v busybox)
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/modules"
cp "$busybox" "$root/bin/busybox"
cp modules/*.ko "$root/modules/" 2>/dev/null || true
cp "$guest" "$root/vsock_guest"
cp "$init" "$root/init"
chmod 755 "$root/init" "$root/vsock_guest"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > initramfs.cpio.gz.tmp
mv initramfs.cpio.gz.tmp initramfs.cpio.gz
rm -rf "$root"
