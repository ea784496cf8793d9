// cz/oci/reference.hpp: a table written from the distribution/reference grammar and docker's
// normalisation rules (see the grammar at the top of the header).
#include <cz/oci/reference.hpp>

#include "support/support.hpp"

#include <fmt/format.h>

#include <string>

using namespace cz::oci;

namespace {

const std::string hex(64, 'e');
const std::string dg = "sha256:" + hex;

struct valid_case {
    std::string input;
    std::string domain;
    std::string path;
    std::string tag;
    bool has_digest;
    std::string familiar;
};

struct invalid_case {
    std::string input;
    std::size_t offset; // where the error is reported
    std::string says;   // a part of the message
    cz::oci::errc code = errc::invalid_reference;
};

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("references: valid, normalised") {
        const std::string name255 = "a/" + std::string(255 - 12, 'b'); // with "docker.io/"
        const valid_case cases[] = {
            {"alpine", "docker.io", "library/alpine", "latest", false, "alpine:latest"},
            {"alpine:3.19", "docker.io", "library/alpine", "3.19", false, "alpine:3.19"},
            {"library/alpine", "docker.io", "library/alpine", "latest", false, "alpine:latest"},
            {"docker.io/alpine", "docker.io", "library/alpine", "latest", false, "alpine:latest"},
            {"docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", false,
             "alpine:edge"},
            {"index.docker.io/alpine", "docker.io", "library/alpine", "latest", false,
             "alpine:latest"},
            {"index.docker.io/org/app", "docker.io", "org/app", "latest", false, "org/app:latest"},
            {"org/app", "docker.io", "org/app", "latest", false, "org/app:latest"},
            {"org/team/app:v1", "docker.io", "org/team/app", "v1", false, "org/team/app:v1"},
            {"docker.io/library/a/b", "docker.io", "library/a/b", "latest", false,
             "library/a/b:latest"},
            {"ghcr.io/org/app", "ghcr.io", "org/app", "latest", false, "ghcr.io/org/app:latest"},
            {"ghcr.io/app", "ghcr.io", "app", "latest", false, "ghcr.io/app:latest"},
            {"quay.io/a/b/c/d:1", "quay.io", "a/b/c/d", "1", false, "quay.io/a/b/c/d:1"},
            {"localhost/app", "localhost", "app", "latest", false, "localhost/app:latest"},
            {"localhost:5000/app:t", "localhost:5000", "app", "t", false, "localhost:5000/app:t"},
            {"127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", false,
             "127.0.0.1:5000/app:latest"},
            {"[::1]:5000/app", "[::1]:5000", "app", "latest", false, "[::1]:5000/app:latest"},
            {"[2001:db8::1]/app:x", "[2001:db8::1]", "app", "x", false, "[2001:db8::1]/app:x"},
            {"[fe80::A]:443/a/b", "[fe80::A]:443", "a/b", "latest", false,
             "[fe80::A]:443/a/b:latest"},
            {"registry:5000/app", "registry:5000", "app", "latest", false,
             "registry:5000/app:latest"},
            {"Registry/app", "Registry", "app", "latest", false,
             "Registry/app:latest"}, // uppercase: a domain
            {"EXAMPLE.COM/app", "EXAMPLE.COM", "app", "latest", false, "EXAMPLE.COM/app:latest"},
            {"my-registry.example.com/a", "my-registry.example.com", "a", "latest", false,
             "my-registry.example.com/a:latest"},
            {"a-b.c/x", "a-b.c", "x", "latest", false, "a-b.c/x:latest"},
            {"localhost:5000", "docker.io", "library/localhost", "5000", false,
             "localhost:5000"}, // a tag
            {"foo.com", "docker.io", "library/foo.com", "latest", false, "foo.com:latest"},
            {"a.b_c__d-e---f", "docker.io", "library/a.b_c__d-e---f", "latest", false,
             "a.b_c__d-e---f:latest"},
            {"a1/b2:_tag", "docker.io", "a1/b2", "_tag", false, "a1/b2:_tag"},
            {"app:A.b-C_9", "docker.io", "library/app", "A.b-C_9", false, "app:A.b-C_9"},
            {"app:" + std::string(128, 't'), "docker.io", "library/app", std::string(128, 't'),
             false, "app:" + std::string(128, 't')},
            {"app@" + dg, "docker.io", "library/app", "", true, "app@" + dg},
            {"app:1@" + dg, "docker.io", "library/app", "1", true, "app:1@" + dg},
            {"localhost:5000/a/b:c@" + dg, "localhost:5000", "a/b", "c", true,
             "localhost:5000/a/b:c@" + dg},
            {hex + "1", "docker.io", "library/" + hex + "1", "latest", false,
             hex + "1:latest"}, // 65
            {"org/" + hex, "docker.io", "org/" + hex, "latest", false, "org/" + hex + ":latest"},
            {name255, "docker.io", name255, "latest", false, name255 + ":latest"},
            {"0/1", "docker.io", "0/1", "latest", false, "0/1:latest"},
            // Found by fuzzing: the short form must not turn a path component into a domain.
            {"index.docker.io/ex.io/app:x", "docker.io", "ex.io/app", "x", false,
             "docker.io/ex.io/app:x"},
            {"docker.io/localhost/app", "docker.io", "localhost/app", "latest", false,
             "docker.io/localhost/app:latest"},
            // No '/': the whole thing is a name on docker.io, dots and all.
            {"ghcr.io", "docker.io", "library/ghcr.io", "latest", false, "ghcr.io:latest"},
            // The image-ID rule is about the whole name: with a tag, 64 hex digits are a name.
            {hex + ":tag", "docker.io", "library/" + hex, "tag", false, hex + ":tag"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.input);
            std::error_code ec;
            std::string detail;
            auto r = parse_reference(c.input, ec, &detail);
            REQUIRE_MESSAGE(!ec, detail);
            CHECK(r.domain == c.domain);
            CHECK(r.path == c.path);
            CHECK(r.tag == c.tag);
            CHECK(r.digest.has_value() == c.has_digest);
            if (c.has_digest) CHECK(r.digest->str() == dg);
            CHECK(r.familiar() == c.familiar);
            // The canonical form parses to the same reference.
            CHECK(parse_reference(r.str()) == r);
        }
        CHECK(parse_reference(name255).name().size() == 255);
    }

