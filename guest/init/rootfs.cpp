#include "rootfs.hpp"

#include "log.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>

namespace cz::guest {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

void wait_for_device(const std::filesystem::path& device, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    struct stat st {};
    while (::stat(device.c_str(), &st) != 0) {
        if (std::chrono::steady_clock::now() >= deadline)
            throw_errno(ENODEV, "disk " + device.string() + " did not appear");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!S_ISBLK(st.st_mode)) throw_errno(ENOTBLK, device.string());
}

// Only a speed-up: a disk that refuses keeps the kernel's read-ahead, with a warning.
void set_read_ahead(const std::filesystem::path& device, unsigned kib) {
    int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
    // BLKRASET counts 512-byte sectors.
    if (fd < 0 || ::ioctl(fd, BLKRASET, static_cast<unsigned long>(kib) * 2) != 0)
        log(log_level::warn, "read-ahead of {}: {}", device.string(),
            std::generic_category().message(errno));
    if (fd >= 0) ::close(fd);
}

void make_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::system_error(ec, "mkdir " + dir.string());
}

void mount_or_throw(const std::string& source, const std::filesystem::path& target,
                    const std::string& type, unsigned long flags, const std::string& data) {
    if (::mount(source.c_str(), target.c_str(), type.c_str(), flags,
                data.empty() ? nullptr : data.c_str()) != 0)
        throw_errno(errno, "mount " + type + " " + source + " on " + target.string() +
                               (data.empty() ? "" : " (" + data + ")"));
}

} // namespace

std::filesystem::path mount_rootfs(const rootfs_options& opts) {
    const auto lower = opts.base / "lower";
    const auto scratch = opts.base / "scratch";
    const auto merged = opts.base / "merged";
    for (const auto& dir : {lower, scratch, merged})
        make_dir(dir);

    wait_for_device(opts.image_device, opts.device_wait);
    if (opts.image_read_ahead_kib) set_read_ahead(opts.image_device, opts.image_read_ahead_kib);
    mount_or_throw(opts.image_device.string(), lower, opts.image_fstype, MS_RDONLY | MS_NODEV, "");

    if (opts.scratch_device.empty()) {
        std::string data = "mode=0755";
        if (!opts.tmpfs_size.empty()) data += ",size=" + opts.tmpfs_size;
        mount_or_throw("tmpfs", scratch, "tmpfs", MS_NODEV, data);
    } else {
        wait_for_device(opts.scratch_device, opts.device_wait);
        mount_or_throw(opts.scratch_device.string(), scratch, opts.scratch_fstype, MS_NODEV, "");
    }
    make_dir(scratch / "upper");
    make_dir(scratch / "work");
    // The upper layer's root takes the image root's mode and owner, as it would on first copy-up.
    struct stat root {};
    if (::stat(lower.c_str(), &root) == 0) {
        [[maybe_unused]] int ignored = ::chmod((scratch / "upper").c_str(), root.st_mode & 07777);
        ignored = ::chown((scratch / "upper").c_str(), root.st_uid, root.st_gid);
    }
    mount_or_throw("overlay", merged, "overlay", 0,
                   "lowerdir=" + lower.string() + ",upperdir=" + (scratch / "upper").string() +
                       ",workdir=" + (scratch / "work").string());
    log(log_level::debug, "root file system: {} (ro) + {} at {}", opts.image_device.string(),
        opts.scratch_device.empty() ? "tmpfs" : opts.scratch_device.string(), merged.string());
    return merged;
}

} // namespace cz::guest
