// Out-of-line definitions for cz/container/rootfs.hpp.
#pragma once

#include <cz/container/rootfs.hpp>

#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/ext4/applier.hpp>
#include <cz/ext4/formatter.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

namespace cz::container {

CZ_DECL void remove_abandoned_files(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        auto name = e.path().filename().string();
        auto at = name.find(".tmp-");
        if (at == std::string::npos) continue;
        long pid = std::strtol(name.c_str() + at + 5, nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            std::error_code ignored;
            std::filesystem::remove(e.path(), ignored);
        }
    }
}

CZ_DECL std::filesystem::path rootfs_path(const std::filesystem::path& root,
                                          const digest& manifest) {
    return root / "rootfs" /
           (manifest.hex() + ".v" + std::to_string(rootfs_format_version) + ".ext4");
}

CZ_DECL rootfs_result ensure_rootfs(const oci::content_store& content, const oci::manifest& m,
                                    const digest& manifest_digest, const rootfs_options& opts,
                                    std::error_code& ec, std::string* detail) {
    ec.clear();
    rootfs_result r;
    r.path = rootfs_path(content.root(), manifest_digest);
    if (std::filesystem::is_regular_file(r.path, ec)) return r;
    ec.clear();
    std::filesystem::create_directories(r.path.parent_path(), ec);
    if (ec) {
        if (detail) *detail = r.path.parent_path().string();
        return r;
    }
    remove_abandoned_files(r.path.parent_path());
    // A name of its own for the image being written: another run may be writing one too.
    auto tmp = r.path;
    tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
    unique_fd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        ec = last_system_error();
        if (detail) *detail = tmp.string();
        return r;
    }
    auto fail = [&](std::string what) {
        ::unlink(tmp.c_str()); // never leave a half-written image behind
        if (detail) *detail = std::move(what);
        return r;
    };
    ext4::format_options format; // size 0: grows to fit; read-only under an overlay, so no slack
    ext4::formatter image(std::move(fd), format);
    ext4::layer_applier applier(image);
    // Layers read before they were verified, confirmed once all are applied: waiting for each
    // one's commit (an fsync) before the next would put every commit on the build's path.
    std::vector<std::unique_ptr<layer_reader>> unconfirmed;
    for (std::size_t i = 0; i < m.layers.size(); ++i) {
        const auto& layer = m.layers[i];
        if (opts.on_layer) opts.on_layer(i, m.layers.size());
        if (opts.open_layer) {
            auto reader = opts.open_layer(layer, ec);
            if (ec) return fail("layer " + layer.digest.str());
            applier.apply(*reader, ec);
            if (ec)
                return fail("layer " + layer.digest.str() + ": " +
                            to_string(applier.error_detail()));
            unconfirmed.push_back(std::move(reader));
            continue;
        }
        auto blob = content.open_blob(layer.digest, ec);
        if (ec) return fail("layer " + layer.digest.str());
        fd_source src(blob.get());
        applier.apply(src, ec);
        if (ec)
            return fail("layer " + layer.digest.str() + ": " + to_string(applier.error_detail()));
    }
    image.finish(ec);
    if (ec) return fail(tmp.string());
    for (std::size_t i = 0; i < unconfirmed.size(); ++i) {
        unconfirmed[i]->confirm(ec);
        if (ec) return fail("layer " + m.layers[i].digest.str());
    }
    r.built = true;
    r.pending_name = r.path;
    r.path = tmp;
    if (!opts.defer_publish) {
        publish_rootfs(r, ec);
        if (ec) {
            r.path = r.pending_name;
            r.pending_name.clear();
            r.built = false;
            if (detail) *detail = tmp.string();
        }
    }
    return r;
}

CZ_DECL void publish_rootfs(rootfs_result& r, std::error_code& ec) {
    ec.clear();
    if (r.pending_name.empty()) return;
    // On disk before it gets its name: a crash must not leave a named image with holes.
    if (unique_fd sync(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
        !sync || ::fsync(sync.get()) != 0)
        ec = last_system_error();
    if (!ec) std::filesystem::rename(r.path, r.pending_name, ec);
    if (ec) {
        ::unlink(r.path.c_str());
        return;
    }
    r.path = std::move(r.pending_name);
    r.pending_name.clear();
}

} // namespace cz::container
