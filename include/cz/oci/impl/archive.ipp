// Out-of-line definitions for cz/oci/archive.hpp.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/core/syscall.hpp>
#include <cz/oci/archive.hpp>
#include <cz/oci/detail/report.hpp>
#include <cz/oci/reference.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>
// The import walk (tree_importer, blob_provider) and the document parsers' field readers; with
// CZ_SEPARATE_COMPILATION this is where they first appear (#pragma once keeps them single).
#include <cz/oci/impl/import.ipp>
#include <cz/oci/impl/types.ipp>

#include <fmt/format.h>

#include <ctime>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace cz::oci {
namespace detail {

// JSON-looking blobs of at most max_document_size are held in memory until index.json says what
// they are; this caps them all together.
inline constexpr std::size_t archive_max_held_bytes = 64 << 20;
// Members of one archive (each costs its name and a few words until the load ends).
inline constexpr std::size_t archive_max_members = 1 << 16;

// One member of an archive, as the load remembers it.
struct archive_member {
    enum class kind {
        held,   // its bytes are in `bytes`
        stored, // committed to the content store as `stored` (its sha256, checked)
        link,   // a symbolic or hard link to `target`
    };
    kind what = kind::held;
    std::string bytes;
    descriptor stored;
    std::string target;
    std::uint64_t size = 0;
    std::uint64_t offset = 0; // of its header in the archive
};

// Joins path components, refusing ".." that climbs above the start. `base` is already clean.
inline bool join_archive_path(std::string base, std::string_view rel, std::string& out) {
    std::vector<std::string> parts;
    auto split = [&](std::string_view s, bool allow_up) {
        while (!s.empty()) {
            auto slash = s.find('/');
            auto part = s.substr(0, slash);
            s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
            if (part.empty() || part == ".") continue;
            if (part == "..") {
                if (!allow_up || parts.empty()) return false;
                parts.pop_back();
                continue;
            }
            parts.emplace_back(part);
        }
        return true;
    };
    split(base, false);
    if (!split(rel, true)) return false;
    out.clear();
    for (const auto& p : parts)
        out += (out.empty() ? "" : "/") + p;
    return true;
}

// A member's name as a clean path inside the archive: no leading '/', no "..", no "." or empty
// components. Fails with *why saying which rule the name breaks.
inline bool archive_member_path(std::string_view name, std::string& out, std::string& why) {
    if (name.starts_with('/')) {
        why = "is an absolute path";
        return false;
    }
    for (std::string_view s = name; !s.empty();) {
        auto slash = s.find('/');
        if (s.substr(0, slash) == "..") {
            why = "has a \"..\" component";
            return false;
        }
        s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
    }
    join_archive_path({}, name, out);
    return true;
}

inline bool looks_like_json(std::string_view bytes) {
    auto i = bytes.find_first_not_of(" \t\r\n");
    return i != std::string_view::npos && bytes[i] == '{';
}

inline bool is_sha256_hex(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Reads `first`, then `second`.
class chain_source {
public:
    chain_source(source_ref first, source_ref second) noexcept : first_(first), second_(second) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        if (!first_done_) {
            auto n = first_.read_some(buf, ec);
            if (n || ec) return n;
            first_done_ = true;
        }
        return second_.read_some(buf, ec);
    }

private:
    source_ref first_;
    source_ref second_;
    bool first_done_ = false;
};

// The Docker schema2 manifest skopeo's docker-archive source generates for an image of a
// docker-save tar: Go's encoding/json output of its struct (fields in declaration order, no
// spaces), so the bytes and the digest are skopeo's.
inline std::string skopeo_schema2_manifest(const descriptor& config,
                                           const std::vector<descriptor>& layers) {
    auto item = [](const descriptor& d) {
        return fmt::format(R"({{"mediaType":"{}","size":{},"digest":"{}"}})", d.media_type, d.size,
                           d.digest.str());
    };
    std::string out = fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[)",
                                  media_type::docker_manifest, item(config));
    for (std::size_t i = 0; i < layers.size(); ++i)
        out += (i ? "," : "") + item(layers[i]);
    return out + "]}";
}

// Reads an archive's members: small JSON blobs and the small files of a docker-save archive are
// held, other files are stored as they stream by (blobs/sha256/<hex> checked against their
// name), links are remembered. Then builds the images from index.json or manifest.json.
class archive_loader final : public blob_provider {
public:
    archive_loader(const content_store& cs, std::string source)
        : cs_(cs), source_(std::move(source)) {}

    bool read(tar::reader& r, std::error_code& ec, std::string* detail) {
        while (true) {
            const tar::entry* e = r.next(ec);
            if (!e) {
                if (ec && detail)
                    *detail = fmt::format("{}: {}", source_, to_string(r.error_detail()));
                return !ec;
            }
            if (!read_member(r, *e, ec, detail)) return false;
        }
    }

