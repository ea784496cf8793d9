// cz/oci/media_types.hpp — the media types of OCI images and their Docker equivalents.
//
// OCI image-spec media-types.md lists the OCI ones; Docker's image manifest v2 schema 2 the
// Docker ones, which OCI's are compatible with field for field (a Docker manifest list is an
// index, a schema2 manifest is a manifest). Registries serve both, so cz reads both.
#pragma once

#include <string_view>

namespace cz::oci::media_type {

inline constexpr std::string_view oci_layout_header = "application/vnd.oci.layout.header.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
// Layers that must not be pushed to other registries (Windows base layers); deprecated by OCI.
inline constexpr std::string_view oci_layer_nondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view oci_layer_nondistributable_gzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view oci_empty = "application/vnd.oci.empty.v1+json";

inline constexpr std::string_view docker_manifest_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer_gzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_layer_foreign_gzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Docker schema1: refused with a clear error, as containerd and go-containerregistry do.
inline constexpr std::string_view docker_schema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// True for the two index types (OCI index, Docker manifest list).
constexpr bool is_index(std::string_view t) noexcept {
    return t == oci_index || t == docker_manifest_list;
}
// True for the two image manifest types (OCI manifest, Docker schema2).
constexpr bool is_manifest(std::string_view t) noexcept {
    return t == oci_manifest || t == docker_manifest;
}
// True for the two image config types.
constexpr bool is_config(std::string_view t) noexcept {
    return t == oci_config || t == docker_config;
}
// True for the layer types cz can unpack (tar, gzip or zstd; OCI or Docker; nondistributable
// included, since its content is an ordinary layer).
constexpr bool is_layer(std::string_view t) noexcept {
    return t == oci_layer || t == oci_layer_gzip || t == oci_layer_zstd ||
           t == oci_layer_nondistributable || t == oci_layer_nondistributable_gzip ||
           t == docker_layer_gzip || t == docker_layer_foreign_gzip;
}

} // namespace cz::oci::media_type
