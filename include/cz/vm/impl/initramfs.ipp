// Out-of-line definitions for cz/vm/initramfs.hpp.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/vm/initramfs.hpp>

#include <random>

#include <fcntl.h>
#include <sys/stat.h>

namespace cz::vm {

CZ_DECL initramfs_builder::initramfs_builder() {
    for (auto dir : {"dev", "proc", "sys", "run", "root"}) add_directory(dir);
    add_directory("tmp", 01777); // sticky and world-writable, as on any Linux system
    item console;
    console.entry.path = "dev/console";
    console.entry.type = cpio_type::char_device;
    console.entry.permissions = 0600;
    console.entry.rdev_major = 5;
    console.entry.rdev_minor = 1;
    put(std::move(console));
}

CZ_DECL void initramfs_builder::put(item it) {
    std::error_code ec;
    auto name = normalize_archive_path(it.entry.path, ec);
    if (ec) {
        if (!deferred_) {
            deferred_ = ec;
            deferred_what_ = it.entry.path;
        }
        return;
    }
    it.entry.path = name;
    ensure_parents(name);
    if (!paths_.insert(name).second) {
        // A later entry replaces an earlier one with the same path (last one wins, like cp).
        for (auto& existing : items_)
            if (existing.entry.path == name) {
                existing = std::move(it);
                return;
            }
    }
    items_.push_back(std::move(it));
}

CZ_DECL void initramfs_builder::ensure_parents(const std::string& path) {
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        auto parent = path.substr(0, slash);
        if (paths_.insert(parent).second) {
            item dir;
            dir.entry.path = parent;
            dir.entry.type = cpio_type::directory;
            dir.entry.permissions = 0755;
            items_.push_back(std::move(dir));
        }
    }
}

CZ_DECL initramfs_builder& initramfs_builder::init(const std::filesystem::path& host_file) {
    return add_file("init", host_file, 0755);
}

CZ_DECL initramfs_builder& initramfs_builder::init_script(std::string text) {
    return add_bytes("init", std::move(text), 0755);
}

CZ_DECL initramfs_builder& initramfs_builder::add_file(std::string_view archive_path,
                                                       const std::filesystem::path& host_file,
                                                       int permissions) {
    item it;
    it.entry.path = std::string(archive_path);
    it.host_file = host_file;
    it.from_host = true;
    struct stat st {};
    std::error_code ec;
    if (::stat(host_file.c_str(), &st) != 0) ec = last_system_error();
    else if (!S_ISREG(st.st_mode)) ec = std::make_error_code(std::errc::invalid_argument);
    if (ec) {
        // Reported by write(): the builder's calls chain, so the first failure waits there.
        if (!deferred_) {
            deferred_ = ec;
            deferred_what_ = host_file.string();
        }
        return *this;
    }
    it.entry.permissions =
        permissions >= 0 ? static_cast<std::uint32_t>(permissions) : (st.st_mode & 07777);
    put(std::move(it));
    return *this;
}

CZ_DECL initramfs_builder& initramfs_builder::add_bytes(std::string_view archive_path,
                                                        std::string contents,
                                                        std::uint32_t permissions) {
    item it;
    it.entry.path = std::string(archive_path);
    it.entry.permissions = permissions;
    it.contents = std::move(contents);
    put(std::move(it));
    return *this;
}

CZ_DECL initramfs_builder& initramfs_builder::add_directory(std::string_view archive_path,
                                                            std::uint32_t permissions) {
    item it;
    it.entry.path = std::string(archive_path);
    it.entry.type = cpio_type::directory;
    it.entry.permissions = permissions;
    put(std::move(it));
    return *this;
}

CZ_DECL initramfs_builder& initramfs_builder::add_symlink(std::string_view archive_path,
                                                          std::string target) {
    item it;
    it.entry.path = std::string(archive_path);
    it.entry.type = cpio_type::symlink;
    it.contents = std::move(target);
    put(std::move(it));
    return *this;
}

CZ_DECL initramfs_builder& initramfs_builder::add_modules(
    const std::vector<std::filesystem::path>& modules) {
    for (const auto& m : modules) {
        auto name = m.filename().string();
        add_file(std::string(initramfs_module_dir) + "/" + name, m, 0644);
        module_names_.push_back(name);
    }
    std::string order;
    for (const auto& n : module_names_) order += n + "\n";
    add_bytes(initramfs_module_order, std::move(order));
    return *this;
}

CZ_DECL void initramfs_builder::write(sink_ref out, std::error_code& ec) const {
    if (deferred_) {
        ec = deferred_;
        return;
    }
    cpio_writer w(out);
    for (const auto& it : items_) {
        if (it.entry.type == cpio_type::symlink) {
            w.add_symlink(it.entry, it.contents, ec);
        } else if (it.entry.type != cpio_type::regular) {
            w.add(it.entry, ec);
        } else if (!it.from_host) {
            w.add_file(it.entry, as_bytes(it.contents), ec);
        } else {
            unique_fd fd(::open(it.host_file.c_str(), O_RDONLY | O_CLOEXEC));
            struct stat st {};
            if (!fd || ::fstat(fd.get(), &st) != 0) {
                ec = last_system_error();
                return;
            }
            fd_source src(fd.get());
            w.add_file(it.entry, static_cast<std::uint64_t>(st.st_size), src, ec);
        }
        if (ec) return;
    }
    w.finish(ec);
}

CZ_DECL void initramfs_builder::write_file(const std::filesystem::path& path, bool gzip,
                                           std::error_code& ec) const {
    // A name of this writer's own: two processes building the same archive at once must not
    // write into one temporary file.
    auto tmp = path;
    tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        ec = last_system_error();
        return;
    }
    fd_sink file(fd.get());
    if (gzip) {
        compressing_sink gz(file, compression::gzip, 6);
        write(gz, ec);
    } else {
        write(file, ec);
    }
    if (!ec && ::fsync(fd.get()) != 0) ec = last_system_error();
    fd.reset();
    if (!ec && ::rename(tmp.c_str(), path.c_str()) != 0) ec = last_system_error();
    if (ec) ::unlink(tmp.c_str());
}

} // namespace cz::vm