    // OCI archive (or docker 25+'s save, which holds one): index.json's entries.
    bool load_oci(const image_store& images, load_report& report, std::error_code& ec,
                  std::string* detail) {
        report.format =
            members_.count("manifest.json") ? archive_format::docker : archive_format::oci;
        auto layout = members_.find("oci-layout");
        if (layout == members_.end())
            return set_error(ec, detail, errc::invalid_archive,
                             fmt::format("{}: index.json without oci-layout", source_));
        std::string bytes;
        if (!small_file(layout->second, "oci-layout", 4096, bytes, ec, detail) ||
            !check_layout_version(bytes, source_ + ": oci-layout", ec, detail) ||
            !small_file(members_.at("index.json"), "index.json", max_document_size, bytes, ec,
                        detail))
            return false;
        std::string why;
        auto ix = parse_index(std::move(bytes), ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: index.json: {}", source_, why);
            return false;
        }
        return import_entries(images, ix, source_ + ": index.json", *this, report, ec, detail);
    }

    // docker save without an OCI layout: each manifest.json image becomes a Docker schema2
    // manifest, the one skopeo's docker-archive transport generates for it.
    bool load_docker(const image_store& images, load_report& report, std::error_code& ec,
                     std::string* detail) {
        report.format = archive_format::docker;
        std::string bytes, why;
        if (!small_file(members_.at("manifest.json"), "manifest.json", max_document_size, bytes, ec,
                        detail))
            return false;
        auto items = parse_docker_manifest(bytes, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: manifest.json: {}", source_, why);
            return false;
        }
        for (std::size_t i = 0; i < items.size(); ++i)
            if (!load_docker_image(images, items[i],
                                   fmt::format("{}: manifest.json [{}]", source_, i), report, ec,
                                   detail))
                return false;
        return true;
    }

    // blob_provider: blobs/sha256/<hex> of the archive.
    bool document(const descriptor& d, std::string& bytes, std::error_code& ec,
                  std::string& why) override {
        auto* m = blob(d, ec, why);
        if (!m) return false;
        if (m->what == archive_member::kind::stored) {
            // Not JSON, or larger than a document may be: read() says which.
            bytes = cs_.read(d, max_document_size, ec, &why);
            return !ec;
        }
        bytes = m->bytes;
        return true;
    }

    bool leaf(const descriptor& d, std::error_code& ec, std::string& why) override {
        auto* m = blob(d, ec, why);
        if (!m) return false;
        if (m->what == archive_member::kind::held) cs_.put(d.media_type, m->bytes, ec, &why);
        return !ec;
    }

    const std::map<std::string, archive_member>& members() const noexcept { return members_; }

private:
    bool fail(std::error_code& ec, std::string* detail, errc e, const tar::entry& entry,
              std::string_view why) {
        return set_error(ec, detail, e,
                         fmt::format("{}: member {} at offset {}: {}", source_,
                                     quote_input(entry.name), entry.offset, why));
    }

    bool read_member(tar::reader& r, const tar::entry& e, std::error_code& ec,
                     std::string* detail) {
        std::string path, why;
        if (!archive_member_path(e.name, path, why))
            return fail(ec, detail, errc::invalid_archive, e, why);
        if (e.type == tar::entry_type::directory) {
            if (!path.empty() && (members_.count(path) || !dirs_.insert(path).second))
                return fail(ec, detail, errc::invalid_archive, e, "appears twice in the archive");
            return true;
        }
        if (path.empty())
            return fail(ec, detail, errc::invalid_archive, e, "names the archive's root");
        if (members_.count(path) || dirs_.count(path))
            return fail(ec, detail, errc::invalid_archive, e, "appears twice in the archive");
        if (members_.size() == archive_max_members)
            return fail(ec, detail, errc::invalid_archive, e,
                        fmt::format("more than {} members", archive_max_members));
        bool in_blobs = path.starts_with("blobs/");
        archive_member m;
        m.offset = e.offset;
        m.size = e.size;
        if (e.type == tar::entry_type::symlink || e.type == tar::entry_type::hard_link) {
            if (in_blobs)
                return fail(ec, detail, errc::invalid_archive, e,
                            "is a link; blobs must be regular files");
            // A symlink's target is relative to its directory, a hard link's to the root.
            auto dir = e.type == tar::entry_type::symlink && path.find('/') != std::string::npos
                           ? path.substr(0, path.rfind('/'))
                           : std::string();
            if (e.linkname.starts_with('/') || !join_archive_path(dir, e.linkname, m.target))
                return fail(
                    ec, detail, errc::invalid_archive, e,
                    fmt::format("links to {}, outside the archive", quote_input(e.linkname)));
            m.what = archive_member::kind::link;
            members_.emplace(std::move(path), std::move(m));
            return true;
        }
        if (!e.is_file())
            return fail(ec, detail, errc::invalid_archive, e,
                        fmt::format("is a {}; image archives hold files, directories and links",
                                    tar::to_string(e.type)));
        if (in_blobs) {
            if (!path.starts_with("blobs/sha256/"))
                return fail(ec, detail, errc::unsupported_digest_algorithm, e,
                            "is not under blobs/sha256/ (cz reads sha256 blobs only)");
            auto hex = std::string_view(path).substr(13);
            if (!is_sha256_hex(hex))
                return fail(ec, detail, errc::invalid_archive, e,
                            "is not named by 64 lowercase hex digits");
            descriptor expected;
            expected.digest = parse_digest("sha256:" + std::string(hex), ec);
            expected.size = std::int64_t(e.size);
            if (!take(r, e, expected, true, m, ec, detail)) return false;
        } else {
            descriptor unknown;
            unknown.size = std::int64_t(e.size);
            if (!take(r, e, unknown, false, m, ec, detail)) return false;
        }
        members_.emplace(std::move(path), std::move(m));
        return true;
    }

