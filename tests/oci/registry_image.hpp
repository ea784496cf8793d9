// The images the registry tests push and pull: a one-layer image made with cz/oci, pushed to a
// registry_server with skopeo.
#pragma once

#include "registry_server.hpp"

#include <cz/oci/media_types.hpp>
#include <cz/oci/store.hpp>

#include <nlohmann/json.hpp>

namespace cz_test {

// A one-layer image for `arch` in `images`' store: a real gzip layer (a file of `noise` random
// bytes and one naming the architecture), a config naming its diff_id, an OCI manifest.
inline cz::oci::descriptor make_image(const cz::oci::image_store& images, const std::string& arch,
                                      const std::filesystem::path& scratch,
                                      std::size_t noise = 200000) {
    namespace oci = cz::oci;
    auto tree = scratch / ("tree-" + arch);
    sh_ok("mkdir -p " + quote(tree.string()) + " && echo " + arch + " > " +
          quote((tree / "arch.txt").string()) + " && head -c " + std::to_string(noise) +
          " /dev/urandom > " + quote((tree / "noise").string()) + " && tar -C " +
          quote(tree.string()) + " -cf " + quote(tree.string() + ".tar") + " . && gzip -kn " +
          quote(tree.string() + ".tar"));
    auto tar = read_file(tree.string() + ".tar");
    auto gz = read_file(tree.string() + ".tar.gz");
    cz::sha256_hasher h;
    h.update(cz::as_bytes(tar));
    auto diff_id = h.final();
    const auto& content = images.content();
    auto layer = content.put(oci::media_type::oci_layer_gzip, gz);
    nlohmann::json config = {{"architecture", arch},
                             {"os", "linux"},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.str()}}}}};
    auto config_d = content.put(oci::media_type::oci_config, config.dump());
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", oci::media_type::oci_manifest},
                               {"config", oci::to_json(config_d)},
                               {"layers", {oci::to_json(layer)}}};
    return content.put(oci::media_type::oci_manifest, manifest.dump());
}

// Pushes `tag` of the OCI layout under `store_root` to `server` as cz/<tag>:1, with skopeo.
inline void push(const registry_server& server, const std::filesystem::path& store_root,
                 const std::string& tag, const std::string& extra = {}) {
    sh_ok("skopeo copy -q " + extra + " --dest-tls-verify=false " +
          quote("oci:" + (store_root / "content").string() + ":" + tag) + " docker://" +
          server.host() + "/cz/" + tag + ":1");
}

inline cz::oci::platform linux(const std::string& arch) {
    cz::oci::platform p;
    p.os = "linux";
    p.architecture = arch;
    return p;
}

} // namespace cz_test
