// cz/oci/archive.hpp — image archives into and out of the store: OCI archives (a tar of an OCI
// image layout, as `skopeo copy ... oci-archive:F.tar` writes them) and `docker save` tars.
//
// Formats, as cz reads them:
//   OCI archive   oci-layout, index.json, blobs/sha256/<hex> as members of one tar (any order).
//   docker save   manifest.json: [{"Config": "<file>", "RepoTags": ["name:tag"], "Layers":
//                 ["<file>", ...]}], the files it names (layer tars, possibly symlinks to another
//                 member, as docker writes a layer two images share), and `repositories`. Docker
//                 25 and later write an OCI layout into the same tar as well (index.json,
//                 blobs/); cz then takes the OCI manifests, docker's own digests.
//   The tar itself may be gzip- or zstd-compressed, as `docker load` accepts it.
//
// Loading streams: the archive is read once, front to back (a pipe will do), and nothing is
// unpacked anywhere but into the store's own ingest area. Blobs of the OCI layout are checked
// against their names as they are stored; manifests and indexes are held in memory (JSON blobs of
// at most 4 MiB, 64 MiB of them in all) until index.json has been read, then stored after
// everything they reach, so the store never holds a manifest without its layers. The archive is
// untrusted: member names that are absolute or contain "..", links where blobs belong or that
// lead outside the archive, members named twice, devices and fifos are errc::invalid_archive
// errors naming the member and its offset in the archive.
//
// A docker-save image (the old kind, without index.json) has no manifest: cz writes the one
// skopeo's docker-archive transport generates for it, byte for byte (a Docker schema2 manifest
// whose layers are the uncompressed layer tars, named by their diff_ids, with the media type
// "tar.gzip" skopeo and docker give every schema2 layer), so cz and `skopeo inspect
// docker-archive:` report the same digest.
//
//     cz::oci::image_store images(store);
//     auto report = cz::oci::load_archive(images, "busybox.tar");   // either format
//     for (const auto& e : report.tagged) fmt::print("{} {}\n", e.name, e.target.digest);
#pragma once

#include <cz/oci/import.hpp>
#include <cz/oci/platform.hpp>

#include <cz/core/stream.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::oci {

enum class archive_format {
    oci,    // a tar of an OCI image layout
    docker, // a `docker save` tar (manifest.json)
};

struct load_report : import_report {
    archive_format format = archive_format::oci;
};

// One image of a docker-save manifest.json.
struct docker_archive_image {
    std::string config;                 // the config's file in the archive
    std::vector<std::string> repo_tags; // "name:tag" as docker writes them; may be empty
    std::vector<std::string> layers;    // the layer tars' files, base layer first
};

// Parses a docker-save manifest.json: a JSON array of {"Config", "RepoTags", "Layers"} objects
// (other keys, such as "Parent" and "LayerSources", are ignored). At most max_document_size
// bytes. Errors: errc::invalid_json, document_too_large, invalid_field with the JSON path
// ("[1].Layers[0]: must be a string") in *detail.
CZ_DECL std::vector<docker_archive_image>
parse_docker_manifest(std::string_view bytes, std::error_code& ec, std::string* detail = nullptr);

// Loads every image of an archive read from `archive` (`source` names it in messages). Errors:
// errc::invalid_archive for the member problems above and for manifest.json naming files the
// archive lacks, errc::not_found for a blob index.json reaches that the archive lacks, the
// import_layout errors for documents and blobs, cz::tar errors for a broken tar, cz::errc
// errors from the decompressor. Images whose blobs are all stored are tagged as they complete;
// an error leaves the images before it loaded.
CZ_DECL load_report load_archive(const image_store& images, source_ref archive,
                                 std::string_view source, std::error_code& ec,
                                 std::string* detail = nullptr);
CZ_DECL load_report load_archive(const image_store& images, const std::filesystem::path& path,
                                 std::error_code& ec, std::string* detail = nullptr);
CZ_DECL load_report load_archive(const image_store& images, const std::filesystem::path& path);

struct save_options {
    // A docker-save archive holds one manifest per image: an index is resolved to the manifest
    // for this platform. (An OCI archive keeps indexes whole.)
    platform docker_platform = host_platform();
};

// Writes the images `refs` name (each found as image_store::lookup finds it) as an archive:
//   archive_format::oci     oci-layout, index.json (one entry per reference, its ref.name the
//                           stored name), blobs/sha256/<hex> of everything they reach;
//   archive_format::docker  the old docker-save kind: <config hex>.json, <diff_id hex>.tar
//                           (layers decompressed, as docker and skopeo write them), and
//                           manifest.json with one item per image, its references in RepoTags
//                           (a reference without a tag is saved without one).
// Blobs are checked against their digests as they are copied out. The path overloads write a
// temporary file beside `path` and rename it into place, so a failed save leaves nothing.
CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          sink_ref out, archive_format format, const save_options& options,
                          std::error_code& ec, std::string* detail = nullptr);
CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          const std::filesystem::path& path, archive_format format,
                          const save_options& options, std::error_code& ec,
                          std::string* detail = nullptr);
CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          const std::filesystem::path& path, archive_format format,
                          const save_options& options = {});

struct rootfs_options {
    // The platform the config names; the host's by default.
    platform image_platform = host_platform();
    // The config's and the history entry's time (RFC 3339); empty means now.
    std::string created;
    // The history entry's comment, as `docker import` writes "Imported from -".
    std::string comment = "imported from a root filesystem tar by cz";
    // How to run a container from the image (`docker import --change CMD ...`).
    container_config config;
};

// Makes a one-layer image from a root filesystem tar, like `docker import`, and tags it `name`
// (normalised: "myroot:1" becomes docker.io/library/myroot:1): the tar (plain, or gzip or zstd,
// decompressed first) is read once, every header checked by cz/tar's reader, and stored as a
// gzip-compressed layer while its sha256 becomes the config's rootfs diff_id; the config names
// the platform and a history entry; the manifest is an OCI manifest. Returns the manifest's
// descriptor. Errors: errc::invalid_reference for the name, cz::tar errors (with "rootfs: tar
// header at offset N") for a tar that is not one, system errors from the store.
CZ_DECL descriptor import_rootfs(const image_store& images, source_ref rootfs,
                                 std::string_view name, const rootfs_options& options,
                                 std::error_code& ec, std::string* detail = nullptr);
CZ_DECL descriptor import_rootfs(const image_store& images, source_ref rootfs,
                                 std::string_view name, const rootfs_options& options = {});
CZ_DECL descriptor import_rootfs(const image_store& images, const std::filesystem::path& rootfs,
                                 std::string_view name, const rootfs_options& options,
                                 std::error_code& ec, std::string* detail = nullptr);
CZ_DECL descriptor import_rootfs(const image_store& images, const std::filesystem::path& rootfs,
                                 std::string_view name, const rootfs_options& options = {});

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/archive.ipp>
#endif
