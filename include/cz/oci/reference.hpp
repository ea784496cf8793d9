// cz/oci/reference.hpp — image references (`alpine`, `ghcr.io/org/app:1.2@sha256:...`).
//
// Grammar (distribution/reference, which docker, containerd and podman share):
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path                        at most 255 characters in all
//   domain     := host [ ":" port ]                          port := [0-9]+
//   host       := domain-name | "[" [0-9a-fA-F:]+ "]"        IPv6 literal in brackets
//   domain-name:= component ( "." component )*               component := [a-zA-Z0-9] or
//                                                             [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path       := path-component ( "/" path-component )*
//   path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*     separator := "." | "_" | "__" | "-"+
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex                          cz takes sha256:<64 lowercase hex>
// Normalisation, as `docker pull` does it: the first path component is a domain only when it
// contains "." or ":", is "localhost", or has an uppercase letter; otherwise the domain is
// docker.io. On docker.io a one-component path gains "library/"; index.docker.io becomes
// docker.io. A reference with neither tag nor digest gets the tag "latest". A name that is
// exactly 64 lowercase hex digits is refused (it would read as an image ID).
#pragma once

#include <cz/core/sha256.hpp>
#include <cz/oci/error.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace cz::oci {

inline constexpr std::string_view default_domain = "docker.io";
inline constexpr std::string_view default_tag = "latest";
inline constexpr std::size_t max_name_length = 255;
inline constexpr std::size_t max_tag_length = 128;

struct reference {
    std::string domain; // "docker.io", "localhost:5000", "[::1]:5000"
    std::string path;   // "library/alpine"
    std::string tag;    // "latest"; empty when the reference has only a digest
    std::optional<cz::digest> digest;

    // "docker.io/library/alpine"
    std::string name() const { return domain + "/" + path; }
    // The canonical form: "docker.io/library/alpine:latest", "...@sha256:...", or both.
    CZ_DECL std::string str() const;
    // The short form docker prints: "alpine:latest", "org/app:1", "ghcr.io/org/app@sha256:...".
    CZ_DECL std::string familiar() const;

    friend bool operator==(const reference&, const reference&) = default;
};

// Parses and normalises a reference. On failure: errc::invalid_reference with
// "at offset N: what is wrong" in *detail (N counts bytes of `text` from 0), or
// errc::unsupported_digest_algorithm for a well-formed digest of another algorithm.
CZ_DECL reference parse_reference(std::string_view text, std::error_code& ec,
                                  std::string* detail = nullptr);
CZ_DECL reference parse_reference(std::string_view text);

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/reference.ipp>
#endif
