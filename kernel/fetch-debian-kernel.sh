#!/bin/sh
# Fetches Debian's current cloud kernel and the modules a cz guest needs, into a cache directory.
#
#   kernel/fetch-debian-kernel.sh [DEST]
#
# DEST defaults to <cz root>/kernels/debian, where the cz root is $CZ_ROOT, else $XDG_DATA_HOME/cz,
# else ~/.local/share/cz. The result (replaced atomically, by rename):
#
#   DEST/vmlinuz        the kernel (bzImage)
#   DEST/vmlinux        the kernel ELF unpacked from it (bzimage-to-vmlinux.sh): cz boots it
#                       through its PVH entry, which skips the guest's decompression
#   DEST/version        the kernel release, e.g. 6.1.0-56-cloud-amd64
#   DEST/package        the Debian package and version it came from
#   DEST/modules/*.ko   uncompressed modules
#   DEST/modules.order  their file names, one a line, dependencies first (load in this order)
#
# The versioned package name is resolved from the linux-image-cloud-amd64 metapackage; the package
# is downloaded with `apt-get download` (no installation, no root needed beyond apt's cache being
# current) and unpacked with dpkg-deb. Module order follows each module's `depends=` field from
# its .modinfo section; modules built into the kernel (modules.builtin) are left out.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
meta=${CZ_KERNEL_PACKAGE:-linux-image-cloud-amd64}
# virtio_console: virtio-serial ports, for VMs that add one through qemu_options::devices (a guest
# agent's channel; the vsock benchmark's comparison). It binds only to such a device.
# fuse, virtiofs: host folders (cz run -v) through virtio-fs. The guest loads them only in runs
# that have volumes.
wanted="virtio_ring virtio virtio_mmio virtio_blk virtio_net vsock
        vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport overlay virtio_console
        fuse virtiofs"
# Taken when the kernel has them: virtio-9p, the volumes' fallback where the host has no
# virtiofsd. Debian's cloud kernel has none (CONFIG_NET_9P is not set); its generic kernel
# (CZ_KERNEL_PACKAGE=linux-image-amd64) has them.
optional="9pnet 9pnet_virtio 9p"

root=${CZ_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/cz}
dest=${1:-$root/kernels/debian}

pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
if [ -z "$pkg" ]; then
    echo "fetch-debian-kernel: cannot resolve $meta to a versioned package (run apt-get update?)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cz-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
chmod 755 "$work" # apt-get download drops privileges to _apt when it can
cd "$work"
echo "fetch-debian-kernel: downloading $pkg" >&2
apt-get download -q "$pkg" >&2
deb=$(ls ./*.deb)
dpkg-deb -x "$deb" unpacked
pkgversion=$(dpkg-deb -f "$deb" Version)

release=$(ls unpacked/lib/modules)
moddir=unpacked/lib/modules/$release
if [ ! -f "unpacked/boot/vmlinuz-$release" ] || [ "$(echo "$release" | wc -l)" -ne 1 ]; then
    echo "fetch-debian-kernel: unexpected layout in $pkg" >&2
    exit 1
fi

out=$work/out
mkdir -p "$out/modules"
cp "unpacked/boot/vmlinuz-$release" "$out/vmlinuz"
"$here/bzimage-to-vmlinux.sh" "$out/vmlinuz" "$out/vmlinux" ||
    echo "fetch-debian-kernel: no PVH kernel ELF; guests boot the bzImage" >&2
echo "$release" > "$out/version"
echo "$pkg $pkgversion" > "$out/package"
: > "$out/modules.order"

# module_file NAME: the path of module NAME (dashes and underscores are the same to the kernel).
module_file() {
    pattern=$(echo "$1" | sed 's/[-_]/[-_]/g')
    find "$moddir/kernel" -regex ".*/$pattern\.ko\(\.xz\|\.zst\|\.gz\)?" | head -n 1
}

# is_builtin NAME: whether NAME is compiled into the kernel.
is_builtin() {
    [ -f "$moddir/modules.builtin" ] &&
        sed 's/-/_/g' "$moddir/modules.builtin" | grep -q "/$(echo "$1" | sed 's/-/_/g')\.ko$"
}

# decompressed SRC DST: copies a module, decompressing .ko.xz/.ko.zst/.ko.gz.
decompressed() {
    case "$1" in
        *.xz) xz -dc "$1" > "$2" ;;
        *.zst) zstd -qdc "$1" > "$2" ;;
        *.gz) gzip -dc "$1" > "$2" ;;
        *) cp "$1" "$2" ;;
    esac
}

visited=" "
# visit NAME: adds NAME after its dependencies (depth first); each module once.
visit() {
    local name file deps dep
    name=$(echo "$1" | sed 's/-/_/g')
    case "$visited" in *" $name "*) return 0 ;; esac
    visited="$visited$name "
    file=$(module_file "$name")
    if [ -z "$file" ]; then
        if is_builtin "$name"; then return 0; fi
        echo "fetch-debian-kernel: module $name is neither in $pkg nor built in" >&2
        exit 1
    fi
    decompressed "$file" "$out/modules/$name.ko"
    deps=$(tr '\0' '\n' < "$out/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)
    for dep in $(echo "$deps" | tr ',' ' '); do
        visit "$dep"
    done
    echo "$name.ko" >> "$out/modules.order"
}
for m in $wanted; do visit "$m"; done
for m in $optional; do
    if [ -n "$(module_file "$m")" ]; then visit "$m"; fi
done

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"
mv "$out" "$dest.new"
if [ -e "$dest" ]; then
    rm -rf "$dest.old"
    mv "$dest" "$dest.old"
fi
mv "$dest.new" "$dest"
rm -rf "$dest.old"
echo "fetch-debian-kernel: $release ($(wc -l < "$dest/modules.order") modules) in $dest" >&2
