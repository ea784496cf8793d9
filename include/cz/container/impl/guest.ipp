// Out-of-line definitions for cz/container/guest.hpp.
#pragma once

#include <cz/container/guest.hpp>

#include <cz/container/error.hpp>
#include <cz/container/rootfs.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/initramfs.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace cz::container {

namespace detail {

inline bool is_executable_file(const std::filesystem::path& p) {
    std::error_code ec;
    return std::filesystem::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// Hashes the file at `path` into `h`.
inline void hash_file(const std::filesystem::path& path, sha256_hasher& h, std::error_code& ec) {
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        ec = last_system_error();
        return;
    }
    fd_source src(fd.get());
    copy(src, h, ec);
}

} // namespace detail

CZ_DECL std::filesystem::path find_init(const std::filesystem::path& given, std::error_code& ec) {
    ec.clear();
    std::vector<std::filesystem::path> candidates;
    if (!given.empty()) {
        candidates.push_back(given);
    } else if (const char* env = std::getenv("CZ_INIT"); env != nullptr && *env != '\0') {
        candidates.push_back(env);
    } else {
        std::error_code ignored;
        auto self = std::filesystem::read_symlink("/proc/self/exe", ignored);
        if (!ignored) {
            auto dir = self.parent_path();
            candidates = {dir / "cz-init", dir / ".." / "guest" / "cz-init",
                          dir / ".." / "libexec" / "cz" / "cz-init"};
        }
    }
    for (const auto& c : candidates)
        if (detail::is_executable_file(c)) return std::filesystem::weakly_canonical(c, ec);
    ec = make_error_code(errc::init_not_found);
    return {};
}

CZ_DECL vm::kernel_info find_container_kernel(const std::filesystem::path& root,
                                              const std::string& given, std::error_code& ec) {
    ec.clear();
    if (!given.empty() && given != "debian" && given != "minimal") {
        vm::kernel_info k;
        k.image = given;
        if (!std::filesystem::is_regular_file(k.image, ec))
            ec = make_error_code(vm::errc::kernel_not_found);
        return k;
    }
    if (!given.empty()) return vm::find_kernel(root, vm::parse_kernel_flavor(given, ec), ec);
    auto k = vm::find_kernel(root, vm::kernel_flavor::debian, ec);
    if (!ec) return k;
    std::error_code minimal_ec;
    auto m = vm::find_kernel(root, vm::kernel_flavor::minimal, minimal_ec);
    if (!minimal_ec) {
        ec.clear();
        return m;
    }
    return k;
}

CZ_DECL std::filesystem::path ensure_initramfs(const std::filesystem::path& root,
                                               const std::filesystem::path& init,
                                               const vm::kernel_info& kernel, std::error_code& ec,
                                               std::string* detail) {
    ec.clear();
    sha256_hasher h;
    detail::hash_file(init, h, ec);
    if (ec) {
        if (detail) *detail = init.string();
        return {};
    }
    std::string inputs = "\nkernel " + kernel.version;
    for (const auto& m : kernel.modules) {
        std::error_code size_ec;
        inputs +=
            "\nmodule " + m.string() + " " + std::to_string(std::filesystem::file_size(m, size_ec));
    }
    h.update(as_bytes(inputs));
    auto path = root / "initramfs" / (h.final().hex().substr(0, 16) + ".cpio");
    if (std::filesystem::is_regular_file(path, ec)) return path;
    ec.clear();
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
        if (detail) *detail = path.parent_path().string();
        return {};
    }
    remove_abandoned_files(path.parent_path()); // what builds that were killed left
    vm::initramfs_builder b;
    b.init(init).add_modules(kernel.modules);
    // Uncompressed: under TCG the guest's gunzip of cz-init and the modules (~6 MiB) took
    // 0.3-0.7 s of every boot.
    b.write_uncompressed(path, ec); // to a temporary name, then renamed
    if (ec && detail) *detail = b.failed_input().empty() ? path.string() : b.failed_input();
    return ec ? std::filesystem::path() : path;
}

} // namespace cz::container
