// cz/container/volume.hpp without a VM: -v's grammar, the checks against the host, the mounts a
// run adds to the spec, which kernel modules go with which transport, and the kernel checks.
#include <cz/container/volume.hpp>

#include <cz/container/spec.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <support/support.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace ct = cz::container;
namespace fs = std::filesystem;
using strings = std::vector<std::string>;

namespace {

ct::volume parsed(const std::string& text) {
    std::error_code ec;
    std::string why;
    auto v = ct::parse_volume(text, ec, &why);
    INFO(text, ": ", why);
    REQUIRE_FALSE(ec);
    return v;
}

std::string refused(const std::string& text) {
    std::error_code ec;
    std::string why;
    ct::parse_volume(text, ec, &why);
    INFO(text);
    CHECK(ec == ct::errc::bad_option);
    CHECK(why.find(text) != std::string::npos); // the error names the input
    return why;
}

std::string check_refused(const std::vector<ct::volume>& vs) {
    std::error_code ec;
    std::string why;
    auto out = ct::check_volumes(vs, ec, &why);
    CHECK(ec == ct::errc::bad_option);
    CHECK(out.empty());
    return why;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("container") {

    TEST_CASE("volume: HOSTDIR:GUESTDIR[:ro|:rw] as docker's -v takes a host path") {
        auto v = parsed("/srv/data:/data");
        CHECK(v.host == "/srv/data");
        CHECK(v.guest == "/data");
        CHECK_FALSE(v.read_only);
        CHECK(parsed("/srv/data:/data:ro").read_only);
        CHECK_FALSE(parsed("/srv/data:/data:rw").read_only);
        CHECK(parsed("/a/./b/:/x/../y/./z/").guest == "/y/z");
        CHECK(parsed("/a/./b/:/x").host == "/a/b/");
        auto cwd = fs::current_path();
        CHECK(parsed("./work:/w").host == (cwd / "work").lexically_normal());
        CHECK(parsed("../up:/w").host == (cwd / "../up").lexically_normal());
        CHECK(parsed(".:/w").host == (cwd / ".").lexically_normal());
        CHECK(parsed("data/:/w").host == (cwd / "data/").lexically_normal());
    }

    TEST_CASE("volume: what -v refuses, each error naming the input and the part") {
        CHECK(contains(refused("/only"), "HOSTDIR:GUESTDIR"));
        CHECK(contains(refused("/a:/b:ro:x"), "HOSTDIR:GUESTDIR"));
        CHECK(contains(refused("/a:/b:z"), "option \"z\""));
        CHECK(contains(refused("/a:/b:"), "option \"\""));
        CHECK(contains(refused(":/b"), "host directory is empty"));
        CHECK(contains(refused("data:/b"), "volume name"));
        CHECK(contains(refused("/a:b"), "not absolute"));
        CHECK(contains(refused("/a:"), "not absolute"));
        CHECK(contains(refused("/a:/"), "cannot be /"));
        CHECK(contains(refused("/a:/x/.."), "cannot be /"));
        CHECK(contains(refused(""), "HOSTDIR:GUESTDIR"));
    }

    TEST_CASE("volume: checks against the host: exists, a directory, canonical, no mount twice") {
        cz_test::temp_dir tmp;
        fs::create_directory(tmp.path / "dir");
        fs::create_directory_symlink(tmp.path / "dir", tmp.path / "link");
        cz_test::write_file(tmp.path / "file", "x");
        std::error_code ec;
        auto ok = ct::check_volumes(
            {{tmp.path / "link", "/a", true}, {tmp.path / "dir", "/b", false}}, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(ok.size() == 2);
        CHECK(ok[0].host == fs::canonical(tmp.path / "dir"));
        CHECK(ok[0].read_only);
        CHECK(ok[1].guest == "/b");
        auto why = check_refused({{tmp.path / "dir", "/a"}, {tmp.path / "missing", "/b"}});
        CHECK(contains(why, "volume 2"));
        CHECK(contains(why, "does not exist"));
        why = check_refused({{tmp.path / "file", "/a"}});
        CHECK(contains(why, "volume 1"));
        CHECK(contains(why, "not a directory"));
        why = check_refused({{tmp.path / "dir", "/a"}, {tmp.path / "link", "/a"}});
        CHECK(contains(why, "/a is mounted twice"));
        why = check_refused({{tmp.path / "dir", "relative"}});
        CHECK(contains(why, "not an absolute path"));
        CHECK(ct::check_volumes({}, ec).empty());
        CHECK_FALSE(ec);
    }

    TEST_CASE("volume: the mounts in the runtime spec, by tag, ro where asked") {
        std::vector<ct::volume> vs{{"/h/a", "/data", false}, {"/h/b", "/conf", true}};
        auto fs_mounts = ct::volume_mounts(vs, cz::vm::shared_dir_transport::virtiofs);
        REQUIRE(fs_mounts.size() == 2);
        CHECK(fs_mounts[0].destination == "/data");
        CHECK(fs_mounts[0].type == "virtiofs");
        CHECK(fs_mounts[0].source == "czvol0");
        CHECK(fs_mounts[0].options.empty());
        CHECK(fs_mounts[1].source == "czvol1");
        CHECK(fs_mounts[1].options == strings{"ro"});
        auto p9 = ct::volume_mounts(vs, cz::vm::shared_dir_transport::virtio_9p);
        CHECK(p9[1].type == "9p");
        CHECK(p9[1].options.front() == "ro");
        CHECK(std::find(p9[1].options.begin(), p9[1].options.end(), "trans=virtio") !=
              p9[1].options.end());

        cz::oci::container_config image;
        image.cmd = strings{"sh"};
        ct::spec_options o;
        o.mounts = fs_mounts;
        std::error_code ec;
        std::string why;
        auto spec = nlohmann::json::parse(ct::make_runtime_spec(image, o, ec, &why));
        REQUIRE_FALSE(ec);
        const auto& mounts = spec["mounts"];
        REQUIRE(mounts.size() >= 2);
        // After docker's defaults, in order.
        CHECK(mounts[mounts.size() - 2]["destination"] == "/data");
        CHECK(mounts[mounts.size() - 2]["type"] == "virtiofs");
        CHECK(mounts[mounts.size() - 2]["source"] == "czvol0");
        CHECK_FALSE(mounts[mounts.size() - 2].contains("options"));
        CHECK(mounts.back()["options"] == nlohmann::json{"ro"});
        for (const char* bad : {"", "/", "data"}) {
            o.mounts = {{bad, "virtiofs", "czvol0", {}}};
            ct::make_runtime_spec(image, o, ec, &why);
            CHECK(ec == ct::errc::bad_option);
            CHECK(contains(why, "mount destination"));
        }
    }

    TEST_CASE("volume: -v's transports; which modules go with which; what the kernel must have") {
        std::error_code ec;
        CHECK(ct::parse_volume_transport("9p", ec) == ct::volume_transport::virtio_9p);
        CHECK(ct::parse_volume_transport("virtiofs", ec) == ct::volume_transport::virtiofs);
        CHECK(ct::parse_volume_transport("auto", ec) == ct::volume_transport::automatic);
        ct::parse_volume_transport("nfs", ec);
        CHECK(ec == ct::errc::bad_option);
        CHECK(ct::resolve_volume_transport(ct::volume_transport::virtio_9p, "/x") ==
              cz::vm::shared_dir_transport::virtio_9p);
        CHECK(ct::resolve_volume_transport(ct::volume_transport::automatic, "") ==
              cz::vm::shared_dir_transport::virtio_9p);

        using T = cz::vm::shared_dir_transport;
        CHECK(ct::is_transport_module("/k/modules/virtiofs.ko", T::virtiofs));
        CHECK(ct::is_transport_module("fuse.ko", T::virtiofs));
        CHECK_FALSE(ct::is_transport_module("fuse.ko", T::virtio_9p));
        CHECK(ct::is_transport_module("9pnet_virtio.ko", T::virtio_9p));
        CHECK(ct::is_transport_module("9pnet-virtio.ko", T::virtio_9p));
        CHECK(ct::is_volume_module("netfs.ko"));
        CHECK_FALSE(ct::is_volume_module("virtio_blk.ko"));
        CHECK_FALSE(ct::is_volume_module("overlay.ko"));

        cz_test::temp_dir tmp;
        cz::vm::kernel_info debian;
        debian.flavor = cz::vm::kernel_flavor::debian;
        debian.directory = tmp.path;
        debian.modules = {tmp.path / "modules/fuse.ko", tmp.path / "modules/virtiofs.ko"};
        std::string why;
        ct::check_kernel_supports(debian, T::virtiofs, ec, &why);
        CHECK_FALSE(ec);
        ct::check_kernel_supports(debian, T::virtio_9p, ec, &why);
        CHECK(ec == ct::errc::bad_option);
        CHECK(contains(why, "no 9p module"));
        debian.modules.pop_back();
        ct::check_kernel_supports(debian, T::virtiofs, ec, &why);
        CHECK(ec == ct::errc::bad_option);
        CHECK(contains(why, "cz kernel fetch"));

        cz::vm::kernel_info minimal;
        minimal.flavor = cz::vm::kernel_flavor::minimal;
        minimal.directory = tmp.path;
        cz_test::write_file(tmp.path / "config", "CONFIG_VIRTIO_FS=y\n# CONFIG_9P_FS is not set\n");
        ct::check_kernel_supports(minimal, T::virtiofs, ec, &why);
        CHECK_FALSE(ec);
        ct::check_kernel_supports(minimal, T::virtio_9p, ec, &why);
        CHECK(ec == ct::errc::bad_option);
        CHECK(contains(why, "CONFIG_9P_FS=y"));
    }

} // TEST_SUITE
