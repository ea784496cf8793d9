// cz/vm/initramfs.hpp — builds the initramfs a cz guest boots from: the init program, the kernel
// modules it must load, and any extra files, as a (gzip-compressed) cpio newc archive.
//
// The builder records what goes in and writes the archive in one streaming pass: file contents
// are read from disk while being written, so nothing is held in memory but the list of entries.
// Parent directories are created implicitly; every archive starts with the nodes the kernel needs
// before /init runs (/dev/console, opened as init's stdin/stdout/stderr) and the usual mount
// points. Kernel modules land in /lib/modules/ with their load order in /lib/modules/load-order
// (one file name a line, dependencies first), which the guest init follows with insmod.
// Needs only cz/core (no Asio).
#pragma once

#include <cz/core/stream.hpp>
#include <cz/vm/cpio.hpp>
#include <cz/vm/error.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace cz::vm {

// Where modules and their load order live inside the archive.
inline constexpr std::string_view initramfs_module_dir = "lib/modules";
inline constexpr std::string_view initramfs_module_order = "lib/modules/load-order";

class initramfs_builder {
public:
    // Starts with /dev/console (char 5:1), /dev, /proc, /sys, /tmp, /run, /root.
    CZ_DECL initramfs_builder();

    // The guest's PID 1: a host file (a static binary or a script with a #! line) or its text.
    CZ_DECL initramfs_builder& init(const std::filesystem::path& host_file);
    CZ_DECL initramfs_builder& init_script(std::string text);

    // A host file copied to `archive_path`; permissions taken from the host file unless given.
    CZ_DECL initramfs_builder& add_file(std::string_view archive_path,
                                       const std::filesystem::path& host_file, int permissions = -1);
    // A file with the given contents.
    CZ_DECL initramfs_builder& add_bytes(std::string_view archive_path, std::string contents,
                                         std::uint32_t permissions = 0644);
    CZ_DECL initramfs_builder& add_directory(std::string_view archive_path,
                                             std::uint32_t permissions = 0755);
    CZ_DECL initramfs_builder& add_symlink(std::string_view archive_path, std::string target);
    // Kernel modules (.ko files) in load order, dependencies first.
    CZ_DECL initramfs_builder& add_modules(const std::vector<std::filesystem::path>& modules);

    // Writes the uncompressed archive to `out` and finishes it.
    CZ_DECL void write(sink_ref out, std::error_code& ec) const;
    // Writes the archive to `path`, under a temporary name of its own first, then renamed (a
    // reader never sees half an archive; two writers of one path do not mix their bytes).
    // Uncompressed is larger on disk but boots faster under TCG, where the guest kernel's gunzip
    // of a few MiB takes a sizeable part of a second; gzip suits archives kept or shipped.
    void write_gzip(const std::filesystem::path& path, std::error_code& ec) const {
        write_file(path, true, ec);
    }
    void write_uncompressed(const std::filesystem::path& path, std::error_code& ec) const {
        write_file(path, false, ec);
    }
    void write_gzip(const std::filesystem::path& path) const {
        std::error_code ec;
        write_gzip(path, ec);
        if (ec && !deferred_what_.empty()) throw_error(ec, "initramfs {}: {}", path.string(), deferred_what_);
        if (ec) throw_error(ec, "initramfs {}", path.string());
    }

    // The input that the first failed chained call named (a host file or an archive path).
    const std::string& failed_input() const noexcept { return deferred_what_; }

    // What the builder holds, in archive order (for listings and tests).
    std::size_t size() const noexcept { return items_.size(); }

private:
    CZ_DECL void write_file(const std::filesystem::path& path, bool gzip,
                            std::error_code& ec) const;
    struct item {
        cpio_entry entry;
        std::filesystem::path host_file; // regular file read from disk
        std::string contents;            // regular file from memory, or symlink target
        bool from_host = false;
    };
    CZ_DECL void ensure_parents(const std::string& path);
    CZ_DECL void put(item it);

    std::vector<item> items_;
    std::set<std::string> paths_;
    std::vector<std::string> module_names_;
    // The first failure of a chained call (bad path, unreadable host file), reported by write.
    std::error_code deferred_;
    std::string deferred_what_;
};

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/initramfs.ipp>
#endif
