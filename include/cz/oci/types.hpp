// cz/oci/types.hpp — OCI image documents: descriptor, manifest, index, image config, platform.
//
// Primer (OCI image-spec descriptor.md, manifest.md, image-index.md, config.md):
//   descriptor  {mediaType, digest, size, urls?, annotations?, platform?, artifactType?} points at
//               a blob by content: `digest` is sha256 over the blob's exact bytes, `size` its
//               length.
//   manifest    {schemaVersion: 2, mediaType, config: descriptor, layers: [descriptor],
//               subject?, annotations?} — one image for one platform. Docker's schema2 manifest
//               has the same shape with Docker media types.
//   index       {schemaVersion: 2, mediaType, manifests: [descriptor + platform], annotations?}
//               — a multi-platform image (Docker: "manifest list"). Entries may be indexes again.
//   config      {architecture, os, variant?, config: {Entrypoint, Cmd, Env, ...},
//               rootfs: {type: "layers", diff_ids}, history} — how to run the image; diff_ids
//               are the digests of the uncompressed layers, in order.
// Manifests, indexes and configs keep the bytes they were parsed from: a digest is always over
// the bytes received, never over a re-serialisation (JSON has many spellings of one object).
// Everything here arrives from registries and archives, so it is untrusted: documents are capped
// at 4 MiB and nested at most 64 deep, every field is type-checked, and an error names the field
// (`layers[2].size: must be a non-negative integer`).
#pragma once

#include <cz/core/sha256.hpp>
#include <cz/oci/error.hpp>
#include <cz/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::oci {

// The largest manifest, index or image config cz parses (containerd's limit for manifests).
inline constexpr std::size_t max_document_size = 4 << 20;
// The deepest nesting of JSON arrays and objects cz parses (real documents use 4 or 5).
inline constexpr std::size_t max_json_depth = 64;

using annotations = std::map<std::string, std::string>;

// Annotation keys cz reads or writes (image-spec annotations.md).
inline constexpr std::string_view annotation_ref_name = "org.opencontainers.image.ref.name";
inline constexpr std::string_view annotation_created = "org.opencontainers.image.created";
// containerd's (and docker 25+'s `docker save`) full image name on an index.json entry, whose
// ref.name then holds only the tag.
inline constexpr std::string_view annotation_containerd_image_name = "io.containerd.image.name";

// Parses a blob digest as it appears in descriptors and references. `sha256:<64 lowercase hex>`
// is accepted; a well-formed digest of another algorithm (`sha512:<128 hex>`, the OCI grammar's
// `alg[+.-_alg]*:[a-zA-Z0-9=_-]+`) fails with errc::unsupported_digest_algorithm naming it;
// anything else with errc::invalid_digest and what is wrong in *detail.
CZ_DECL digest parse_digest(std::string_view text, std::error_code& ec,
                            std::string* detail = nullptr);
CZ_DECL digest parse_digest(std::string_view text);

// A platform as images describe theirs (image-index.md, config.md). Only os and architecture
// are required; cz/oci/platform.hpp parses, normalises and matches them.
struct platform {
    std::string os;           // "linux"
    std::string architecture; // "amd64", "arm64", "arm", ... (GOARCH values)
    std::string variant;      // "v7", "v8", ... or empty
    std::string os_version;   // Windows builds; empty elsewhere
    std::vector<std::string> os_features;

    friend bool operator==(const platform&, const platform&) = default;
};

struct descriptor {
    std::string media_type;
    cz::digest digest;
    std::int64_t size = 0;
    std::vector<std::string> urls;
    oci::annotations annotations;
    std::optional<oci::platform> platform;
    std::string artifact_type;

    friend bool operator==(const descriptor&, const descriptor&) = default;
};

// An image manifest (OCI or Docker schema2).
struct manifest {
    int schema_version = 2;
    // The mediaType field; an OCI manifest may leave it out (then empty here).
    std::string media_type;
    std::string artifact_type;
    descriptor config;
    std::vector<descriptor> layers;
    std::optional<descriptor> subject;
    oci::annotations annotations;
    // The bytes this manifest was parsed from (empty for one built in code until serialised).
    std::string bytes;
};