    // Holds a small member, or stores it. A blob (`is_blob`: its digest is known) is held only
    // when it looks like JSON (it may be a manifest, which must wait for its children); any other
    // member of a docker-save archive is held while there is room, since it is a leaf.
    bool take(tar::reader& r, const tar::entry& e, const descriptor& expected, bool is_blob,
              archive_member& m, std::error_code& ec, std::string* detail) {
        if (e.size <= max_document_size) {
            m.bytes.resize(std::size_t(e.size));
            auto n = read_full(
                r, mutable_bytes(reinterpret_cast<std::byte*>(m.bytes.data()), m.bytes.size()), ec);
            if (ec || n != m.bytes.size()) {
                if (!ec) ec = tar::errc::truncated;
                if (detail) *detail = fmt::format("{}: {}", source_, to_string(r.error_detail()));
                return false;
            }
            bool fits = held_bytes_ + m.bytes.size() <= archive_max_held_bytes;
            if (is_blob && looks_like_json(m.bytes) && !fits)
                return fail(ec, detail, errc::document_too_large, e,
                            fmt::format("more than {} bytes of JSON documents in the archive",
                                        archive_max_held_bytes));
            if ((is_blob && looks_like_json(m.bytes)) || (!is_blob && fits)) {
                held_bytes_ += m.bytes.size();
                m.what = archive_member::kind::held;
                return true;
            }
            memory_source src(as_bytes(m.bytes));
            if (!store(src, e, expected, m, ec, detail)) return false;
            m.bytes = std::string();
            return true;
        }
        return store(r, e, expected, m, ec, detail);
    }

    bool store(source_ref src, const tar::entry& e, const descriptor& expected, archive_member& m,
               std::error_code& ec, std::string* detail) {
        std::string why;
        m.stored = cs_.ingest(src, expected, ec, &why);
        if (ec) {
            if (detail)
                *detail =
                    fmt::format("{}: member {} at offset {}: {}", source_, quote_input(e.name),
                                e.offset, why.empty() ? ec.message() : why);
            return false;
        }
        m.what = archive_member::kind::stored;
        return true;
    }

    // The whole of a top-level file (oci-layout, index.json, manifest.json).
    bool small_file(const archive_member& m, std::string_view name, std::size_t max,
                    std::string& out, std::error_code& ec, std::string* detail) {
        if (m.what == archive_member::kind::link)
            return set_error(ec, detail, errc::invalid_archive,
                             fmt::format("{}: {} is a link", source_, name));
        if (m.size > max)
            return set_error(ec, detail, errc::document_too_large,
                             fmt::format("{}: {}: {} bytes, more than the {} allowed", source_,
                                         name, m.size, max));
        if (m.what == archive_member::kind::held) {
            out = m.bytes;
            return true;
        }
        std::string why;
        out = cs_.read(m.stored, max, ec, &why);
        if (ec && detail) *detail = fmt::format("{}: {}: {}", source_, name, why);
        return !ec;
    }

    archive_member* blob(const descriptor& d, std::error_code& ec, std::string& why) {
        auto it = members_.find("blobs/sha256/" + d.digest.hex());
        if (it == members_.end()) {
            ec = errc::not_found;
            why = "missing from the archive";
            return nullptr;
        }
        auto& m = it->second;
        if (m.size != std::uint64_t(d.size)) {
            ec = errc::size_mismatch;
            why = fmt::format("{} bytes in the archive, the descriptor says {}", m.size, d.size);
            return nullptr;
        }
        if (m.what == archive_member::kind::held && !verified_.count(d.digest)) {
            auto got = sha256(as_bytes(m.bytes));
            if (!(got == d.digest)) {
                ec = errc::digest_mismatch;
                why = fmt::format("the content hashes to {}", got.str());
                return nullptr;
            }
            verified_.insert(d.digest);
        }
        return &m;
    }

