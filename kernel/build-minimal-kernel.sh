#!/bin/sh
# Builds cz's minimal guest kernel from Debian's linux-source package: `make tinyconfig`, the
# fragment kernel/minimal.config merged on top, everything built in.
#
#   kernel/build-minimal-kernel.sh [DEST]
#   kernel/build-minimal-kernel.sh --check [DEST]
#
# --check builds nothing: it exits 0 when DEST holds a kernel whose config has every line of
# minimal.config, and 1 (saying which lines differ) when DEST is missing or was built from an
# older fragment.
#
# DEST defaults to <cz root>/kernels/minimal (cz root: $CZ_ROOT, else $XDG_DATA_HOME/cz, else
# ~/.local/share/cz). The result, replaced atomically by rename:
#
#   DEST/vmlinuz   bzImage
#   DEST/vmlinux   the uncompressed ELF with a PVH note (for VMMs that boot it directly)
#   DEST/version   the kernel release
#   DEST/config    the full .config
#
# Needs linux-source-<version> (installed with apt-get when missing; that needs root), make, gcc,
# flex, bison, bc, libelf-dev. Takes about 5 minutes on 2 cores; JOBS overrides the parallelism.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/minimal.config
check_only=0
if [ "${1:-}" = "--check" ]; then check_only=1; shift; fi
root=${CZ_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/cz}
dest=${1:-$root/kernels/minimal}
jobs=${JOBS:-$(nproc)}

# Whether the full .config $1 has every line of the fragment. Kconfig silently drops options
# whose dependencies are unmet, so a build insists on each; --check uses it to spot a cached
# kernel built from an older fragment.
satisfies_fragment() {
    ok=0
    while IFS= read -r line; do
        case "$line" in
            CONFIG_*=*) grep -qx "$line" "$1" || { echo "build-minimal-kernel: $line is missing" >&2; ok=1; } ;;
            "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}
                if grep -q "^$name=" "$1"; then echo "build-minimal-kernel: $name is set" >&2; ok=1; fi ;;
        esac
    done < "$fragment"
    return $ok
}

if [ "$check_only" -eq 1 ]; then
    [ -f "$dest/vmlinuz" ] && [ -f "$dest/config" ] || { echo "build-minimal-kernel: no kernel in $dest" >&2; exit 1; }
    satisfies_fragment "$dest/config" || { echo "build-minimal-kernel: $dest was built from another minimal.config" >&2; exit 1; }
    exit 0
fi

pkg=$(apt-cache depends linux-source 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-source-/ { print $2; exit }')
pkg=${pkg:-linux-source-6.1}
tarball=/usr/src/$pkg.tar.xz
missing=""
[ -f "$tarball" ] || missing="$missing $pkg"
for tool in make gcc flex bison bc; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -f /usr/include/libelf.h ] || missing="$missing libelf-dev"
if [ -n "$missing" ]; then
    missing=$(echo "$missing" | sed 's/\bgcc\b/build-essential/; s/\bmake\b/build-essential/')
    echo "build-minimal-kernel: installing:$missing" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cz-kernel-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
echo "build-minimal-kernel: unpacking $tarball" >&2
tar -xaf "$tarball" -C "$work"
cd "$work"/linux-source-*

make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make -s olddefconfig
satisfies_fragment .config || exit 1

echo "build-minimal-kernel: building with $jobs jobs" >&2
make -s -j"$jobs" bzImage vmlinux >&2

out=$work/out
mkdir -p "$out"
cp arch/x86/boot/bzImage "$out/vmlinuz"
cp vmlinux "$out/vmlinux"
cp .config "$out/config"
make -s kernelrelease > "$out/version"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"
mv "$out" "$dest.new"
if [ -e "$dest" ]; then rm -rf "$dest.old"; mv "$dest" "$dest.old"; fi
mv "$dest.new" "$dest"
rm -rf "$dest.old"
echo "build-minimal-kernel: $(cat "$dest/version") in $dest" >&2
