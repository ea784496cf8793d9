// The cz roots of the `cz run` tests (suite vm): a store with a busybox image, the test root's
// kernels, and the cz tool of this build. Shared by run_vm.cpp, detached_vm.cpp and
// volumes_vm.cpp.
#pragma once

#include "../vm/support.hpp"

#include <cz/oci/archive.hpp>
#include <cz/oci/store.hpp>
#include <cz/vm/template.hpp>

#include <support/support.hpp>

#include <unistd.h>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace {

// Directories removed when the program ends (by a static's destructor: the children the tests
// fork exec or _exit, and never run it).
struct removed_at_exit {
    std::vector<std::filesystem::path> paths;
    ~removed_at_exit() {
        for (const auto& p : paths) {
            std::error_code ignored;
            // The VM templates first: their memory files live in /dev/shm, not under the root.
            for (const auto& t : cz::vm::list_templates(p, ignored))
                cz::vm::remove_template(p, t.key, ignored);
            std::filesystem::remove_all(p, ignored);
        }
    }
};

// Makes `<test root>/<name>.<pid>`: a store with `busybox` (busybox-static and its applets, a user
// "alice" (1000:1000), Env GREETING=hello-from-image, Cmd ["sh"]), and the test root's kernels,
// Debian's with `modules` among those it fetched. Removed when the program ends.
inline std::filesystem::path make_busybox_root(const std::string& name,
                                               std::initializer_list<const char*> modules) {
    namespace fs = std::filesystem;
    std::vector<std::string> wanted(modules.begin(), modules.end());
    auto kernel = cz::vm::test::debian_kernel(wanted);
    (void)kernel;
    fs::path r = cz::vm::test::test_root() / (name + "." + std::to_string(::getpid()));
    fs::remove_all(r);
    fs::create_directories(r);
    static removed_at_exit made;
    made.paths.push_back(r);
    fs::create_directory_symlink(cz::vm::test::test_root() / "kernels", r / "kernels");
    auto tree = r / "tree";
    cz_test::sh_ok("mkdir -p " + cz_test::quote((tree / "bin").string()) + " " +
                   cz_test::quote((tree / "etc").string()) + " " +
                   cz_test::quote((tree / "tmp").string()) + " && cp /bin/busybox " +
                   cz_test::quote((tree / "bin").string()) + " && cd " +
                   cz_test::quote((tree / "bin").string()) +
                   " && for a in $(./busybox --list); do [ -e $a ] || ln -s busybox $a; done");
    cz_test::write_file(tree / "etc" / "passwd",
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
    fs::remove_all(tree);
    fs::remove(tar);
    return r;
}

// The root of run_vm.cpp and detached_vm.cpp, made once per program.
inline const std::filesystem::path& cz_root() {
    static const std::filesystem::path root = make_busybox_root(
        "cz-run-root", {"overlay.ko", "virtio_blk.ko", "virtio_console.ko", "virtio_net.ko"});
    return root;
}

inline std::string cz_tool() {
    return cz::vm::test::required_env_path("CZ_BUILD_ROOT").string() + "/examples/cz";
}

} // namespace