    bool load_docker_image(const image_store& images, const docker_archive_image& item,
                           const std::string& via, load_report& report, std::error_code& ec,
                           std::string* detail) {
        std::string why, bytes;
        const auto* cm = resolve(item.config, via + ".Config", ec, detail);
        if (!cm || !small_file(*cm, via + ".Config", max_document_size, bytes, ec, detail))
            return false;
        auto config = parse_image_config(bytes, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}.Config: {}", via, why);
            return false;
        }
        if (config.diff_ids.size() != item.layers.size())
            return set_error(ec, detail, errc::invalid_archive,
                             fmt::format("{}: {} layers, but the config's rootfs.diff_ids has {}",
                                         via, item.layers.size(), config.diff_ids.size()));
        auto config_desc = cs_.put(media_type::docker_config, bytes, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}.Config: {}", via, why);
            return false;
        }
        std::vector<descriptor> layers;
        for (std::size_t j = 0; j < item.layers.size(); ++j) {
            const auto& diff_id = config.diff_ids[j];
            auto same = std::find_if(layers.begin(), layers.end(),
                                     [&](const descriptor& l) { return l.digest == diff_id; });
            if (same != layers.end()) {
                layers.push_back(*same); // one layer twice in an image (docker links the copy)
                continue;
            }
            auto where = fmt::format("{}.Layers[{}]", via, j);
            const auto* lm = resolve(item.layers[j], where, ec, detail);
            if (!lm) return false;
            descriptor layer;
            if (!store_layer(*lm, diff_id, where + " " + quote_input(item.layers[j]), layer, ec,
                             detail))
                return false;
            layers.push_back(layer);
            ++report.blobs;
            report.bytes += std::uint64_t(layer.size);
        }
        auto manifest_bytes = skopeo_schema2_manifest(config_desc, layers);
        auto top = cs_.put(media_type::docker_manifest, manifest_bytes, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: {}", via, why);
            return false;
        }
        report.blobs += 2;
        report.bytes += std::uint64_t(config_desc.size + top.size);
        for (std::size_t k = 0; k < item.repo_tags.size(); ++k) {
            auto ref = parse_reference(item.repo_tags[k], ec, &why);
            if (ec) {
                if (detail)
                    *detail = fmt::format("{}.RepoTags[{}]: {}: {}", via, k,
                                          quote_input(item.repo_tags[k]), why);
                return false;
            }
            images.tag(ref.str(), top, ec, &why);
            if (ec) {
                if (detail) *detail = fmt::format("{}.RepoTags[{}]: {}", via, k, why);
                return false;
            }
            report.tagged.push_back({ref.str(), top});
        }
        if (item.repo_tags.empty()) ++report.untagged;
        return true;
    }

    // The member a manifest.json path names, through one symlink (docker and skopeo link a layer
    // that two images share), as skopeo's docker-archive reader follows it.
    const archive_member* resolve(const std::string& name, const std::string& via,
                                  std::error_code& ec, std::string* detail) {
        std::string path, why;
        if (!archive_member_path(name, path, why) || path.empty())
            return set_error(ec, detail, errc::invalid_archive,
                             fmt::format("{}: {} {}: it names a file outside the archive", via,
                                         quote_input(name), why.empty() ? "is empty" : why)),
                   nullptr;
        auto it = members_.find(path);
        if (it != members_.end() && it->second.what == archive_member::kind::link)
            it = members_.find(it->second.target);
        if (it == members_.end() || it->second.what == archive_member::kind::link)
            return set_error(
                       ec, detail, errc::invalid_archive,
                       fmt::format("{}: {} is not a file in the archive", via, quote_input(name))),
                   nullptr;
        return &it->second;
    }

    // Stores a layer tar so that its digest is `diff_id`: as it is when it is the uncompressed
    // tar, decompressed when it is gzip or zstd (skopeo serves such a layer decompressed, so
    // its generated manifest names it by the diff_id too).
    bool store_layer(const archive_member& m, const digest& diff_id, const std::string& where,
                     descriptor& out, std::error_code& ec, std::string* detail) {
        std::string why;
        out.media_type = std::string(media_type::docker_layer_gzip);
        out.digest = diff_id;
        bool held = m.what == archive_member::kind::held;
        auto as_stored = held ? sha256(as_bytes(m.bytes)) : m.stored.digest;
        if (as_stored == diff_id) {
            out.size = std::int64_t(m.size);
            if (held) cs_.put(out.media_type, m.bytes, ec, &why);
        } else {
            unique_fd fd;
            if (!held) {
                fd = cs_.open_blob(m.stored.digest, ec);
                if (ec)
                    return set_error(ec, detail, errc::not_found,
                                     where + ": vanished from the store");
            }
            memory_source mem(as_bytes(m.bytes));
            fd_source file(fd.get());
            source_ref raw = held ? source_ref(mem) : source_ref(file);
            decompressing_source plain(raw);
            std::byte head[1];
            // The format is known after the first read; an uncompressed layer whose digest is not
            // its diff_id is simply wrong.
            auto n = plain.read_some(head, ec);
            if (!ec && plain.format() == compression::none)
                return set_error(ec, detail, errc::digest_mismatch,
                                 fmt::format("{}: the layer hashes to {}, the config's "
                                             "rootfs.diff_ids says {}",
                                             where, as_stored.str(), diff_id.str()));
            if (ec) {
                if (detail) *detail = fmt::format("{}: decompressing: {}", where, ec.message());
                return false;
            }
            memory_source first(bytes_view(head, n));
            chain_source rest(first, plain);
            descriptor expected;
            expected.digest = diff_id;
            expected.size = -1;
            out.size = cs_.ingest(rest, expected, ec, &why).size;
        }
        if (ec) {
            if (detail) *detail = fmt::format("{}: {}", where, why.empty() ? ec.message() : why);
            return false;
        }
        return true;
    }

    const content_store& cs_;
    std::string source_;
    std::map<std::string, archive_member> members_;
    std::set<std::string> dirs_;
    std::set<digest> verified_;
    std::size_t held_bytes_ = 0;
};

