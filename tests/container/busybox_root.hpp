// The cz root of the `cz run` tests (suite vm): a store with a busybox image, the test root's
// kernels, and the cz tool of this build. Shared by run_vm.cpp and detached_vm.cpp.
#pragma once

#include "../vm/support.hpp"

#include <cz/oci/archive.hpp>
#include <cz/oci/store.hpp>

#include <support/support.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

namespace {

// The cz root of these tests: a store with `busybox` (busybox-static and its applets, a user
// "alice" (1000:1000), Env GREETING=hello-from-image, Cmd ["sh"]), and the test root's kernels.
// Made once per program.
const std::filesystem::path& cz_root() {
    static const std::filesystem::path root = [] {
        auto kernel = cz::vm::test::debian_kernel(
            {"overlay.ko", "virtio_blk.ko", "virtio_console.ko", "virtio_net.ko"});
        (void)kernel;
        std::filesystem::path r =
            cz::vm::test::test_root() / ("cz-run-root." + std::to_string(::getpid()));
        std::filesystem::remove_all(r);
        std::filesystem::create_directories(r);
        std::filesystem::create_directory_symlink(cz::vm::test::test_root() / "kernels",
                                                  r / "kernels");
        auto tree = r / "tree";
        cz_test::sh_ok("mkdir -p " + cz_test::quote((tree / "bin").string()) + " " +
                       cz_test::quote((tree / "etc").string()) + " " +
                       cz_test::quote((tree / "tmp").string()) + " && cp /bin/busybox " +
                       cz_test::quote((tree / "bin").string()) + " && cd " +
                       cz_test::quote((tree / "bin").string()) +
                       " && for a in $(./busybox --list); do [ -e $a ] || ln -s busybox $a; done");
        cz_test::write_file(
            tree / "etc" / "passwd",
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        cz_test::write_file(tree / "etc" / "group", "root:x:0:\nalice:x:1000:\n");
        auto tar = r / "busybox.tar";
        cz_test::sh_ok("tar -C " + cz_test::quote(tree.string()) + " -cf " +
                       cz_test::quote(tar.string()) + " .");
        auto content = cz::oci::content_store::open(r);
        cz::oci::image_store images(content);
        cz::oci::rootfs_options o;
        o.config.env = {"PATH=/bin", "GREETING=hello-from-image", "KEEP=image"};
        o.config.cmd = std::vector<std::string>{"sh"};
        cz::oci::import_rootfs(images, tar, "busybox", o);
        std::filesystem::remove_all(tree);
        std::filesystem::remove(tar);
        return r;
    }();
    return root;
}

std::string cz_tool() {
    return cz::vm::test::required_env_path("CZ_BUILD_ROOT").string() + "/examples/cz";
}

} // namespace
