// cz/oci/import.hpp — bringing images from another OCI image layout, or from skopeo's dir:
// format, into the store.
//
// The source is untrusted (a directory someone gave us): blobs are found only by digest
// (blobs/sha256/<hex>), opened without following symlinks and only when they are regular files,
// and each is checked for size and sha256 on its way in; manifests and indexes are capped at
// 4 MiB and nested at most 8 deep. Children are stored before their parents, so a manifest in
// the store always has its config and layers. Entries with an `org.opencontainers.image.ref.name`
// annotation are tagged under that name once everything they reach is stored.
#pragma once

#include <cz/oci/store.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cz::oci {

struct import_report {
    // What was tagged (name and target), in the source's index.json order.
    std::vector<image_entry> tagged;
    // Entries without a name: their blobs are stored, nothing points at them (gc removes them).
    std::size_t untagged = 0;
    std::uint64_t blobs = 0; // blobs visited (already stored ones included)
    std::uint64_t bytes = 0;
};

// Imports every entry of the layout at `layout` (a directory with oci-layout, index.json,
// blobs/). Errors name the entry and the blob: errc::not_found for a missing blob,
// size_mismatch / digest_mismatch for content that does not match its descriptor,
// invalid_layout for a layout of another version or a blob that is not a regular file,
// index_too_deep, document_too_large, and the parsers' errors for bad documents. Nothing is tagged
// from an entry that failed; entries before it stay imported.
CZ_DECL import_report import_layout(const image_store& images, const std::filesystem::path& layout,
                                    std::error_code& ec, std::string* detail = nullptr);
CZ_DECL import_report import_layout(const image_store& images, const std::filesystem::path& layout);

// Imports the image in `dir`, written in skopeo's `dir:` format: a `version` file ("Directory
// Transport Version: 1.x"), manifest.json (a manifest, or with `skopeo copy --all` an index whose
// manifests are <hex>.manifest.json), and every other blob as a file named by its hex digest.
// The format carries no name: the image is tagged `name` (kept as given; empty: not tagged, then
// gc removes it). The same checks and errors as import_layout.
CZ_DECL import_report import_dir(const image_store& images, const std::filesystem::path& dir,
                                 std::string_view name, std::error_code& ec,
                                 std::string* detail = nullptr);
CZ_DECL import_report import_dir(const image_store& images, const std::filesystem::path& dir,
                                 std::string_view name);

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/import.ipp>
#endif
