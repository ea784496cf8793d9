#!/bin/sh
# Unpacks the kernel ELF inside an x86 bzImage, for booting through its PVH entry point.
#
#   kernel/bzimage-to-vmlinux.sh BZIMAGE VMLINUX
#
# A bzImage is a real-mode setup stub, a decompressor and the compressed kernel ELF (the
# "payload"). QEMU and Firecracker can boot that ELF directly when it has a PVH note
# (CONFIG_PVH), which skips the decompression the guest would otherwise do itself: under TCG that
# is most of a second for an xz kernel. Where the payload sits is in the setup header (boot
# protocol 2.08+, Documentation/x86/boot.rst): setup_sects at 0x1f1, payload_offset at 0x248 and
# payload_length at 0x24c, relative to the start of the protected-mode code.
#
# Exits 1 with a one-line reason, writing nothing, when BZIMAGE is not a bzImage, its payload is
# compressed in a format no installed tool reads, or the kernel has no PVH note.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BZIMAGE VMLINUX" >&2
    exit 2
fi
image=$1
out=$2
fail() { echo "bzimage-to-vmlinux: $image: $*" >&2; exit 1; }

# u8/u16/u32 OFFSET: the little-endian unsigned integer at OFFSET of the image.
u8() { od -A n -t u1 -j "$1" -N 1 "$image" | tr -d ' '; }
u16() { od -A n -t u2 -j "$1" -N 2 "$image" | tr -d ' '; }
u32() { od -A n -t u4 -j "$1" -N 4 "$image" | tr -d ' '; }

[ -f "$image" ] || fail "no such file"
[ "$(od -A n -c -j 514 -N 4 "$image" | tr -d ' ')" = "HdrS" ] || fail "not a bzImage (no HdrS setup header)"
[ "$(u16 518)" -ge 520 ] || fail "boot protocol older than 2.08 (no payload fields)"
setup_sects=$(u8 497)
[ "$setup_sects" -ne 0 ] || setup_sects=4
start=$(( (setup_sects + 1) * 512 + $(u32 584) ))
length=$(u32 588)
[ "$length" -gt 4 ] || fail "empty payload"

payload() { tail -c +"$((start + 1))" "$image" | head -c "$length"; }
magic=$(payload | od -A n -t x1 -N 6 | tr -d ' ')
# Every format but gzip has the uncompressed size appended (4 bytes, little-endian) by the
# kernel's build; the decompressors stop before it, some with a complaint, so their exit status
# says nothing: the size and the ELF header checked below do.
case "$magic" in
    1f8b*) decompress="gzip -dc" ;;
    fd377a585a00) decompress="xz -dc" ;;
    02214c18*) decompress="lz4 -dc" ;;
    28b52ffd*) decompress="zstd -dc" ;;
    425a68*) decompress="bzip2 -dc" ;;
    5d0000*) decompress="xz --format=lzma -dc" ;;
    *) fail "payload compressed in an unknown format (magic $magic)" ;;
esac
tool=${decompress%% *}
command -v "$tool" >/dev/null 2>&1 || fail "payload needs $tool, which is not installed"

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT INT TERM
payload | $decompress > "$tmp" 2>/dev/null || true
[ "$(od -A n -c -N 4 "$tmp" | tr -d ' ')" = "177ELF" ] || fail "payload does not decompress to an ELF"
if [ "$tool" != gzip ]; then
    expected=$(tail -c +"$((start + length - 3))" "$image" | head -c 4 | od -A n -t u4 | tr -d ' ')
    [ "$(wc -c < "$tmp")" -eq "$expected" ] || fail "payload decompresses to $(wc -c < "$tmp") bytes, not $expected"
fi
# XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point QEMU's -kernel looks for in an ELF.
readelf -n "$tmp" 2>/dev/null | grep -q "Xen.*(0x00000012)" || fail "kernel has no PVH entry note (CONFIG_PVH)"
chmod 644 "$tmp"
mv "$tmp" "$out"
