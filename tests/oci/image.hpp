// Builds small images for the oci tests (and the cz tool's): a layer tar made with cz/tar, a
// config and a manifest, in a content store or in skopeo's dir: format.
#pragma once

#include <cz/oci/store.hpp>
#include <cz/tar/writer.hpp>

#include "support/support.hpp"

#include <filesystem>
#include <string>

namespace oci_test {

// A tar holding one file `name` with `content`.
inline std::string layer_tar(const std::string& name, const std::string& content) {
    cz::byte_buffer out;
    cz::buffer_sink sink(out);
    cz::tar::writer w(sink);
    cz::tar::entry e;
    e.name = name;
    e.type = cz::tar::entry_type::regular;
    e.mode = 0644;
    e.size = content.size();
    w.add(e);
    w.write(cz::as_bytes(content));
    w.finish();
    return cz::to_string(out);
}

struct built_image {
    cz::oci::descriptor manifest;
    cz::oci::descriptor config;
    cz::oci::descriptor layer;
    std::string manifest_bytes;
};

// Stores a one-layer image for `arch` whose file /hello holds `content`.
inline built_image put_image(const cz::oci::content_store& cs, const std::string& content,
                             const std::string& arch = "amd64", const std::string& variant = "") {
    built_image out;
    auto tar = layer_tar("hello", content);
    out.layer = cs.put(cz::oci::media_type::oci_layer, tar);
    cz::oci::image_config c;
    c.architecture = arch;
    c.variant = variant;
    c.os = "linux";
    c.config.cmd = std::vector<std::string>{"/bin/cat", "/hello"};
    c.config.env = {"PATH=/bin"};
    c.diff_ids = {out.layer.digest}; // uncompressed layer: diff_id == digest
    out.config = cs.put(cz::oci::media_type::oci_config, cz::oci::serialize(c));
    cz::oci::manifest m;
    m.media_type = std::string(cz::oci::media_type::oci_manifest);
    m.config = out.config;
    m.layers = {out.layer};
    out.manifest_bytes = cz::oci::serialize(m);
    out.manifest = cs.put(cz::oci::media_type::oci_manifest, out.manifest_bytes);
    return out;
}

// Writes a one-layer image in skopeo's `dir:` format (blobs named by their hex digest,
// manifest.json, version) and returns the manifest's bytes.
inline std::string write_dir_image(const std::filesystem::path& dir, const std::string& content) {
    using namespace cz::oci;
    std::filesystem::create_directories(dir);
    auto tar = layer_tar("hello", content);
    auto layer = describe(media_type::oci_layer, tar);
    image_config c;
    c.architecture = "amd64";
    c.os = "linux";
    c.config.cmd = std::vector<std::string>{"/bin/cat", "/hello"};
    c.config.working_dir = "/";
    c.diff_ids = {layer.digest};
    auto config_bytes = serialize(c);
    manifest m;
    m.media_type = std::string(media_type::oci_manifest);
    m.config = describe(media_type::oci_config, config_bytes);
    m.layers = {layer};
    auto manifest_bytes = serialize(m);
    cz_test::write_file(dir / layer.digest.hex(), tar);
    cz_test::write_file(dir / m.config.digest.hex(), config_bytes);
    cz_test::write_file(dir / "manifest.json", manifest_bytes);
    cz_test::write_file(dir / "version", "Directory Transport Version: 1.1\n");
    return manifest_bytes;
}

} // namespace oci_test
