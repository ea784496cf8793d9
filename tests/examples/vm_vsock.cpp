// examples/vm_vsock_hello.cpp against a real VM (QEMU, TCG here): it boots Debian's kernel with
// vm_vsock_guest as the whole initramfs, and the guest's answer comes back over cz's vsock device.
#include "support/support.hpp"
#include "vm/support.hpp"

#include <cstdlib>
#include <string>

using namespace cz_test;

TEST_CASE("vm_vsock_hello talks to its guest over vsock and the VM powers off") {
    if (!have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 is not installed");
    // The vm suite's kernel (fetched into the test root on first use) with the vsock modules.
    cz::vm::test::debian_kernel({"vmw_vsock_virtio_transport.ko"});
    const std::string build = std::getenv("CZ_BUILD_ROOT");
    std::string out;
    int rc = sh(quote(build + "/examples/vm_vsock_hello") + " " +
                    quote(build + "/examples/vm_vsock_guest") + " " +
                    quote(cz::vm::test::test_root().string()) + " 2>&1",
                &out);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("hello from the guest (Linux ") != std::string::npos);
    CHECK(out.find("you said: hello from the host") != std::string::npos);
    CHECK(out.find("VM: ") != std::string::npos);
}