// Writes an archive: members from memory, blobs from the store (checked against their digest
// as they are copied), layers decompressed.
class archive_saver {
public:
    archive_saver(const content_store& cs, sink_ref out)
        : cs_(cs), w_(out, {.deterministic = true}) {}

    bool file(const std::string& name, std::string_view bytes, std::error_code& ec,
              std::string* detail) {
        tar::entry e;
        e.name = name;
        e.mode = 0644;
        e.size = bytes.size();
        memory_source src(as_bytes(bytes));
        w_.add(e, src, ec);
        if (ec && detail) *detail = "writing " + name;
        return !ec;
    }

    bool directory(const std::string& name, std::error_code& ec, std::string* detail) {
        tar::entry e;
        e.name = name;
        e.type = tar::entry_type::directory;
        e.mode = 0755;
        w_.add(e, ec);
        if (ec && detail) *detail = "writing " + name;
        return !ec;
    }

    // The blob `d` as the member `name`.
    bool blob(const std::string& name, const digest& d, std::error_code& ec, std::string* detail) {
        std::uint64_t size = 0;
        auto fd = open(d, size, ec, detail);
        if (!fd) return false;
        tar::entry e;
        e.name = name;
        e.mode = 0644;
        e.size = size;
        fd_source file(fd.get());
        hashing_source hashed(file);
        w_.add(e, hashed, ec);
        if (ec) {
            if (detail) *detail = fmt::format("writing {} (blob {})", name, d.str());
            return false;
        }
        auto got = hashed.final();
        if (got == d) return true;
        return set_error(
            ec, detail, errc::digest_mismatch,
            fmt::format("blob {}: the content in the store hashes to {}", d.str(), got.str()));
    }

    // A layer blob as its uncompressed tar, which must hash to `diff_id`. The tar header needs
    // the size first: a compressed layer is decompressed twice, once to measure and check it.
    bool layer(const std::string& name, const descriptor& d, const digest& diff_id,
               std::error_code& ec, std::string* detail) {
        if (d.digest == diff_id) return blob(name, d.digest, ec, detail);
        std::uint64_t size = 0;
        auto fd = open(d.digest, size, ec, detail);
        if (!fd) return false;
        fd_source file(fd.get());
        decompressing_source plain(file);
        hashing_source hashed(plain);
        null_sink counter;
        auto n = copy(hashed, counter, ec);
        if (ec) {
            if (detail)
                *detail = fmt::format("layer {}: decompressing: {}", d.digest.str(), ec.message());
            return false;
        }
        auto got = hashed.final();
        if (!(got == diff_id))
            return set_error(ec, detail, errc::digest_mismatch,
                             fmt::format("layer {}: decompresses to {}, the config's diff_id is {}",
                                         d.digest.str(), got.str(), diff_id.str()));
        fd = open(d.digest, size, ec, detail);
        if (!fd) return false;
        fd_source again(fd.get());
        decompressing_source plain_again(again);
        tar::entry e;
        e.name = name;
        e.mode = 0644;
        e.size = n;
        w_.add(e, plain_again, ec);
        if (ec && detail) *detail = fmt::format("writing {} (layer {})", name, d.digest.str());
        return !ec;
    }

    bool finish(std::error_code& ec, std::string* detail) {
        w_.finish(ec);
        if (ec && detail) *detail = "finishing the archive";
        return !ec;
    }

private:
    unique_fd open(const digest& d, std::uint64_t& size, std::error_code& ec, std::string* detail) {
        auto fd = cs_.open_blob(d, ec);
        if (ec) {
            if (detail) *detail = fmt::format("blob {}: not in the store", d.str());
            return {};
        }
        struct ::stat st;
        if (sys::fstat(fd.get(), &st) != 0) {
            system_failure(ec, detail, "fstat of", cs_.blob_path(d));
            return {};
        }
        size = std::uint64_t(st.st_size);
        return fd;
    }

    const content_store& cs_;
    tar::writer w_;
};

