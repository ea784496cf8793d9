// cz/container/rootfs.hpp — the read-only ext4 root filesystem of an image, built once from its
// layers and cached under the cz root for every container of that image.
//
//   <root>/rootfs/<manifest hex>.v<rootfs_format_version>.ext4
//
// Keyed by the manifest's digest (the layers it lists are fixed by it) and by the version of the
// way cz builds the image, so an image built by an older cz is never booted by a newer one that
// lays files out differently. An image is written beside its final name and renamed when
// complete: a reader never sees half an image, and two runs building the same one at once both
// succeed (the second rename replaces the first's identical file).
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/error.hpp>
#include <cz/core/sha256.hpp>
#include <cz/oci/store.hpp>
#include <cz/oci/types.hpp>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

namespace cz::container {

// Bumped whenever the ext4 images cz builds change in a way a guest could see.
// 2: the inode tables are no longer the image's last blocks (a clone's guest read past them).
inline constexpr int rootfs_format_version = 2;

// Removes the files in `dir` that runs killed while writing them left behind: names with
// ".tmp-<pid>-" whose process is gone (a half-built root filesystem, a scratch disk).
CZ_DECL void remove_abandoned_files(const std::filesystem::path& dir);

// Where the image for `manifest` is cached under `root`.
CZ_DECL std::filesystem::path rootfs_path(const std::filesystem::path& root,
                                          const digest& manifest);

// A layer's bytes as the builder reads them, from somewhere other than the store's committed
// blob (rootfs_options::open_layer). A byte_source.
class layer_reader {
public:
    virtual ~layer_reader() = default;
    // 1..buf.size() bytes, 0 at the end of the layer; blocks while the bytes are still coming.
    virtual std::size_t read_some(mutable_bytes buf, std::error_code& ec) = 0;
    // Once the layer is applied: returns when the bytes read are known to be the blob the store
    // holds under the layer's digest (verified there), or sets `ec` when they are not.
    virtual void confirm(std::error_code& ec) = 0;
};

struct rootfs_options {
    // Called before each layer is applied: (layer index from 0, number of layers).
    std::function<void(std::size_t, std::size_t)> on_layer;
    // Where each layer's bytes are read from; unset: the blob in the store. A pull in progress
    // sets it (cz/container/pull.hpp) to read each layer while it is still downloading.
    std::function<std::unique_ptr<layer_reader>(const oci::descriptor& layer, std::error_code& ec)>
        open_layer;
    // Leaves a built image under its temporary name, complete but not yet flushed to disk nor
    // renamed: publish_rootfs() does both. A run boots its VM from the image meanwhile, so the
    // flush (seconds for a large image on a slow disk) overlaps the boot instead of preceding it.
    bool defer_publish = false;
};

struct rootfs_result {
    std::filesystem::path path; // the image to use
    bool built = false;         // false: it was in the cache
    // Where the image goes once published; empty unless it was built with `defer_publish`.
    std::filesystem::path pending_name;
};

// Flushes a deferred image to disk and renames it to `r.pending_name`, so later runs find it.
// On failure the temporary file is removed (a process that has it open keeps reading it) and
// `ec` says why; the image is then simply built again next time. Does nothing when nothing is
// pending.
CZ_DECL void publish_rootfs(rootfs_result& r, std::error_code& ec);

// The cached image for the manifest `manifest_digest` (whose parsed form is `m`), built from the
// layers in `content` when it is not there yet. Errors: the store's (a missing layer), the
// layer applier's (a bad layer: `*detail` names the layer and what is wrong), the file system's.
CZ_DECL rootfs_result ensure_rootfs(const oci::content_store& content, const oci::manifest& m,
                                    const digest& manifest_digest, const rootfs_options& opts,
                                    std::error_code& ec, std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/rootfs.ipp>
#endif
