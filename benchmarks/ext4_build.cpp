// benchmarks/ext4_build.cpp — OCI layers to an ext4 image: cz against the tools people use.
//
//   bench_ext4_build WORKDIR [RUNS]
//
// Prepares three gzip layers from host trees (/usr/include, /usr/bin, /usr/share/doc + man:
// about 900 MB and 58k entries here; kept in WORKDIR/layers for later runs), then times, per run:
//   cz          cz ext4 create img --from-tar l1 l2 l3
//   tar+mke2fs  tar -xzf of each layer into a directory, then mke2fs -t ext4 -d DIR
//   umoci+mke2fs  umoci unpack --rootless of an OCI layout holding the layers, then mke2fs -d
// and prints the median wall time, the peak RSS of each (the largest of its processes) and the
// ratio peer/cz (bench.hpp).
#include "bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#ifndef CZ_EXE
#error "CZ_EXE must name the cz executable"
#endif

namespace {

void sh(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

std::string sha256_of(const std::string& path, bool gunzip) {
    std::string cmd = (gunzip ? "gzip -dc '" + path + "' | sha256sum" : "sha256sum '" + path + "'");
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[65] = {};
    if (!p || std::fread(buf, 1, 64, p) != 64) throw std::runtime_error("sha256: " + path);
    ::pclose(p);
    return buf;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s WORKDIR [RUNS]\n", argv[0]);
        return 2;
    }
    std::string work = argv[1];
    int runs = argc > 2 ? std::atoi(argv[2]) : 3;
    std::string layers = work + "/layers";
    const std::vector<std::string> sources = {"-C /usr include", "-C /usr bin", "-C /usr/share doc man"};
    try {
        ::mkdir(work.c_str(), 0755);
        ::mkdir(layers.c_str(), 0755);
        std::vector<std::string> files;
        for (std::size_t i = 0; i < sources.size(); ++i) {
            auto f = fmt::format("{}/layer{}.tar.gz", layers, i + 1);
            struct stat st {};
            if (::stat(f.c_str(), &st) != 0) {
                std::fprintf(stderr, "preparing %s\n", f.c_str());
                sh(fmt::format("tar -cf - {} 2>/dev/null | gzip > '{}.tmp' && mv '{}.tmp' '{}'", sources[i], f, f, f));
            }
            files.push_back(f);
        }
        // The OCI layout umoci reads: the same three blobs.
        std::string oci = work + "/oci";
        if (::access((oci + "/index.json").c_str(), F_OK) != 0) {
            sh("mkdir -p '" + oci + "/blobs/sha256'");
            std::string layer_desc, diff_ids;
            for (std::size_t i = 0; i < files.size(); ++i) {
                auto d = sha256_of(files[i], false);
                struct stat st {};
                ::stat(files[i].c_str(), &st);
                sh(fmt::format("ln -f '{}' '{}/blobs/sha256/{}'", files[i], oci, d));
                layer_desc += fmt::format("{}{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:{}\",\"size\":{}}}",
                                          i ? "," : "", d, st.st_size);
                diff_ids += fmt::format("{}\"sha256:{}\"", i ? "," : "", sha256_of(files[i], true));
            }
            auto put = [&](const std::string& text) {
                std::string tmp = oci + "/blob.tmp";
                FILE* f = std::fopen(tmp.c_str(), "w");
                std::fwrite(text.data(), 1, text.size(), f);
                std::fclose(f);
                auto d = sha256_of(tmp, false);
                sh(fmt::format("mv '{}' '{}/blobs/sha256/{}'", tmp, oci, d));
                return std::pair{d, text.size()};
            };
            auto [cd, cs] = put("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diff_ids + "]}}");
            auto [md, ms] = put(fmt::format("{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:{}\",\"size\":{}}},\"layers\":[{}]}}", cd, cs, layer_desc));
            FILE* idx = std::fopen((oci + "/index.json").c_str(), "w");
            std::fprintf(idx, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}", md.c_str(), ms);
            std::fclose(idx);
            FILE* lay = std::fopen((oci + "/oci-layout").c_str(), "w");
            std::fprintf(lay, "{\"imageLayoutVersion\":\"1.0.0\"}");
            std::fclose(lay);
        }
        std::string layer_args;
        for (auto& f : files) layer_args += " '" + f + "'";
        std::string img = work + "/out.img", tree = work + "/tree", bundle = work + "/bundle";
        const std::string mke2fs = "mke2fs -q -F -t ext4 -d";
        // mke2fs needs a size: the extracted tree's size plus 25 %, in KiB.
        const std::string size_expr = "$(( $(du -sk '%s' | cut -f1) * 5 / 4 + 65536 ))k";
        auto size_of = [&](const std::string& dir) {
            return fmt::format(fmt::runtime(std::string(size_expr).replace(size_expr.find("%s"), 2, "{}")), dir);
        };
        std::vector<cz::bench::contender> cs = {
            cz::bench::command("cz ext4 create",
                               fmt::format("'{}' ext4 create '{}' --from-tar{}", CZ_EXE, img, layer_args)),
            cz::bench::command("tar -x + mke2fs -d",
                               fmt::format("rm -rf '{0}' && mkdir '{0}' && for l in{1}; do tar -xzf \"$l\" -C '{0}' || exit 1; done && {2} '{0}' '{3}' {4}",
                                           tree, layer_args, mke2fs, img, size_of(tree))),
            cz::bench::command("umoci unpack + mke2fs -d",
                               fmt::format("rm -rf '{0}' && umoci unpack --rootless --image '{1}:bench' '{0}' >/dev/null 2>&1 && {2} '{0}/rootfs' '{3}' {4}",
                                           bundle, oci, mke2fs, img, size_of(bundle + "/rootfs"))),
        };
        std::fprintf(stderr, "layers:");
        sh("du -ch " + layer_args + " | tail -1 >&2");
        auto results = cz::bench::compare(cs, runs, [] { sh("sync"); });
        sh(fmt::format("rm -rf '{}' '{}' '{}'", tree, bundle, img));
        cz::bench::print_table(fmt::format("{} layers -> ext4 image (median of {})", files.size(), runs), results);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_ext4_build: %s\n", e.what());
        return 1;
    }
    return 0;
}