// Everything `d` reaches, children before parents, each once.
inline bool collect_blobs(const content_store& cs, const descriptor& d, int depth,
                          std::vector<digest>& out, std::set<digest>& seen, std::error_code& ec,
                          std::string* detail) {
    if (seen.count(d.digest)) return true;
    if (depth > 8)
        return set_error(ec, detail, errc::index_too_deep,
                         fmt::format("index {}: indexes nested more than 8 deep", d.digest.str()));
    std::string why;
    if (media_type::is_manifest(d.media_type) || media_type::is_index(d.media_type)) {
        auto bytes = cs.read(d, max_document_size, ec, &why);
        if (ec) {
            if (detail) *detail = why;
            return false;
        }
        if (media_type::is_manifest(d.media_type)) {
            auto m = parse_manifest(std::move(bytes), ec, &why);
            if (ec) {
                if (detail) *detail = fmt::format("manifest {}: {}", d.digest.str(), why);
                return false;
            }
            for (const auto& leaf : m.layers)
                if (seen.insert(leaf.digest).second) out.push_back(leaf.digest);
            if (seen.insert(m.config.digest).second) out.push_back(m.config.digest);
        } else {
            auto ix = parse_index(std::move(bytes), ec, &why);
            if (ec) {
                if (detail) *detail = fmt::format("index {}: {}", d.digest.str(), why);
                return false;
            }
            for (const auto& child : ix.manifests)
                if (!collect_blobs(cs, child, depth + 1, out, seen, ec, detail)) return false;
        }
    }
    if (seen.insert(d.digest).second) out.push_back(d.digest);
    return true;
}

inline bool save_oci(const image_store& images, const std::vector<descriptor>& entries,
                     archive_saver& saver, std::error_code& ec, std::string* detail) {
    std::vector<digest> blobs;
    std::set<digest> seen;
    for (const auto& e : entries)
        if (!collect_blobs(images.content(), e, 0, blobs, seen, ec, detail)) return false;
    image_index ix;
    ix.media_type = std::string(media_type::oci_index);
    ix.manifests = entries;
    if (!saver.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})", ec, detail) ||
        !saver.file("index.json", serialize(ix), ec, detail) ||
        !saver.directory("blobs/", ec, detail) || !saver.directory("blobs/sha256/", ec, detail))
        return false;
    for (const auto& d : blobs)
        if (!saver.blob("blobs/sha256/" + d.hex(), d, ec, detail)) return false;
    return saver.finish(ec, detail);
}

inline bool save_docker(const image_store& images, const std::vector<descriptor>& entries,
                        const save_options& options, archive_saver& saver, std::error_code& ec,
                        std::string* detail) {
    const auto& cs = images.content();
    std::set<std::string> written;
    std::vector<std::pair<digest, nlohmann::json>> items; // by manifest digest, in order
    std::string why;
    for (const auto& entry : entries) {
        auto name = entry_name(entry);
        auto target = images.resolve(entry, options.docker_platform, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("{}: {}", quote_input(name), why);
            return false;
        }
        nlohmann::json tags = nlohmann::json::array();
        std::error_code parse_ec;
        auto ref = parse_reference(name, parse_ec);
        if (!parse_ec && !ref.tag.empty()) tags.push_back(ref.familiar());
        auto same = std::find_if(items.begin(), items.end(),
                                 [&](const auto& item) { return item.first == target.digest; });
        if (same != items.end()) {
            for (const auto& t : tags)
                same->second["RepoTags"].push_back(t);
            continue;
        }
        auto bytes = cs.read(target, max_document_size, ec, &why);
        auto m = ec ? manifest{} : parse_manifest(std::move(bytes), ec, &why);
        if (ec) {
            if (detail)
                *detail =
                    fmt::format("{}: manifest {}: {}", quote_input(name), target.digest.str(), why);
            return false;
        }
        auto config_bytes = cs.read(m.config, max_document_size, ec, &why);
        auto config = ec ? image_config{} : parse_image_config(config_bytes, ec, &why);
        if (ec) {
            if (detail)
                *detail =
                    fmt::format("{}: config {}: {}", quote_input(name), m.config.digest.str(), why);
            return false;
        }
        if (config.diff_ids.size() != m.layers.size())
            return set_error(ec, detail, errc::invalid_field,
                             fmt::format("{}: {} layers, but the config's rootfs.diff_ids has {}",
                                         quote_input(name), m.layers.size(),
                                         config.diff_ids.size()));
        auto config_file = m.config.digest.hex() + ".json";
        if (written.insert(config_file).second &&
            !saver.blob(config_file, m.config.digest, ec, detail))
            return false;
        nlohmann::json layer_files = nlohmann::json::array();
        for (std::size_t i = 0; i < m.layers.size(); ++i) {
            auto file = config.diff_ids[i].hex() + ".tar";
            if (written.insert(file).second &&
                !saver.layer(file, m.layers[i], config.diff_ids[i], ec, detail))
                return false;
            layer_files.push_back(file);
        }
        items.emplace_back(
            target.digest,
            nlohmann::json{{"Config", config_file}, {"RepoTags", tags}, {"Layers", layer_files}});
    }
    nlohmann::json manifest_json = nlohmann::json::array();
    for (auto& item : items)
        manifest_json.push_back(std::move(item.second));
    return saver.file("manifest.json", dump(manifest_json), ec, detail) && saver.finish(ec, detail);
}

