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

class layout_importer {
public:
    layout_importer(const content_store& cs, std::filesystem::path layout, import_report& report)
        : cs_(cs), layout_(std::move(layout)), report_(report) {}

    // Stores `d` and everything it reaches, children first.
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
        auto path = layout_ / "blobs" / "sha256" / d.digest.hex();
        // O_NOFOLLOW: a symlink planted in the source must not make us read outside it.
        unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (!fd) {
            int e = errno;
            if (e == ENOENT) {
                ec = errc::not_found;
                return where("missing from the layout");
            }
            if (e == ELOOP) {
                ec = errc::invalid_layout;
                return where("is a symbolic link");
            }
            ec = std::error_code(e, std::system_category());
            return where("cannot open " + path.string());
        }
        bool is_manifest = media_type::is_manifest(d.media_type);
        bool is_index = media_type::is_index(d.media_type);
        std::string why;
        if (is_manifest || is_index) {
            auto bytes = read_verified(fd.get(), path, d, max_document_size, ec, &why);
            if (ec) return where(why);
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
        } else {
            struct ::stat st;
            if (sys::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
                ec = errc::invalid_layout;
                return where("not a regular file");
            }
            fd_source src(fd.get());
            cs_.ingest(src, d, ec, &why);
            if (ec) return where(why);
        }
        done_.insert(d.digest);
        ++report_.blobs;
        report_.bytes += std::uint64_t(d.size);
        return true;
    }

private:
    const content_store& cs_;
    std::filesystem::path layout_;
    import_report& report_;
    std::set<digest> done_;
};

} // namespace detail

CZ_DECL import_report import_layout(const image_store& images, const std::filesystem::path& layout,
                                    std::error_code& ec, std::string* detail) {
    ec.clear();
    import_report report;
    std::string bytes;
    auto version_path = layout / "oci-layout";
    if (!detail::read_small_file(version_path, 4096, bytes, ec, detail)) return report;
    auto version = nlohmann::json::parse(bytes, nullptr, false);
    auto it = version.is_object() ? version.find("imageLayoutVersion") : version.end();
    if (it == version.end() || !it->is_string() ||
        !it->get_ref<const std::string&>().starts_with("1.")) {
        detail::set_error(ec, detail, errc::invalid_layout,
                          fmt::format("{}: imageLayoutVersion is not 1.x", version_path.string()));
        return report;
    }
    auto index_path = layout / "index.json";
    if (!detail::read_small_file(index_path, max_document_size, bytes, ec, detail)) return report;
    std::string why;
    auto ix = parse_index(std::move(bytes), ec, &why);
    if (ec) {
        if (detail) *detail = fmt::format("{}: {}", index_path.string(), why);
        return report;
    }
    detail::layout_importer importer(images.content(), layout, report);
    auto key = std::string(annotation_ref_name);
    for (std::size_t i = 0; i < ix.manifests.size(); ++i) {
        const auto& entry = ix.manifests[i];
        auto name_it = entry.annotations.find(key);
        auto via = fmt::format("index.json manifests[{}]{}", i,
                               name_it == entry.annotations.end()
                                   ? std::string()
                                   : " (" + detail::quote_input(name_it->second) + ")");
        if (!importer.copy(entry, via, 0, ec, detail)) return report;
        if (name_it == entry.annotations.end()) {
            ++report.untagged;
            continue;
        }
        images.tag(name_it->second, entry, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: {}", via, why);
            return report;
        }
        report.tagged.push_back({name_it->second, entry});
    }
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

} // namespace cz::oci
