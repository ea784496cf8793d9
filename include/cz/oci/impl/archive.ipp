// Out-of-line definitions for cz/oci/archive.hpp.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/core/syscall.hpp>
#include <cz/oci/archive.hpp>
#include <cz/oci/detail/report.hpp>
#include <cz/oci/reference.hpp>
#include <cz/tar/reader.hpp>
// The import walk (tree_importer, blob_provider) and the document parsers' field readers; with
// CZ_SEPARATE_COMPILATION this is where they first appear (#pragma once keeps them single).
#include <cz/oci/impl/import.ipp>
#include <cz/oci/impl/types.ipp>

#include <fmt/format.h>

#include <fcntl.h>
#include <map>
#include <set>

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
            if (!path.empty() && !dirs_.insert(path).second)
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

    const content_store& cs_;
    std::string source_;
    std::map<std::string, archive_member> members_;
    std::set<std::string> dirs_;
    std::set<digest> verified_;
    std::size_t held_bytes_ = 0;
};

} // namespace detail

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
    detail::set_error(ec, detail, errc::invalid_archive,
                      fmt::format("{}: no index.json: not an OCI archive", source));
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

} // namespace cz::oci
