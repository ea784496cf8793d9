#!/bin/busybox sh
# The init of cz's test VMs (busybox-static + this script). What it does is chosen on the kernel
# command line: cz.test=hello|disk|net|panic|hang|vsock (cz.port=N for net). It prints CZ-* markers
# the tests look for, and powers off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
export PATH=/bin
echo CZ-BOOTED
if [ -f /lib/modules/load-order ]; then
    for m in $(cat /lib/modules/load-order); do
        insmod "/lib/modules/$m" || echo "CZ-INSMOD-FAILED $m"
    done
fi
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
case "$(arg cz.test)" in
hello)
    echo "CZ-HELLO $(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)"
    ;;
disk)
    mkdir -p /ro /rw
    echo "CZ-VDA-RO $(cat /sys/block/vda/ro)"
    mount -t ext4 -o ro /dev/vda /ro && echo "CZ-VDA-CONTENT $(cat /ro/hello.txt)"
    if dd if=/dev/zero of=/dev/vda bs=512 count=1 2>/dev/null; then echo CZ-VDA-WRITABLE; else echo CZ-VDA-WRITE-REFUSED; fi
    mount -t ext4 /dev/vdb /rw && echo written-by-guest > /rw/guest.txt && umount /rw && echo CZ-VDB-WRITTEN
    ;;
net)
    ip link set lo up
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
    # busybox-static's wget crashes in glibc's static NSS; a raw request through nc does not.
    page=$(printf 'GET / HTTP/1.0\r\nHost: 10.0.2.2\r\n\r\n' | nc 10.0.2.2 "$(arg cz.port)" | sed '1,/^\r*$/d')
    echo "CZ-PAGE $page"
    ;;
panic)
    echo CZ-PANICKING
    exit 1
    ;;
vsock)
    # tests/vsock's guest program serves on vsock port 1234 until told to reboot.
    exec /bin/vsock_guest
    ;;
hang)
    echo CZ-HANGING
    while true; do sleep 1000; done
    ;;
esac
echo CZ-DONE
sync
# ACPI power-off where the VM has ACPI; without it (acpi=off) a reboot, which -no-reboot turns
# into the end of the VM.
if [ -d /sys/firmware/acpi ]; then poweroff -f; else reboot -f; fi
