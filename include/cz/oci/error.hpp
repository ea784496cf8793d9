// cz/oci/error.hpp — the errors of the oci module (cz::oci::errc, category "cz.oci").
//
// An error_code says what kind of failure happened; where it happened (the JSON field, the
// offset in a reference, the blob) travels beside it in a `std::string* detail` out-parameter of
// the error_code overloads, and in the message of the cz::system_error the throwing overloads
// raise: `manifest: layers[2].digest: "sha256:xyz" is not sha256:<64 lowercase hex>`.
#pragma once

#include <cz/core/error.hpp>

#include <string>
#include <system_error>

namespace cz::oci {

enum class errc {
    // A document (manifest, index, config, index.json, oci-layout) is not well-formed JSON, or is
    // nested deeper than the parser allows.
    invalid_json = 1,
    // A document is larger than the cap for its kind (4 MiB for manifests, indexes and configs).
    document_too_large,
    // A JSON field is missing, has the wrong type, or holds a value the spec does not allow.
    invalid_field,
    // A document's mediaType is not one the parser takes (an index handed to the manifest parser,
    // a Docker schema1 manifest, an unknown type).
    unsupported_media_type,
    // The schemaVersion of a manifest or index is not 2.
    unsupported_schema_version,
    // A digest string is not `<algorithm>:<hex>` as the OCI grammar writes it.
    invalid_digest,
    // A well-formed digest whose algorithm cz does not implement (sha512, blake3, ...).
    unsupported_digest_algorithm,
    // An image reference that does not follow the distribution/reference grammar.
    invalid_reference,
    // A platform string that is not `os/arch[/variant]`.
    invalid_platform,
    // No entry of an index fits the wanted platform.
    no_matching_platform,
    // A blob, reference or manifest that the store does not hold.
    not_found,
    // Content whose size differs from the size it was announced with.
    size_mismatch,
    // Content whose digest differs from the digest it was announced with.
    digest_mismatch,
    // Indexes that nest deeper than allowed, or point back at themselves.
    index_too_deep,
    // The directory is not an OCI image layout cz can use (oci-layout missing or of another
    // version, index.json unreadable).
    invalid_layout,
    // An image archive (OCI archive, `docker save` tar) cz does not read: a member path that is
    // absolute or has "..", a link that leads outside the archive or where a blob must be, a
    // member twice, a device or fifo, neither index.json nor manifest.json, a manifest.json
    // naming files the archive does not hold.
    invalid_archive,
};

// The category of cz::oci::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& oci_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), oci_category()};
}

} // namespace cz::oci

template <>
struct std::is_error_code_enum<cz::oci::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/oci/impl/error.ipp>
#endif
