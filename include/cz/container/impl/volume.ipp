// Out-of-line definitions for cz/container/volume.hpp.
#pragma once

#include <cz/container/volume.hpp>

#include <fstream>
#include <set>

namespace cz::container {

namespace detail {

inline void volume_fail(std::error_code& ec, std::string* detail, std::string what) {
    ec = make_error_code(errc::bad_option);
    if (detail) *detail = std::move(what);
}

} // namespace detail

CZ_DECL volume parse_volume(std::string_view text, std::error_code& ec, std::string* detail) {
    ec.clear();
    const std::string quoted = "volume \"" + std::string(text) + "\"";
    std::vector<std::string_view> parts;
    for (std::size_t i = 0;;) {
        auto colon = text.find(':', i);
        parts.push_back(text.substr(i, colon == std::string_view::npos ? colon : colon - i));
        if (colon == std::string_view::npos) break;
        i = colon + 1;
    }
    if (parts.size() < 2 || parts.size() > 3) {
        detail::volume_fail(ec, detail, quoted + ": not HOSTDIR:GUESTDIR[:ro]");
        return {};
    }
    volume v;
    if (parts.size() == 3) {
        if (parts[2] == "ro") {
            v.read_only = true;
        } else if (parts[2] != "rw") {
            detail::volume_fail(ec, detail,
                                quoted + ": option \"" + std::string(parts[2]) +
                                    "\" (cz knows ro and rw)");
            return {};
        }
    }
    std::string_view host = parts[0];
    if (host.empty()) {
        detail::volume_fail(ec, detail, quoted + ": the host directory is empty");
        return {};
    }
    // docker's CLI reads a part with no slash as a named volume's name; a path has one.
    if (host.find('/') == std::string_view::npos && host != "." && host != "..") {
        detail::volume_fail(ec, detail,
                            quoted + ": \"" + std::string(host) +
                                "\" is a volume name, and cz has no named volumes: give a "
                                "path (\"./" +
                                std::string(host) + "\")");
        return {};
    }
    std::error_code abs_ec;
    v.host = std::filesystem::absolute(std::filesystem::path(host), abs_ec).lexically_normal();
    if (abs_ec) {
        detail::volume_fail(ec, detail, quoted + ": " + abs_ec.message());
        return {};
    }
    std::string_view guest = parts[1];
    if (guest.empty() || guest.front() != '/') {
        detail::volume_fail(ec, detail,
                            quoted + ": the container path \"" + std::string(guest) +
                                "\" is not absolute");
        return {};
    }
    v.guest = std::filesystem::path(guest).lexically_normal().string();
    while (v.guest.size() > 1 && v.guest.back() == '/')
        v.guest.pop_back();
    if (v.guest == "/") {
        detail::volume_fail(ec, detail, quoted + ": the container path cannot be /");
        return {};
    }
    return v;
}

CZ_DECL std::vector<volume> check_volumes(const std::vector<volume>& volumes, std::error_code& ec,
                                          std::string* detail) {
    ec.clear();
    std::vector<volume> out;
    std::set<std::string> destinations;
    for (std::size_t i = 0; i < volumes.size(); ++i) {
        const auto& v = volumes[i];
        const std::string which =
            "volume " + std::to_string(i + 1) + " (" + v.host.string() + ":" + v.guest + ")";
        std::error_code fs_ec;
        auto status = std::filesystem::status(v.host, fs_ec);
        if (fs_ec || !std::filesystem::exists(status)) {
            detail::volume_fail(ec, detail,
                                which + ": " + v.host.string() + " does not exist" +
                                    (fs_ec && fs_ec != std::errc::no_such_file_or_directory
                                         ? " (" + fs_ec.message() + ")"
                                         : std::string()));
            return {};
        }
        if (!std::filesystem::is_directory(status)) {
            detail::volume_fail(ec, detail, which + ": " + v.host.string() + " is not a directory");
            return {};
        }
        if (v.guest.empty() || v.guest.front() != '/' || v.guest == "/") {
            detail::volume_fail(ec, detail,
                                which + ": the container path is not an absolute path below /");
            return {};
        }
        if (!destinations.insert(v.guest).second) {
            detail::volume_fail(ec, detail, which + ": " + v.guest + " is mounted twice");
            return {};
        }
        volume c = v;
        c.host = std::filesystem::canonical(v.host, fs_ec);
        if (fs_ec) {
            detail::volume_fail(ec, detail, which + ": " + fs_ec.message());
            return {};
        }
        out.push_back(std::move(c));
    }
    return out;
}

CZ_DECL volume_transport parse_volume_transport(std::string_view name, std::error_code& ec) {
    ec.clear();
    if (name == "virtiofs" || name == "virtio-fs") return volume_transport::virtiofs;
    if (name == "9p" || name == "virtio-9p") return volume_transport::virtio_9p;
    if (name == "auto" || name.empty()) return volume_transport::automatic;
    ec = make_error_code(errc::bad_option);
    return volume_transport::automatic;
}

CZ_DECL vm::shared_dir_transport resolve_volume_transport(volume_transport wanted,
                                                          const std::string& virtiofsd) {
    switch (wanted) {
    case volume_transport::virtiofs:
        return vm::shared_dir_transport::virtiofs;
    case volume_transport::virtio_9p:
        return vm::shared_dir_transport::virtio_9p;
    case volume_transport::automatic:
        break;
    }
    return vm::choose_shared_dir_transport(virtiofsd);
}

CZ_DECL std::string volume_tag(std::size_t index) {
    return "czvol" + std::to_string(index);
}

CZ_DECL std::vector<spec_mount> volume_mounts(const std::vector<volume>& volumes,
                                              vm::shared_dir_transport transport) {
    std::vector<spec_mount> out;
    for (std::size_t i = 0; i < volumes.size(); ++i) {
        spec_mount m;
        m.destination = volumes[i].guest;
        m.type = vm::guest_mount_type(transport);
        m.source = volume_tag(i);
        m.options = vm::guest_mount_options(transport);
        if (volumes[i].read_only) m.options.insert(m.options.begin(), "ro");
        out.push_back(std::move(m));
    }
    return out;
}

namespace detail {

inline std::string module_name(const std::filesystem::path& module) {
    auto name = module.filename().string();
    if (name.ends_with(".ko")) name.resize(name.size() - 3);
    for (auto& c : name)
        if (c == '-') c = '_';
    return name;
}

} // namespace detail

CZ_DECL bool is_transport_module(const std::filesystem::path& module,
                                 vm::shared_dir_transport transport) {
    auto name = detail::module_name(module);
    if (transport == vm::shared_dir_transport::virtiofs)
        return name == "fuse" || name == "virtiofs";
    return name == "9p" || name == "9pnet" || name == "9pnet_virtio" || name == "netfs" ||
           name == "fscache";
}

CZ_DECL bool is_volume_module(const std::filesystem::path& module) {
    return is_transport_module(module, vm::shared_dir_transport::virtiofs) ||
           is_transport_module(module, vm::shared_dir_transport::virtio_9p);
}

CZ_DECL void check_kernel_supports(const vm::kernel_info& kernel,
                                   vm::shared_dir_transport transport, std::error_code& ec,
                                   std::string* detail) {
    ec.clear();
    const bool fs = transport == vm::shared_dir_transport::virtiofs;
    const std::string what = "volumes through " + std::string(vm::to_string(transport)) + ": ";
    if (kernel.flavor == vm::kernel_flavor::debian && !kernel.directory.empty()) {
        std::set<std::string> have;
        for (const auto& m : kernel.modules)
            have.insert(detail::module_name(m));
        const std::vector<std::string> needed = fs ? std::vector<std::string>{"virtiofs"}
                                                   : std::vector<std::string>{"9p", "9pnet_virtio"};
        for (const auto& n : needed) {
            if (have.count(n)) continue;
            detail::volume_fail(
                ec, detail,
                what + "the kernel in " + kernel.directory.string() + " has no " + n + " module" +
                    (fs ? " (fetched before cz used it: run `cz kernel fetch` again)"
                        : " (Debian's cloud kernel has no 9p; use virtio-fs (virtiofsd, as root) "
                          "or the minimal kernel, `cz kernel build`)"));
            return;
        }
        return;
    }
    if (kernel.flavor == vm::kernel_flavor::minimal && !kernel.directory.empty()) {
        std::ifstream config(kernel.directory / "config");
        if (!config) return; // nothing to check against: the guest's mount says what is missing
        const std::string option = fs ? "CONFIG_VIRTIO_FS=y" : "CONFIG_9P_FS=y";
        std::string line;
        while (std::getline(config, line))
            if (line == option) return;
        detail::volume_fail(ec, detail,
                            what + "the kernel in " + kernel.directory.string() + " lacks " +
                                option + " (built before cz used it: run `cz kernel build` again)");
    }
}

} // namespace cz::container
