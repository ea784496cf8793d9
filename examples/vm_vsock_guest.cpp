// vm_vsock_guest: the guest half of examples/vm_vsock_hello.cpp. It runs as the VM's PID 1 (the
// whole initramfs is this static program and, on Debian's kernel, the modules it loads), answers
// one vsock connection on port 1024 and powers the VM off.
//
// Plain C library calls only: a guest program needs no cz module.
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

// cz/vm's initramfs builder lists the kernel's modules in /lib/modules/load-order, dependencies
// first. The minimal kernel has everything built in and no such file.
void load_modules() {
    std::ifstream order("/lib/modules/load-order");
    for (std::string name; std::getline(order, name);) {
        int fd = ::open(("/lib/modules/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::syscall(SYS_finit_module, fd, "", 0) != 0)
            std::fprintf(stderr, "guest: cannot load %s\n", name.c_str());
        if (fd >= 0) ::close(fd);
    }
}

void answer_one_connection() {
    int listener = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = 1024;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0) {
        std::perror("guest: vsock port 1024");
        return;
    }
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;
    char buf[256];
    ssize_t n = ::read(conn, buf, sizeof buf);
    utsname u{};
    ::uname(&u);
    std::string reply = "hello from the guest (Linux " + std::string(u.release) +
                        "), you said: " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (::write(conn, reply.data(), reply.size()) < 0) std::perror("guest: write");
    ::close(conn);
    ::close(listener);
}

} // namespace

int main() {
    load_modules();
    answer_one_connection();
    ::sync();
    ::reboot(RB_POWER_OFF); // PID 1 must not exit: that would panic the kernel
    return 0;
}
