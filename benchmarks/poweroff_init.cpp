// The floor's guest: a static /init that powers the VM off at once. A VM that boots this costs
// what every VM costs (QEMU, firmware, kernel, initramfs) and nothing more.
#include <sys/reboot.h>
#include <unistd.h>

int main() {
    ::sync();
    ::reboot(RB_POWER_OFF);
    return 1;
}
