// Out-of-line definitions for cz/oci/import.hpp.
#pragma once

#include <cz/oci/detail/report.hpp>
#include <cz/oci/import.hpp>
// The file helpers (read_small_file, read_verified) live with the store's definitions; with
// CZ_SEPARATE_COMPILATION this is where they first appear (#pragma once keeps them single).
#include <cz/oci/impl/store.ipp>

#include <fmt/format.h>

#include <fcntl.h>
#include <set>

namespace cz::oci {
namespace detail {

// Where an import takes blobs from (a layout directory, an archive being read). The tree walk
// below asks it for two things: the verified bytes of a document (manifest or index), and to
// store a leaf (config, layer) in the content store, checked against its descriptor. Each
// returns false with `ec` set and `why` saying what is wrong with that blob.
class blob_provider {
public:
    virtual bool document(const descriptor& d, std::string& bytes, std::error_code& ec,
                          std::string& why) = 0;
    virtual bool leaf(const descriptor& d, std::error_code& ec, std::string& why) = 0;

protected:
    ~blob_provider() = default;
};

// Stores a descriptor and everything it reaches, children before parents, so a manifest in the
// store always has its config and layers. Indexes nest at most 8 deep (a cycle of indexes ends
// there too).
class tree_importer {
public:
    tree_importer(const content_store& cs, blob_provider& provider, import_report& report)
        : cs_(cs), provider_(provider), report_(report) {}

    bool copy(const descriptor& d, const std::string& via, int depth, std::error_code& ec,
              std::string* detail) {
        if (done_.count(d.digest)) return true;
        auto where = [&](std::string why) {
            if (detail) *detail = fmt::format("{} {}: {}", via, d.digest.str(), why);
            return false;
        };
        if (depth > 8) {
            ec = errc::index_too_deep;
            return where("indexes nested more than 8 deep");
        }
        bool is_manifest = media_type::is_manifest(d.media_type);
        bool is_index = media_type::is_index(d.media_type);
        std::string why;
        if (is_manifest || is_index) {
            std::string bytes;
            if (!provider_.document(d, bytes, ec, why)) return where(why);
            if (is_manifest) {
                auto m = parse_manifest(bytes, ec, &why);
                if (ec) return where("manifest: " + why);
                if (!copy(m.config, via + " -> config", depth, ec, detail)) return false;
                for (std::size_t i = 0; i < m.layers.size(); ++i)
                    if (!copy(m.layers[i], fmt::format("{} -> layers[{}]", via, i), depth, ec,
                              detail))
                        return false;
            } else {
                auto ix = parse_index(bytes, ec, &why);
                if (ec) return where("index: " + why);
                for (std::size_t i = 0; i < ix.manifests.size(); ++i)
                    if (!copy(ix.manifests[i], fmt::format("{} -> manifests[{}]", via, i),
                              depth + 1, ec, detail))
                        return false;
            }
            cs_.put(d.media_type, bytes, ec, &why);
            if (ec) return where(why);
        } else if (!provider_.leaf(d, ec, why)) {
            return where(why);
        }
        done_.insert(d.digest);
        ++report_.blobs;
        report_.bytes += std::uint64_t(d.size);
        return true;
    }

private:
    const content_store& cs_;
    blob_provider& provider_;
    import_report& report_;
    std::set<digest> done_;
};

// The name an entry of an index.json is tagged with: containerd's io.containerd.image.name
// (docker 25+ writes the full name there and only the tag in ref.name), else the
// org.opencontainers.image.ref.name annotation; empty for neither.
inline std::string entry_name(const descriptor& entry) {
    for (auto key : {annotation_containerd_image_name, annotation_ref_name})
        if (auto it = entry.annotations.find(std::string(key)); it != entry.annotations.end())
            return it->second;
    return {};
}

// Imports every entry of an index.json (`source` names it in messages) through `provider`, and
// tags each named entry once everything it reaches is stored.
inline bool import_entries(const image_store& images, const image_index& ix,
                           std::string_view source, blob_provider& provider, import_report& report,
                           std::error_code& ec, std::string* detail) {
    tree_importer importer(images.content(), provider, report);
    for (std::size_t i = 0; i < ix.manifests.size(); ++i) {
        const auto& entry = ix.manifests[i];
        auto name = entry_name(entry);
        auto via = fmt::format("{} manifests[{}]{}", source, i,
                               name.empty() ? std::string() : " (" + quote_input(name) + ")");
        if (!importer.copy(entry, via, 0, ec, detail)) return false;
        if (name.empty()) {
            ++report.untagged;
            continue;
        }
        std::string why;
        images.tag(name, entry, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: {}", via, why);
            return false;
        }
        report.tagged.push_back({name, entry});
    }
    return true;
}

// Checks an oci-layout file's bytes: {"imageLayoutVersion": "1.x"}.
inline bool check_layout_version(std::string_view bytes, std::string_view source,
                                 std::error_code& ec, std::string* detail) {
    auto version = nlohmann::json::parse(bytes, nullptr, false);
    auto it = version.is_object() ? version.find("imageLayoutVersion") : version.end();
    if (it == version.end() || !it->is_string() ||
        !it->get_ref<const std::string&>().starts_with("1."))
        return set_error(ec, detail, errc::invalid_layout,
                         fmt::format("{}: imageLayoutVersion is not 1.x", source));
    return true;
}

// Blobs of a layout directory (blobs/sha256/<hex>), or of skopeo's dir: format (<hex>, and
// <hex>.manifest.json for the manifests of an index): found by digest only, opened without
// following symlinks.
class layout_provider final : public blob_provider {
public:
    enum class format { oci_layout, skopeo_dir };