    TEST_CASE("references: invalid, with the offset and the reason") {
        const invalid_case cases[] = {
            {"", 0, "empty reference"},
            {"Alpine", 0, "uppercase 'A' in the repository name"},
            {"org/App", 4, "uppercase 'A'"},
            {"ghcr.io/Org/app", 8, "uppercase 'O'"},
            {"alpine:", 7, "empty tag"},
            {"alpine:-x", 7, "a tag starts with '-'"},
            {"alpine:.x", 7, "a tag starts with '.'"},
            // The first component "alpine:a" has a ':', so it is a domain (as docker reads it).
            {"alpine:a/b", 7, "'a' in the port"},
            {"alpine:a.b/c", 7, "'a' in the port"},
            {"alpine:a:b", 8, "':' in the tag"},
            {"alpine:" + std::string(129, 't'), 7 + 128, "more than 128"},
            {"alpine:a b", 8, "' ' in the tag"},
            {"/alpine", 0, "empty path component"},
            {"alpine/", 7, "empty path component"},
            {"a//b", 2, "empty path component"},
            {"ghcr.io/", 8, "empty repository path"},
            {"-alpine", 0, "a path component starts with '-'"},
            {"_alpine", 0, "a path component starts with '_'"},
            {".alpine", 0, "a path component starts with '.'"},
            {"alpine-", 6, "a separator must be followed"},
            {"alpine.", 6, "a separator must be followed"},
            {"a___b", 1, "separator \"___\""},
            {"a._b", 1, "separator \"._\""},
            {"a..b", 1, "separator \"..\""},
            {"a-_b", 1, "separator \"-_\""},
            {"a$b", 1, "'$' in the repository name"},
            {"a b", 1, "' ' in the repository name"},
            {std::string("a\x01") + "b", 1, "byte 0x01"},
            {"ghcr.io/a b", 9, "' ' in the repository name"},
            {"ex ample.com/a", 2, "' ' in the domain"},
            {"-ghcr.io/a", 0, "starts with '-'"},
            {"ghcr-.io/a", 4, "ends with '-'"},
            {"ghcr..io/a", 5, "empty domain component"},
            {".ghcr.io/a", 0, "empty domain component"},
            {"ghcr.io./a", 8, "empty domain component"},
            {"ghcr_x.io/a", 4, "'_' in the domain"},
            {"localhost:/a", 10, "empty port"},
            {"localhost:50a0/a", 12, "'a' in the port"},
            {"localhost:5000:1/a", 14, "':' in the port"},
            {"[::1/a", 0, "without a closing ']'"},
            {"[]:5000/a", 1, "empty IPv6 address"},
            {"[::g]/a", 3, "'g' in an IPv6 address"},
            {"[::1]x/a", 5, "'x' in the domain"},
            {"a@", 2, "a digest is <algorithm>:<hex>"},
            {"a@sha256", 2, "a digest is <algorithm>:<hex>"},
            {"a@sha256:" + hex.substr(1), 2, "64 hex digits"},
            {"a@sha256:" + std::string(64, 'E'), 2, "lowercase"},
            {"a@sha512:" + hex + hex, 2, "not supported", errc::unsupported_digest_algorithm},
            {"a@" + dg + "@" + dg, 2, "digest"},
            {"@" + dg, 0, "no repository name before '@'"},
            {hex, 0, "image ID"},
            {std::string(63, 'e') + "1", 0, "image ID"},
            {"a/" + std::string(256 - 12, 'b'), 0, "is 256 characters long, more than 255"},
            {"ghcr.io/" + std::string(248, 'b'), 0, "(ghcr.io) is 256 characters long"},
            {"a:b@", 4, "a digest is"},
            {"app:t@sha256:xyz", 6, "digest"},
        };
        int checked = 0;
        for (const auto& c : cases) {
            CAPTURE(c.input);
            std::error_code ec;
            std::string detail;
            parse_reference(c.input, ec, &detail);
            CHECK(ec == c.code);
            CHECK(detail.starts_with(fmt::format("at offset {}: ", c.offset)));
            CHECK_MESSAGE(detail.find(c.says) != std::string::npos, detail);
            ++checked;
        }
        CHECK(checked >= 50);
        CHECK_THROWS_WITH_AS(
            parse_reference("Alpine"),
            "reference \"Alpine\": at offset 0: uppercase 'A' in the repository name "
            "(it must be lowercase): invalid image reference",
            cz::system_error);
    }

} // TEST_SUITE
