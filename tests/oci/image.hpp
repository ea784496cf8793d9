// Builds small images in a content store for the oci tests: a layer tar made with cz/tar, a
// config and a manifest.
#pragma once

#include <cz/oci/store.hpp>
#include <cz/tar/writer.hpp>

#include "support/support.hpp"

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

} // namespace oci_test