    layout_provider(const content_store& cs, std::filesystem::path layout,
                    format f = format::oci_layout)
        : cs_(cs), layout_(std::move(layout)), format_(f) {}

    bool document(const descriptor& d, std::string& bytes, std::error_code& ec,
                  std::string& why) override {
        std::filesystem::path path;
        unique_fd fd;
        if (format_ == format::skopeo_dir) {
            fd = open_path(layout_ / (d.digest.hex() + ".manifest.json"), path, ec, why);
            if (!fd && ec == errc::not_found) fd = open(d, path, ec, why);
        } else {
            fd = open(d, path, ec, why);
        }
        if (!fd) return false;
        bytes = read_verified(fd.get(), path, d, max_document_size, ec, &why);
        return !ec;
    }

    bool leaf(const descriptor& d, std::error_code& ec, std::string& why) override {
        std::filesystem::path path;
        auto fd = open(d, path, ec, why);
        if (!fd) return false;
        struct ::stat st;
        if (sys::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            ec = errc::invalid_layout;
            why = "not a regular file";
            return false;
        }
        fd_source src(fd.get());
        cs_.ingest(src, d, ec, &why);
        return !ec;
    }

private:
    unique_fd open(const descriptor& d, std::filesystem::path& path, std::error_code& ec,
                   std::string& why) {
        return open_path(format_ == format::skopeo_dir
                             ? layout_ / d.digest.hex()
                             : layout_ / "blobs" / "sha256" / d.digest.hex(),
                         path, ec, why);
    }

    unique_fd open_path(std::filesystem::path candidate, std::filesystem::path& path,
                        std::error_code& ec, std::string& why) {
        path = std::move(candidate);
        ec.clear();
        // O_NOFOLLOW: a symlink planted in the source must not make us read outside it.
        unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (fd) return fd;
        int e = errno;
        if (e == ENOENT) {
            ec = errc::not_found;
            why = "missing from the layout";
        } else if (e == ELOOP) {
            ec = errc::invalid_layout;
            why = "is a symbolic link";
        } else {
            ec = std::error_code(e, std::system_category());
            why = "cannot open " + path.string();
        }
        return fd;
    }

