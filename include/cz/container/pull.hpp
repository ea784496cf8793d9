// cz/container/pull.hpp — an image pulled from its registry and its root filesystem built at
// the same time: each layer is applied to the ext4 image as soon as it is in the store, in
// order, while the later layers are still downloading. A cold `cz run` so takes about as long
// as the longer of the two, not their sum.
//
//   thread of the pull (Asio):  manifest | config, layer 1, layer 2, ... (4 at a time) | tag
//   calling thread:                      | wait 1, apply 1 | wait 2, apply 2 | ...      | rename
//
// Layers are read from the store only once committed there, so the builder sees only bytes whose
// digest was verified. The root filesystem lands under its cache name (cz/container/rootfs.hpp)
// only when it is complete; a pull that fails leaves its resumable ingest files in the store and
// no image file.
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
