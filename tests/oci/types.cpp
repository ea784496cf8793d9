// cz/oci/types.hpp: parsing and writing manifests, indexes, configs and digests.
#include <cz/oci/types.hpp>

#include "support/support.hpp"

#include <string>

using namespace cz::oci;

namespace {

const std::string hex_a(64, 'a');
const std::string hex_b(64, 'b');
const std::string hex_c(64, 'c');

std::string oci_manifest_json() {
    return R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
             "digest": "sha256:)" +
           hex_a + R"(", "size": 7023},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
     "digest": "sha256:)" +
           hex_b + R"(", "size": 32654,
     "annotations": {"k": "v"}},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
     "digest": "sha256:)" +
           hex_c + R"(", "size": 16724, "urls": ["https://example.com/l"]}
  ],
  "annotations": {"com.example.key1": "value1"}
})";
}

// Parses and expects failure; returns the detail.
template <class F>
std::string expect_error(F parse, std::string bytes, std::error_code want) {
    std::error_code ec;
    std::string detail;
    parse(std::move(bytes), ec, &detail);
    CHECK_MESSAGE(ec == want, ec.message(), " / ", detail);
    return detail;
}

std::string manifest_error(std::string bytes, std::error_code want) {
    return expect_error([](std::string b, std::error_code& ec,
                           std::string* d) { parse_manifest(std::move(b), ec, d); },
                        std::move(bytes), want);
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("digests: sha256 only, lowercase, 64 hex; other algorithms refused by name") {
        std::error_code ec;
        std::string detail;
        auto d = parse_digest("sha256:" + hex_a, ec, &detail);
        CHECK(!ec);
        CHECK(d.str() == "sha256:" + hex_a);

        parse_digest("sha512:" + std::string(128, 'a'), ec, &detail);
        CHECK(ec == errc::unsupported_digest_algorithm);
        CHECK(detail.find("\"sha512\" is not supported") != std::string::npos);
        parse_digest("blake3:" + hex_a, ec, &detail);
        CHECK(ec == errc::unsupported_digest_algorithm);

        for (std::string bad :
             {std::string("sha256:") + std::string(64, 'A'), "sha256:" + hex_a.substr(1),
              "sha256:" + hex_a + "a", std::string("sha256"), std::string(":") + hex_a,
              std::string("SHA256:") + hex_a, std::string("sha256:"),
              "sha256:" + hex_a.substr(1) + "g", std::string("sha256+:") + hex_a,
              std::string("")}) {
            parse_digest(bad, ec, &detail);
            CHECK_MESSAGE(ec == errc::invalid_digest, bad);
        }
        CHECK_THROWS_AS(parse_digest("md5:abc"), cz::system_error);
    }

    TEST_CASE("OCI manifest: every field, and the bytes kept as received") {
        auto text = oci_manifest_json();
        auto m = parse_manifest(text);
        CHECK(m.schema_version == 2);
        CHECK(m.media_type == media_type::oci_manifest);
        CHECK(m.config.media_type == media_type::oci_config);
        CHECK(m.config.digest.hex() == hex_a);
        CHECK(m.config.size == 7023);
        REQUIRE(m.layers.size() == 2);
        CHECK(m.layers[0].annotations.at("k") == "v");
        CHECK(m.layers[1].media_type == media_type::oci_layer_zstd);
        CHECK(m.layers[1].urls == std::vector<std::string>{"https://example.com/l"});
        CHECK(m.annotations.at("com.example.key1") == "value1");
        CHECK(m.bytes == text); // whitespace and key order as received
        CHECK(detect_media_type(text) == media_type::oci_manifest);
    }

    TEST_CASE("Docker schema2 manifest and manifest list") {
        std::string manifest = R"({"schemaVersion":2,
      "mediaType":"application/vnd.docker.distribution.manifest.v2+json",
      "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,
                "digest":"sha256:)" +
                               hex_a + R"("},
      "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2814446,
                 "digest":"sha256:)" +
                               hex_b + R"("}]})";
        auto m = parse_manifest(manifest);
        CHECK(m.media_type == media_type::docker_manifest);
        CHECK(media_type::is_layer(m.layers.at(0).media_type));

        std::string list = R"({"schemaVersion":2,
      "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests":[
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,
         "digest":"sha256:)" +
                           hex_a + R"(","platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,
         "digest":"sha256:)" +
                           hex_b + R"(",
         "platform":{"architecture":"arm","os":"linux","variant":"v7","os.features":["x"]}}]})";
        auto ix = parse_index(list);
        CHECK(ix.media_type == media_type::docker_manifest_list);
        REQUIRE(ix.manifests.size() == 2);
        REQUIRE(ix.manifests[1].platform);
        CHECK(ix.manifests[1].platform->variant == "v7");
        CHECK(ix.manifests[1].platform->os_features == std::vector<std::string>{"x"});
        CHECK(detect_media_type(list) == media_type::docker_manifest_list);

        // Each parser refuses the other's documents, by media type.
        CHECK(manifest_error(list, errc::unsupported_media_type).find("is an index") !=
              std::string::npos);
        std::error_code ec;
        std::string detail;
        parse_index(manifest, ec, &detail);
        CHECK(ec == errc::unsupported_media_type);
        // An OCI index without a mediaType is still not a manifest.
        manifest_error(R"({"schemaVersion":2,"manifests":[]})", errc::unsupported_media_type);
    }

    TEST_CASE("manifest errors name the field") {
        auto replace = [](std::string s, std::string_view from, std::string_view to) {
            auto at = s.find(from);
            REQUIRE(at != std::string::npos);
            return s.replace(at, from.size(), to);
        };
        auto good = oci_manifest_json();
        CHECK(manifest_error(replace(good, "\"size\": 32654", "\"size\": -1"),
                             errc::invalid_field) == "layers[0].size: must not be negative");
        CHECK(manifest_error(replace(good, "\"size\": 32654", "\"size\": 1.5"),
                             errc::invalid_field) == "layers[0].size: must be an integer");
        CHECK(manifest_error(replace(good, "\"size\": 32654", "\"size\": \"1\""),
                             errc::invalid_field) == "layers[0].size: must be an integer");
        CHECK(manifest_error(replace(good, "\"size\": 32654", "\"size\": 18446744073709551615"),
                             errc::invalid_field) == "layers[0].size: too large");
        CHECK(manifest_error(replace(good, "sha256:" + hex_c, "sha256:" + hex_c.substr(2)),
                             errc::invalid_digest)
                  .starts_with("layers[1].digest: "));
        CHECK(manifest_error(replace(good, "sha256:" + hex_a, "sha512:" + hex_a + hex_a),
                             errc::unsupported_digest_algorithm)
                  .starts_with("config.digest: "));
        CHECK(manifest_error(replace(good, "\"schemaVersion\": 2", "\"schemaVersion\": 1"),
                             errc::unsupported_schema_version) ==
              "schemaVersion: is 1, only 2 is supported");
        CHECK(manifest_error(replace(good, "\"schemaVersion\": 2,", ""), errc::invalid_field) ==
              "schemaVersion: missing");
        CHECK(manifest_error(replace(good, "\"k\": \"v\"", "\"k\": 3"), errc::invalid_field) ==
              "layers[0].annotations[\"k\"]: must be a string");
        CHECK(
            manifest_error(replace(good, "\"urls\": [\"https://example.com/l\"]", "\"urls\": [1]"),
                           errc::invalid_field) == "layers[1].urls[0]: must be a string");
        CHECK(
            manifest_error(replace(good, "application/vnd.oci.image.layer.v1.tar+gzip", "nonsense"),
                           errc::invalid_field)
                .starts_with("layers[0].mediaType: \"nonsense\" is not a media type"));
        CHECK(manifest_error(replace(good, "\"layers\"", "\"layerz\""), errc::invalid_field) ==
              "layers: missing");
        // The parser stops at the ':' after "layers" (now inside an array); bytes count from 1.
        auto bad_syntax = replace(good, "\"config\": {", "\"config\": [{");
        CHECK(manifest_error(bad_syntax, errc::invalid_json) ==
              fmt::format("JSON syntax error at byte {}", bad_syntax.find("\"layers\":") + 9));
        manifest_error(
            R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"})",
            errc::unsupported_media_type);
        CHECK(manifest_error("[1,2]", errc::invalid_json) == "expected a JSON object, found array");
        manifest_error("", errc::invalid_json);
        // A number no double holds (found by fuzzing: nlohmann throws out_of_range, not
        // parse_error).
        CHECK(manifest_error("{\"a\":1E400}", errc::invalid_json).find("number overflow") !=
              std::string::npos);
        manifest_error("{\"schemaVersion\":2", errc::invalid_json);
        manifest_error("{\"a\":\"\xff\"}", errc::invalid_json); // not UTF-8
        CHECK_THROWS_WITH_AS(parse_manifest("{}"),
                             "manifest: schemaVersion: missing: invalid field", cz::system_error);
    }

    TEST_CASE("size and depth caps") {
        std::string big = oci_manifest_json();
        big.insert(big.size() - 1, ",\"pad\":\"" + std::string(max_document_size, 'x') + "\"");
        CHECK(manifest_error(big, errc::document_too_large).find("more than the 4194304 allowed") !=
              std::string::npos);
        // Just under the cap is fine.
        std::string fits = oci_manifest_json();
        fits.insert(fits.size() - 1, ",\"pad\":\"\"");
        fits.insert(fits.size() - 2, std::string(max_document_size - fits.size(), 'x'));
        REQUIRE(fits.size() == max_document_size);
        CHECK_NOTHROW(parse_manifest(fits));

        std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
        CHECK(manifest_error(deep, errc::invalid_json).find("more than 64 deep") !=
              std::string::npos);
        // Brackets inside strings do not count.
        std::string in_string = oci_manifest_json();
        in_string.insert(in_string.size() - 1, ",\"x\":\"" + std::string(1000, '[') + "\\\"\"");
        CHECK_NOTHROW(parse_manifest(in_string));
    }

    TEST_CASE("image config: the container config, rootfs and history") {
        std::string text = R"({
      "created": "2024-01-01T00:00:00Z", "architecture": "arm64", "variant": "v8", "os": "linux",
      "config": {"User": "1000:1000", "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                 "Env": ["PATH=/usr/bin", "A=b"], "Entrypoint": ["/bin/sh", "-c"],
                 "Cmd": null, "WorkingDir": "/srv", "Labels": {"l": "1"},
                 "StopSignal": "SIGTERM", "Volumes": {"/data": {}}},
      "rootfs": {"type": "layers", "diff_ids": ["sha256:)" +
                           hex_a + R"(", "sha256:)" + hex_b + R"("]},
      "history": [{"created_by": "ADD file", "created": "2024-01-01T00:00:00Z"},
                  {"created_by": "ENV", "empty_layer": true}]})";
        auto c = parse_image_config(text);
        CHECK(c.architecture == "arm64");
        CHECK(c.variant == "v8");
        CHECK(c.config.user == "1000:1000");
        CHECK(c.config.exposed_ports == std::vector<std::string>{"53/udp", "8080/tcp"});
        CHECK(c.config.env.size() == 2);
        REQUIRE(c.config.entrypoint);
        CHECK(*c.config.entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
        CHECK(!c.config.cmd); // null is absent
        CHECK(c.config.working_dir == "/srv");
        CHECK(c.config.labels.at("l") == "1");
        CHECK(c.config.stop_signal == "SIGTERM");
        CHECK(c.config.volumes == std::vector<std::string>{"/data"});
        REQUIRE(c.diff_ids.size() == 2);
        CHECK(c.diff_ids[1].hex() == hex_b);
        REQUIRE(c.history.size() == 2);
        CHECK(c.history[1].empty_layer);
        CHECK(c.bytes == text);

        auto config_error = [](std::string bytes, std::error_code want) {
            return expect_error([](std::string b, std::error_code& ec,
                                   std::string* d) { parse_image_config(std::move(b), ec, d); },
                                std::move(bytes), want);
        };
        CHECK(
            config_error(
                R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["x"]}})",
                errc::invalid_digest)
                .starts_with("rootfs.diff_ids[0]: "));
        CHECK(config_error(R"({"architecture":"amd64","os":"linux"})", errc::invalid_field) ==
              "rootfs: missing");
        CHECK(config_error(R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})",
                           errc::invalid_field) == "architecture: missing");
        CHECK(
            config_error(
                R"({"architecture":"amd64","os":"linux","config":{"Cmd":"ls"},"rootfs":{"type":"layers","diff_ids":[]}})",
                errc::invalid_field) == "config.Cmd: must be an array of strings");
        CHECK(
            config_error(
                R"({"architecture":"amd64","os":"linux","config":{"ExposedPorts":{"80":1}},"rootfs":{"type":"layers","diff_ids":[]}})",
                errc::invalid_field) == "config.ExposedPorts[\"80\"]: must be an object");
        CHECK(config_error(
                  R"({"architecture":"amd64","os":"linux","rootfs":{"type":"tar","diff_ids":[]}})",
                  errc::invalid_field) == "rootfs.type: is \"tar\", must be \"layers\"");
        CHECK(
            config_error(
                R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[{"empty_layer":"yes"}]})",
                errc::invalid_field) == "history[0].empty_layer: must be true or false");
    }

    TEST_CASE("written documents parse back to the same values") {
        image_config c;
        c.architecture = "amd64";
        c.os = "linux";
        c.config.cmd = std::vector<std::string>{"/bin/sh"};
        c.config.entrypoint = std::vector<std::string>{}; // cleared, not absent
        c.config.exposed_ports = {"80/tcp"};
        c.diff_ids = {parse_digest("sha256:" + hex_a)};
        c.history = {{"", "import", "", "", false}};
        auto config_bytes = serialize(c);
        auto c2 = parse_image_config(config_bytes);
        CHECK(c2.config.cmd == c.config.cmd);
        REQUIRE(c2.config.entrypoint);
        CHECK(c2.config.entrypoint->empty());
        CHECK(c2.config.exposed_ports == c.config.exposed_ports);
        CHECK(c2.diff_ids == c.diff_ids);

        manifest m;
        m.media_type = std::string(media_type::oci_manifest);
        m.config = describe(media_type::oci_config, config_bytes);
        m.layers.push_back(describe(media_type::oci_layer, "layer bytes"));
        m.layers[0].annotations["a"] = "b";
        auto bytes = serialize(m);
        auto m2 = parse_manifest(bytes);
        CHECK(m2.config == m.config);
        CHECK(m2.layers == m.layers);
        CHECK(m2.bytes == bytes);

        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        ix.manifests.push_back(describe(media_type::oci_manifest, bytes));
        ix.manifests[0].platform = platform{"linux", "arm", "v7", "", {}};
        auto ix2 = parse_index(serialize(ix));
        CHECK(ix2.manifests == ix.manifests);
    }

} // TEST_SUITE
