// cz/container/pull.hpp — an image pulled from its registry and its root filesystem built at
// the same time: each layer is applied to the ext4 image while it downloads, in order, as its
// bytes are written to the store's ingest file. A cold `cz run` so takes about as long as the
// pull alone, not the pull plus the build.
//
//   thread of the pull (Asio):  manifest | config, layer 1, layer 2, ... (4 at a time) | tag
//   calling thread:                      | apply 1 as it arrives | apply 2 | ...        | rename
//
// The builder reads bytes before their digest is verified: the tar reader and the ext4 builder
// take hostile input anyway, and the image is used only if every layer it read is then
// committed to the store, verified, as the very file that was read. A layer whose download
// started over, or a build that failed on unverified bytes, is built again from the verified
// blobs once the pull is done. The root filesystem lands under its cache name
// (cz/container/rootfs.hpp) only when it is complete; a pull that fails leaves its resumable
// ingest files in the store and no image file.
//
// Example:
//   cz::container::pull_options o;
//   o.registry.insecure = {"registry.lan:5000"};
//   std::error_code ec;
//   std::string why;
//   auto r = cz::container::pull_image(root, "registry.lan:5000/app:1", o, ec, &why);
//   if (ec) fmt::print(stderr, "cz: {}: {}\n", why, ec.message());
#pragma once

#include <cz/container/rootfs.hpp>
#include <cz/core/config.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/registry/client.hpp>
#include <cz/oci/types.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

namespace cz::container {

struct pull_options {
    // The platform an index resolves to; default: this machine's.
    oci::platform platform = oci::host_platform();
    // Proxies, insecure registries, credentials, concurrency, retries (cz/oci/registry).
    oci::registry::registry_options registry;
    // Bytes of each blob as they arrive (called on the pull's own thread).
    std::function<void(const oci::registry::blob_progress&)> on_blob;
    // Before each layer is applied: (layer index from 0, number of layers), on the calling thread.
    // A build that failed on bytes not yet verified is done again from the store: the layers are
    // then reported again.
    std::function<void(std::size_t, std::size_t)> on_layer;
    // The root filesystem is left for the caller to publish (rootfs_options::defer_publish).
    bool defer_publish = false;
};

struct pull_result {
    oci::descriptor tagged; // what the image's name now points at (a manifest or an index)
    digest manifest;        // the platform's manifest
    rootfs_result rootfs;   // its root filesystem (built, or found in the cache)
};

// Pulls `image` (a reference: "busybox", "registry:5000/app@sha256:...") into the store under
// `root`, tags it, and makes sure its root filesystem is built. ec: the registry's errors
// (cz::oci::registry::errc, e.g. unauthorized), the store's, or the layer applier's for a bad
// layer; `*detail` says what failed, in the registry's terms where it was the registry.
CZ_DECL pull_result pull_image(const std::filesystem::path& root, std::string_view image,
                               const pull_options& opts, std::error_code& ec,
                               std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/pull.ipp>
#endif
