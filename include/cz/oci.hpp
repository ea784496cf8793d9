// cz/oci.hpp — OCI images without a daemon: the documents (manifests, indexes, configs), image
// references, platforms, and a content and image store kept as an OCI image layout that skopeo
// and umoci read as it is. Depends on cz/core, cz/tar and nlohmann/json; no Asio.
//
// Parsing what a registry or an archive sent (untrusted: size-capped, every field checked):
//
//     std::error_code ec;
//     std::string where;
//     cz::oci::manifest m = cz::oci::parse_manifest(std::move(bytes), ec, &where);
//     if (ec) fmt::print(stderr, "manifest: {}: {}\n", where, ec.message());
//     // m.config, m.layers: descriptors (media type, sha256 digest, size); m.bytes: as received
#pragma once

#include <cz/oci/error.hpp>
#include <cz/oci/media_types.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/types.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/store.hpp>
#include <cz/oci/import.hpp>
#include <cz/oci/archive.hpp>