    const content_store& cs_;
    std::filesystem::path layout_;
    format format_;
};

} // namespace detail

CZ_DECL import_report import_layout(const image_store& images, const std::filesystem::path& layout,
                                    std::error_code& ec, std::string* detail) {
    ec.clear();
    import_report report;
    std::string bytes;
    auto version_path = layout / "oci-layout";
    if (!detail::read_small_file(version_path, 4096, bytes, ec, detail) ||
        !detail::check_layout_version(bytes, version_path.string(), ec, detail))
        return report;
    auto index_path = layout / "index.json";
    if (!detail::read_small_file(index_path, max_document_size, bytes, ec, detail)) return report;
    std::string why;
    auto ix = parse_index(std::move(bytes), ec, &why);
    if (ec) {
        if (detail) *detail = fmt::format("{}: {}", index_path.string(), why);
        return report;
    }
    detail::layout_provider provider(images.content(), layout);
    detail::import_entries(images, ix, "index.json", provider, report, ec, detail);
    return report;
}

CZ_DECL import_report import_layout(const image_store& images,
                                    const std::filesystem::path& layout) {
    std::error_code ec;
    std::string why;
    auto report = import_layout(images, layout, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("import {}: {}", layout.string(), why));
    return report;
}

CZ_DECL import_report import_dir(const image_store& images, const std::filesystem::path& dir,
                                 std::string_view name, std::error_code& ec, std::string* detail) {
    ec.clear();
    import_report report;
    std::string bytes;
    auto version_path = dir / "version";
    if (!detail::read_small_file(version_path, 4096, bytes, ec, detail)) return report;
    if (!bytes.starts_with("Directory Transport Version: 1.")) {
        detail::set_error(
            ec, detail, errc::invalid_layout,
            fmt::format("{}: not \"Directory Transport Version: 1.x\"", version_path.string()));
        return report;
    }
    auto manifest_path = dir / "manifest.json";
    if (!detail::read_small_file(manifest_path, max_document_size, bytes, ec, detail))
        return report;
    // The top document is named by what it hashes to; its kind is what it says it is.
    descriptor top;
    top.media_type = std::string(detect_media_type(bytes));
    if (!media_type::is_manifest(top.media_type) && !media_type::is_index(top.media_type)) {
        detail::set_error(
            ec, detail, errc::unsupported_media_type,
            fmt::format("{}: neither a manifest nor an index", manifest_path.string()));
        return report;
    }
    sha256_hasher h;
    h.update(as_bytes(bytes));
    top.digest = h.final();
    top.size = static_cast<std::int64_t>(bytes.size());
    // The walk asks for each document by digest; manifest.json, the top one, is known only by
    // what it hashes to, so a small wrapper answers for it and the files answer for the rest.
    detail::layout_provider provider(images.content(), dir,
                                     detail::layout_provider::format::skopeo_dir);
    struct top_first final : detail::blob_provider {
        detail::layout_provider& inner;
        const descriptor& top;
        const std::string& top_bytes;
        top_first(detail::layout_provider& i, const descriptor& t, const std::string& b)
            : inner(i), top(t), top_bytes(b) {}
        bool document(const descriptor& d, std::string& out, std::error_code& e,
                      std::string& why) override {
            if (d.digest == top.digest) {
                out = top_bytes;
                e.clear();
                return true;
            }
            return inner.document(d, out, e, why);
        }
        bool leaf(const descriptor& d, std::error_code& e, std::string& why) override {
            return inner.leaf(d, e, why);
        }
    } walk(provider, top, bytes);
    detail::tree_importer importer(images.content(), walk, report);
    if (!importer.copy(top, "manifest.json", 0, ec, detail)) return report;
    if (name.empty()) {
        ++report.untagged;
        return report;
    }
    std::string why;
    images.tag(name, top, ec, &why);
    if (ec) {
        if (detail) *detail = why;
        return report;
    }
    report.tagged.push_back({std::string(name), top});
    return report;
}

CZ_DECL import_report import_dir(const image_store& images, const std::filesystem::path& dir,
                                 std::string_view name) {
    std::error_code ec;
    std::string why;
    auto report = import_dir(images, dir, name, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("import {}: {}", dir.string(), why));
    return report;
}

} // namespace cz::oci
