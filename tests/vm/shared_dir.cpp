// cz/vm/shared_dir.hpp without a VM: QEMU's and virtiofsd's words, tags, the transport choice,
// the device hook's refusals, and (as root, with Debian's virtiofsd) a virtiofsd started by the
// hook, serving its socket, and gone once the hook's exit handlers ran. Also spawn_options'
// read_only_dirs, which a read-only share relies on.
#include <cz/vm/shared_dir.hpp>

#include "support.hpp"

#include <asio/io_context.hpp>
#include <doctest/doctest.h>
#include <support/support.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using strings = std::vector<std::string>;

namespace {

bool has(const strings& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

bool can_connect(const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

} // namespace

TEST_SUITE("vm") {

    TEST_CASE("shared_dir: QEMU's words for virtio-fs and virtio-9p, virtiofsd's argv") {
        CHECK(cz::vm::qemu_virtiofs_args("/s/v.sock", "czvol0", "czfs0") ==
              strings{"-chardev", "socket,id=czfs0,path=/s/v.sock", "-device",
                      "vhost-user-fs-device,chardev=czfs0,tag=czvol0"});
        cz::vm::shared_dir d{"/srv/data", "czvol1", true};
        CHECK(cz::vm::qemu_9p_args(d, "czfs1", true) ==
              strings{"-fsdev",
                      "local,id=czfs1,path=/srv/data,security_model=passthrough,readonly=on",
                      "-device", "virtio-9p-device,fsdev=czfs1,mount_tag=czvol1"});
        d.read_only = false;
        CHECK(cz::vm::qemu_9p_args(d, "czfs1", false)[1] ==
              "local,id=czfs1,path=/srv/data,security_model=none,readonly=off");
        auto argv = cz::vm::virtiofsd_args("/usr/lib/qemu/virtiofsd", d, 7);
        CHECK(argv.front() == "/usr/lib/qemu/virtiofsd");
        CHECK(has(argv, "--fd=7"));
        CHECK(has(argv, "source=/srv/data"));
        CHECK(has(argv, "sandbox=namespace"));
        CHECK(cz::vm::guest_mount_type(cz::vm::shared_dir_transport::virtiofs) == "virtiofs");
        CHECK(cz::vm::guest_mount_type(cz::vm::shared_dir_transport::virtio_9p) == "9p");
        CHECK(cz::vm::guest_mount_options(cz::vm::shared_dir_transport::virtiofs).empty());
        CHECK(has(cz::vm::guest_mount_options(cz::vm::shared_dir_transport::virtio_9p),
                  "trans=virtio"));
    }

    TEST_CASE("shared_dir: tags; the transport: virtio-fs only as root with a virtiofsd") {
        CHECK(cz::vm::valid_shared_dir_tag("czvol0"));
        CHECK(cz::vm::valid_shared_dir_tag(std::string(31, 'a')));
        CHECK_FALSE(cz::vm::valid_shared_dir_tag(std::string(32, 'a')));
        CHECK_FALSE(cz::vm::valid_shared_dir_tag(""));
        CHECK_FALSE(cz::vm::valid_shared_dir_tag("a,b"));
        CHECK_FALSE(cz::vm::valid_shared_dir_tag("a b"));
        CHECK(cz::vm::choose_shared_dir_transport("") == cz::vm::shared_dir_transport::virtio_9p);
        CHECK(cz::vm::choose_shared_dir_transport("/usr/lib/qemu/virtiofsd") ==
              (cz_test::is_root() ? cz::vm::shared_dir_transport::virtiofs
                                  : cz::vm::shared_dir_transport::virtio_9p));
        ::setenv("CZ_VIRTIOFSD", "", 1);
        CHECK(cz::vm::find_virtiofsd().empty());
        ::setenv("CZ_VIRTIOFSD", "/bin/true", 1);
        CHECK(cz::vm::find_virtiofsd() == "/bin/true");
        ::unsetenv("CZ_VIRTIOFSD");
    }

    TEST_CASE("shared_dir: the hook refuses a bad tag, a missing or non-directory path, a comma") {
        cz_test::temp_dir tmp;
        asio::io_context ctx;
        cz_test::write_file(tmp / "file", "x");
        fs::create_directory(tmp / "a,b");
        struct bad {
            cz::vm::shared_dir dir;
            const char* why;
        };
        for (const auto& b : {bad{{tmp.path, "bad tag", false}, "tag"},
                              bad{{tmp.path / "missing", "t", false}, "directory"},
                              bad{{tmp.path / "file", "t", false}, "directory"},
                              bad{{"relative", "t", false}, "directory"},
                              bad{{tmp.path / "a,b", "t", false}, "comma"}}) {
            for (auto transport : {cz::vm::shared_dir_transport::virtiofs,
                                   cz::vm::shared_dir_transport::virtio_9p}) {
                cz::vm::device_context d(ctx, tmp.path);
                auto words = cz::vm::qemu_shared_dir_device(b.dir, transport, 0, "/bin/true")(d);
                INFO(b.dir.host.string(), " ", b.why);
                CHECK(words.empty());
                CHECK(d.error() == cz::vm::errc::invalid_config);
                CHECK(d.error_detail().message.find(b.why) != std::string::npos);
            }
        }
        cz::vm::device_context d(ctx, tmp.path);
        auto words = cz::vm::qemu_shared_dir_device(
            {tmp.path, "t", false}, cz::vm::shared_dir_transport::virtiofs, 0, "")(d);
        CHECK(words.empty());
        CHECK(d.error() == cz::vm::errc::vmm_not_found);
    }

    TEST_CASE("shared_dir: the hook starts virtiofsd on its socket; the exit handlers end it") {
        if (!cz_test::is_root()) CZ_SKIP("virtiofsd needs root");
        auto virtiofsd = cz::vm::find_virtiofsd();
        if (virtiofsd.empty())
            CZ_SKIP("no virtiofsd (/usr/lib/qemu/virtiofsd: qemu-system-common)");
        cz_test::temp_dir state, shared;
        asio::io_context ctx;
        for (bool read_only : {false, true}) {
            cz::vm::device_context d(ctx, state.path);
            auto words = cz::vm::qemu_shared_dir_device({shared.path, "czvol3", read_only},
                                                        cz::vm::shared_dir_transport::virtiofs, 3,
                                                        virtiofsd)(d);
            INFO(d.error_detail().message);
            REQUIRE_FALSE(d.error());
            auto socket = state.path / "virtiofsd-3.sock";
            CHECK(words == cz::vm::qemu_virtiofs_args(socket, "czvol3", "czfs3"));
            CHECK(cz::vm::test::processes_with_arg("source=" + shared.str()) > 0);
            CHECK(can_connect(socket));
            for (auto& f : d.exit_handlers())
                f();
            CHECK(cz::vm::test::processes_with_arg("source=" + shared.str()) == 0);
        }
    }

    TEST_CASE("process: read_only_dirs: the child sees a read-only bind; the parent does not") {
        if (!cz_test::is_root()) CZ_SKIP("a mount namespace needs root");
        cz_test::temp_dir dir;
        cz::vm::spawn_options so;
        so.argv = {"/bin/sh", "-c", "touch " + cz_test::quote(dir / "child") + " 2>/dev/null"};
        so.read_only_dirs = {dir.str()};
        std::error_code ec;
        auto child = cz::vm::child_process::spawn(so, ec);
        REQUIRE_FALSE(ec);
        auto e = child.wait(ec);
        CHECK(e.code != 0);
        CHECK_FALSE(fs::exists(dir / "child"));
        cz_test::write_file(dir / "parent", "still writable here");
        CHECK(fs::exists(dir / "parent"));
    }

} // TEST_SUITE