// A byte_source that passes what it reads from `in` on to `out` and hashes it: the rootfs is read
// by the tar reader (to check it) while the same bytes go to the compressor.
class tee_source {
public:
    tee_source(source_ref in, sink_ref out) noexcept : in_(in), out_(out) {}
    std::size_t read_some(mutable_bytes buf, std::error_code& ec) {
        auto n = in_.read_some(buf, ec);
        if (ec || n == 0) return n;
        hasher_.update(buf.first(n));
        count_ += n;
        out_.write(buf.first(n), ec);
        if (ec) sink_failed_ = true;
        return ec ? 0 : n;
    }
    digest final() noexcept { return hasher_.final(); }
    std::uint64_t count() const noexcept { return count_; }
    bool sink_failed() const noexcept { return sink_failed_; }

private:
    source_ref in_;
    sink_ref out_;
    sha256_hasher hasher_;
    std::uint64_t count_ = 0;
    bool sink_failed_ = false;
};

// Now as RFC 3339 in UTC, to the second.
inline std::string utc_now() {
    auto t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace detail

CZ_DECL std::vector<docker_archive_image>
parse_docker_manifest(std::string_view bytes, std::error_code& ec, std::string* detail) {
    ec.clear();
    std::vector<docker_archive_image> out;
    if (bytes.size() > max_document_size) {
        detail::set_error(
            ec, detail, errc::document_too_large,
            fmt::format("{} bytes, more than the {} allowed", bytes.size(), max_document_size));
        return out;
    }
    if (!detail::depth_within(bytes, max_json_depth)) {
        detail::set_error(
            ec, detail, errc::invalid_json,
            fmt::format("arrays and objects nested more than {} deep", max_json_depth));
        return out;
    }
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::parse_error& e) {
        detail::set_error(ec, detail, errc::invalid_json,
                          fmt::format("JSON syntax error at byte {}", e.byte));
        return out;
    } catch (const nlohmann::json::exception& e) {
        detail::set_error(ec, detail, errc::invalid_json,
                          fmt::format("invalid JSON: {}", e.what()));
        return out;
    }
    if (!j.is_array()) {
        detail::set_error(ec, detail, errc::invalid_json,
                          fmt::format("expected a JSON array, found {}", j.type_name()));
        return out;
    }
    detail::fields f(ec, detail);
    out.resize(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
        auto path = detail::fields::at("", i);
        const auto& item = j[i];
        if (!item.is_object()) {
            f.fail(path, "must be an object");
            return {};
        }
        if (!f.string(item, path, "Config", out[i].config, true) ||
            !f.strings(item, path, "RepoTags", out[i].repo_tags))
            return {};
        const auto* layers = detail::fields::find(item, "Layers");
        if (!layers) {
            f.fail(detail::fields::join(path, "Layers"), "missing");
            return {};
        }
        if (!f.string_array(*layers, detail::fields::join(path, "Layers"), out[i].layers))
            return {};
    }
    return out;
}

CZ_DECL load_report load_archive(const image_store& images, source_ref archive,
                                 std::string_view source, std::error_code& ec,
                                 std::string* detail) {
    ec.clear();
    load_report report;
    decompressing_source plain(archive);
    tar::reader r(plain);
    detail::archive_loader loader(images.content(), std::string(source));
    if (!loader.read(r, ec, detail)) return report;
    const auto& members = loader.members();
    if (members.count("index.json")) {
        loader.load_oci(images, report, ec, detail);
        return report;
    }
    if (members.count("manifest.json")) {
        loader.load_docker(images, report, ec, detail);
        return report;
    }
    detail::set_error(ec, detail, errc::invalid_archive,
                      fmt::format("{}: neither index.json (an OCI archive) nor manifest.json (a "
                                  "docker save archive)",
                                  source));
    return report;
}

CZ_DECL load_report load_archive(const image_store& images, const std::filesystem::path& path,
                                 std::error_code& ec, std::string* detail) {
    ec.clear();
    unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        detail::system_failure(ec, detail, "opening", path);
        return {};
    }
    fd_source src(fd.get());
    return load_archive(images, src, path.string(), ec, detail);
}

CZ_DECL load_report load_archive(const image_store& images, const std::filesystem::path& path) {
    std::error_code ec;
    std::string why;
    auto report = load_archive(images, path, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("load {}: {}", path.string(), why));
    return report;
}

CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          sink_ref out, archive_format format, const save_options& options,
                          std::error_code& ec, std::string* detail) {
    ec.clear();
    std::vector<descriptor> entries;
    std::set<std::string> names;
    for (const auto& ref : refs) {
        std::string why;
        auto d = images.lookup(ref, ec, &why);
        if (ec) {
            if (detail) *detail = why;
            return;
        }
        if (names.insert(detail::entry_name(d)).second) entries.push_back(std::move(d));
    }
    detail::archive_saver saver(images.content(), out);
    if (format == archive_format::oci)
        detail::save_oci(images, entries, saver, ec, detail);
    else
        detail::save_docker(images, entries, options, saver, ec, detail);
}

CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          const std::filesystem::path& path, archive_format format,
                          const save_options& options, std::error_code& ec, std::string* detail) {
    ec.clear();
    auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    auto tmp = dir / fmt::format(".{}.tmp-{}", path.filename().string(), detail::unique_suffix());
    unique_fd fd(sys::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        detail::system_failure(ec, detail, "creating", tmp);
        return;
    }
    fd_sink sink(fd.get());
    save_archive(images, refs, sink, format, options, ec, detail);
    if (!ec && ::fsync(fd.get()) != 0) detail::system_failure(ec, detail, "fsync of", tmp);
    if (!ec && ::rename(tmp.c_str(), path.c_str()) != 0)
        detail::system_failure(ec, detail, "renaming into place", path);
    if (ec) ::unlink(tmp.c_str());
}

CZ_DECL void save_archive(const image_store& images, const std::vector<std::string>& refs,
                          const std::filesystem::path& path, archive_format format,
                          const save_options& options) {
    std::error_code ec;
    std::string why;
    save_archive(images, refs, path, format, options, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("save {}: {}", path.string(), why));
}

CZ_DECL descriptor import_rootfs(const image_store& images, source_ref rootfs,
                                 std::string_view name, const rootfs_options& options,
                                 std::error_code& ec, std::string* detail) {
    ec.clear();
    std::string why;
    auto ref = parse_reference(name, ec, &why);
    if (ec) {
        if (detail) *detail = fmt::format("{}: {}", detail::quote_input(name), why);
        return {};
    }
    const auto& cs = images.content();
    descriptor unknown;
    unknown.media_type = std::string(media_type::oci_layer_gzip);
    unknown.size = -1;
    auto writer = cs.begin_write(unknown, ec, &why);
    if (ec) {
        if (detail) *detail = why;
        return {};
    }
    descriptor layer;
    {
        compressing_sink gz(writer, compression::gzip);
        decompressing_source plain(rootfs);
        detail::tee_source tee(plain, gz);
        tar::reader r(tee);
        while (r.next(ec)) {
        }
        null_sink rest; // what follows the end of the archive belongs to the layer too
        if (!ec) copy(tee, rest, ec);
        if (!ec) gz.finish(ec);
        if (ec) {
            if (detail)
                *detail = tee.sink_failed() ? "rootfs: writing the layer to the store"
                                            : "rootfs: " + to_string(r.error_detail());
            writer.abort();
            return {};
        }
        layer = writer.commit(ec, &why);
        if (ec) {
            if (detail) *detail = why;
            return {};
        }
        layer.media_type = std::string(media_type::oci_layer_gzip);
        image_config c;
        c.created = options.created.empty() ? detail::utc_now() : options.created;
        c.architecture = options.image_platform.architecture;
        c.os = options.image_platform.os;
        c.variant = options.image_platform.variant;
        c.config = options.config;
        c.rootfs_type = "layers";
        c.diff_ids = {tee.final()};
        history_entry h;
        h.created = c.created;
        h.created_by = "cz image import";
        h.comment = options.comment;
        c.history = {h};
        manifest m;
        m.media_type = std::string(media_type::oci_manifest);
        m.config = cs.put(media_type::oci_config, serialize(c), ec, &why);
        if (!ec) {
            m.layers = {layer};
            auto top = cs.put(media_type::oci_manifest, serialize(m), ec, &why);
            if (!ec) images.tag(ref.str(), top, ec, &why);
            if (!ec) return top;
        }
        if (detail) *detail = why;
        return {};
    }
}

CZ_DECL descriptor import_rootfs(const image_store& images, source_ref rootfs,
                                 std::string_view name, const rootfs_options& options) {
    std::error_code ec;
    std::string why;
    auto d = import_rootfs(images, rootfs, name, options, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("import {}: {}", name, why));
    return d;
}

CZ_DECL descriptor import_rootfs(const image_store& images, const std::filesystem::path& rootfs,
                                 std::string_view name, const rootfs_options& options,
                                 std::error_code& ec, std::string* detail) {
    ec.clear();
    unique_fd fd(sys::open(rootfs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        detail::system_failure(ec, detail, "opening", rootfs);
        return {};
    }
    fd_source src(fd.get());
    return import_rootfs(images, src, name, options, ec, detail);
}

CZ_DECL descriptor import_rootfs(const image_store& images, const std::filesystem::path& rootfs,
                                 std::string_view name, const rootfs_options& options) {
    std::error_code ec;
    std::string why;
    auto d = import_rootfs(images, rootfs, name, options, ec, &why);
    if (ec) throw cz::system_error(ec, fmt::format("import {}: {}", rootfs.string(), why));
    return d;
}

} // namespace cz::oci