// An image index (OCI index or Docker manifest list).
struct image_index {
    int schema_version = 2;
    std::string media_type;
    std::string artifact_type;
    std::vector<descriptor> manifests;
    std::optional<descriptor> subject;
    oci::annotations annotations;
    std::string bytes;
};

// The "config" object of an image config: how to run a container from the image. Absent fields
// stay empty (Entrypoint and Cmd distinguish "absent" from "empty list": an image may clear the
// Entrypoint of its base).
struct container_config {
    std::string user;
    std::vector<std::string> exposed_ports; // "80/tcp", sorted (a JSON object's keys)
    std::vector<std::string> env;           // "KEY=value"
    std::optional<std::vector<std::string>> entrypoint;
    std::optional<std::vector<std::string>> cmd;
    std::vector<std::string> volumes; // sorted
    std::string working_dir;
    std::map<std::string, std::string> labels;
    std::string stop_signal;
};

struct history_entry {
    std::string created;
    std::string created_by;
    std::string author;
    std::string comment;
    bool empty_layer = false;
};

// An image config (OCI or Docker; the fields cz uses, plus the bytes for everything else).
struct image_config {
    std::string created;
    std::string author;
    std::string architecture;
    std::string os;
    std::string variant;
    std::string os_version;
    container_config config;
    std::string rootfs_type; // "layers"
    std::vector<cz::digest> diff_ids;
    std::vector<history_entry> history;
    std::string bytes;
};

// Which kind of document some JSON bytes are: the mediaType when it names one, else the shape
// (a "manifests" array is an index, a "config" or "layers" field a manifest), as containerd
// guesses for documents without a mediaType. Returns an empty view when neither applies. Does
// not validate the document.
CZ_DECL std::string_view detect_media_type(std::string_view bytes);

// Parsers. Each checks the size cap, the JSON syntax and depth, and every field it knows; keeps
// the bytes; and reports errc::invalid_json / document_too_large / invalid_field /
// unsupported_media_type / unsupported_schema_version / invalid_digest /
// unsupported_digest_algorithm with the JSON path of the bad field in *detail.
// parse_manifest takes OCI manifests and Docker schema2 (a missing mediaType is taken as OCI);
// an index or Docker schema1 is refused with unsupported_media_type.
CZ_DECL manifest parse_manifest(std::string bytes, std::error_code& ec,
                                std::string* detail = nullptr);
CZ_DECL manifest parse_manifest(std::string bytes);
// parse_index takes OCI indexes and Docker manifest lists.
CZ_DECL image_index parse_index(std::string bytes, std::error_code& ec,
                                std::string* detail = nullptr);
CZ_DECL image_index parse_index(std::string bytes);
CZ_DECL image_config parse_image_config(std::string bytes, std::error_code& ec,
                                        std::string* detail = nullptr);
CZ_DECL image_config parse_image_config(std::string bytes);
// A descriptor alone (as in index.json entries written by other tools), from parsed JSON; `path`
// prefixes the field names in *detail.
CZ_DECL descriptor parse_descriptor(const nlohmann::json& j, std::string_view path,
                                    std::error_code& ec, std::string* detail = nullptr);

// JSON for new documents. A manifest or index cz writes is serialised once by serialize() and
// from then on handled as those bytes (serialize() fills .bytes and returns them).
CZ_DECL nlohmann::json to_json(const platform& p);
CZ_DECL nlohmann::json to_json(const descriptor& d);
CZ_DECL nlohmann::json to_json(const manifest& m);
CZ_DECL nlohmann::json to_json(const image_index& i);
CZ_DECL nlohmann::json to_json(const image_config& c);
CZ_DECL const std::string& serialize(manifest& m);
CZ_DECL const std::string& serialize(image_index& i);
CZ_DECL const std::string& serialize(image_config& c);

// A descriptor for bytes already in memory (a manifest, config or small layer).
CZ_DECL descriptor describe(std::string_view media_type, std::string_view bytes);

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/types.ipp>
#endif
