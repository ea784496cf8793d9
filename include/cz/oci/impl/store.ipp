// Out-of-line definitions for cz/oci/store.hpp.
#pragma once

#include <cz/core/syscall.hpp>
#include <cz/oci/detail/report.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/store.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <random>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cz::oci {
namespace detail {

inline bool system_failure(std::error_code& ec, std::string* detail, std::string_view what,
                           const std::filesystem::path& path, int error = errno) {
    ec = std::error_code(error, std::system_category());
    if (detail) *detail = fmt::format("{} {}", what, path.string());
    return false;
}

// Takes flock(LOCK_EX) on an open fd, retrying EINTR.
inline bool lock_exclusive(int fd) {
    while (::flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) return false;
    return true;
}

inline bool fsync_directory(const std::filesystem::path& dir, std::error_code& ec,
                            std::string* detail) {
    unique_fd fd(sys::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return system_failure(ec, detail, "opening directory", dir);
    if (::fsync(fd.get()) != 0) return system_failure(ec, detail, "fsync of directory", dir);
    return true;
}

inline bool write_all(int fd, std::string_view bytes, std::uint64_t offset) {
    while (!bytes.empty()) {
        auto n = sys::pwrite(fd, bytes.data(), bytes.size(), off_t(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes.remove_prefix(std::size_t(n));
        offset += std::uint64_t(n);
    }
    return true;
}

// A name no other writer uses: pid, a per-process counter and randomness.
inline std::string unique_suffix() {
    static std::atomic<std::uint64_t> counter{0};
    std::random_device rd;
    return fmt::format("{}-{}-{:08x}", ::getpid(), counter++, rd());
}

// Replaces dir/name with `bytes`: a temporary file in the same directory, fsync, rename, fsync
// of the directory. Readers see the old file or the new one, never a mix.
inline bool replace_file(const std::filesystem::path& dir, std::string_view name,
                         std::string_view bytes, std::error_code& ec, std::string* detail) {
    auto tmp = dir / fmt::format(".{}.tmp-{}", name, unique_suffix());
    unique_fd fd(sys::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return system_failure(ec, detail, "creating", tmp);
    if (!write_all(fd.get(), bytes, 0) || ::fsync(fd.get()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return system_failure(ec, detail, "writing", tmp, e);
    }
    fd.reset();
    if (::rename(tmp.c_str(), (dir / name).c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return system_failure(ec, detail, "renaming into place", dir / name, e);
    }
    return fsync_directory(dir, ec, detail);
}

// Reads a small file whole (index.json, oci-layout), at most `max` bytes.
inline bool read_small_file(const std::filesystem::path& path, std::size_t max, std::string& out,
                            std::error_code& ec, std::string* detail) {
    unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return system_failure(ec, detail, "opening", path);
    out.clear();
    char buf[65536];
    while (true) {
        auto n = sys::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return system_failure(ec, detail, "reading", path);
        }
        if (n == 0) return true;
        if (out.size() + std::size_t(n) > max)
            return set_error(ec, detail, errc::document_too_large,
                             fmt::format("{}: more than {} bytes", path.string(), max));
        out.append(buf, std::size_t(n));
    }
}

inline std::string short_digest(const digest& d) {
    return d.str().substr(0, 19);
}

// The org.opencontainers.image.ref.name grammar (image-spec annotations.md), which umoci and
// skopeo check: components of [A-Za-z0-9]+ joined by one of "-._:@+" or "--", separated by '/'.
inline bool valid_ref_name(std::string_view s) {
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    std::size_t i = 0;
    while (true) {
        // component
        if (i == s.size() || !alnum(s[i])) return false;
        while (i < s.size() && alnum(s[i]))
            ++i;
        while (i < s.size() && s[i] != '/') {
            if (s.substr(i, 2) == "--")
                i += 2;
            else if (std::string_view("-._:@+").find(s[i]) != std::string_view::npos)
                ++i;
            else
                return false;
            if (i == s.size() || !alnum(s[i])) return false;
            while (i < s.size() && alnum(s[i]))
                ++i;
        }
        if (i == s.size()) return true;
        ++i; // '/'
    }
}

inline image_index read_index_json(const content_store& cs, std::error_code& ec,
                                   std::string* detail) {
    std::string bytes;
    auto path = cs.layout_dir() / "index.json";
    if (!read_small_file(path, max_document_size, bytes, ec, detail)) return {};
    std::string why;
    auto ix = parse_index(std::move(bytes), ec, &why);
    if (ec && detail) *detail = fmt::format("{}: {}", path.string(), why);
    return ix;
}

inline bool write_index_json(const content_store& cs, image_index& ix, std::error_code& ec,
                             std::string* detail) {
    ix.schema_version = 2;
    ix.media_type = std::string(media_type::oci_index);
    return replace_file(cs.layout_dir(), "index.json", serialize(ix), ec, detail);
}

// Holds <root>/index.lock while index.json is read, changed and replaced.
inline unique_fd lock_index(const content_store& cs, std::error_code& ec, std::string* detail) {
    auto path = cs.root() / "index.lock";
    unique_fd fd(sys::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd || !lock_exclusive(fd.get())) {
        system_failure(ec, detail, "locking", path);
        return {};
    }
    return fd;
}

// Reads the whole of an open regular file that must be the blob `d` describes: its size, at most
// `max` bytes, and its sha256. `path` names it in messages.
inline std::string read_verified(int fd, const std::filesystem::path& path, const descriptor& d,
                                 std::size_t max, std::error_code& ec, std::string* detail) {
    struct ::stat st;
    if (sys::fstat(fd, &st) != 0) {
        system_failure(ec, detail, "fstat of", path);
        return {};
    }
    if (!S_ISREG(st.st_mode)) {
        set_error(ec, detail, errc::invalid_layout,
                  fmt::format("blob {}: {} is not a regular file", d.digest.str(), path.string()));
        return {};
    }
    if (st.st_size != d.size) {
        set_error(ec, detail, errc::size_mismatch,
                  fmt::format("blob {}: {} bytes, the descriptor says {}", d.digest.str(),
                              st.st_size, d.size));
        return {};
    }
    if (std::uint64_t(st.st_size) > max) {
        set_error(ec, detail, errc::document_too_large,
                  fmt::format("blob {}: {} bytes, more than the {} allowed", d.digest.str(),
                              st.st_size, max));
        return {};
    }
    std::string out(std::size_t(st.st_size), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        auto n = sys::pread_some(fd, out.data() + done, out.size() - done, off_t(done));
        if (n <= 0) {
            system_failure(ec, detail, "reading", path, n < 0 ? errno : EIO);
            return {};
        }
        done += std::size_t(n);
    }
    auto got = sha256(as_bytes(out));
    if (!(got == d.digest)) {
        set_error(ec, detail, errc::digest_mismatch,
                  fmt::format("blob {}: the content hashes to {}", d.digest.str(), got.str()));
        return {};
    }
    return out;
}

// Visits `d` and everything it reaches through manifests and indexes; `seen` collects the
// digests. Problems (missing blobs, wrong sizes, unreadable documents) go to `problems` when
// given. `via` names the path taken for messages.
inline void walk(const content_store& cs, const descriptor& d, const std::string& via,
                 std::set<digest>& seen, std::vector<std::string>* problems) {
    if (!seen.insert(d.digest).second) return;
    auto problem = [&](std::string what) {
        if (problems) problems->push_back(fmt::format("{} {}: {}", via, d.digest.str(), what));
    };
    std::error_code ec;
    auto size = std::filesystem::file_size(cs.blob_path(d.digest), ec);
    if (ec) return problem("missing");
    if (std::int64_t(size) != d.size)
        return problem(fmt::format("is {} bytes, the descriptor says {}", size, d.size));
    bool is_manifest = media_type::is_manifest(d.media_type);
    if (!is_manifest && !media_type::is_index(d.media_type)) return;
    std::string why;
    auto bytes = cs.read(d, max_document_size, ec, &why);
    if (ec) return problem(why.empty() ? ec.message() : why);
    if (is_manifest) {
        auto m = parse_manifest(std::move(bytes), ec, &why);
        if (ec) return problem(fmt::format("{}: {}", why, ec.message()));
        walk(cs, m.config, via + " -> config", seen, problems);
        for (std::size_t i = 0; i < m.layers.size(); ++i)
            walk(cs, m.layers[i], fmt::format("{} -> layers[{}]", via, i), seen, problems);
    } else {
        auto ix = parse_index(std::move(bytes), ec, &why);
        if (ec) return problem(fmt::format("{}: {}", why, ec.message()));
        for (std::size_t i = 0; i < ix.manifests.size(); ++i)
            walk(cs, ix.manifests[i], fmt::format("{} -> manifests[{}]", via, i), seen, problems);
    }
}

// Removes the ingest files older than `age` whose lock no writer holds. The lock is taken before
// the unlink, and a writer that opened the file meanwhile finds, once it has the lock, that the
// path no longer names its inode and starts over (content_store::begin_write).
inline void remove_abandoned_ingests(const content_store& cs, std::chrono::seconds age,
                                     bool dry_run, gc_report& report) {
    std::error_code ec;
    auto now = std::filesystem::file_time_type::clock::now();
    std::filesystem::directory_iterator it(cs.ingest_dir(), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const auto& path = it->path();
        std::error_code stat_ec;
        auto mtime = std::filesystem::last_write_time(path, stat_ec);
        if (stat_ec || now - mtime < age) continue;
        unique_fd fd(sys::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (!fd) continue;
        struct ::stat held, named;
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue; // a live writer
        if (sys::fstat(fd.get(), &held) != 0 || !S_ISREG(held.st_mode) ||
            ::lstat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
            held.st_dev != named.st_dev)
            continue;
        if (dry_run || ::unlink(path.c_str()) == 0) {
            ++report.ingests_removed;
            report.ingest_bytes += std::uint64_t(held.st_size);
        }
    }
}

} // namespace detail

// ---------------------------------------------------------------------------------------------
// blob_writer

CZ_DECL void blob_writer::write(bytes_view data, std::error_code& ec) {
    ec.clear();
    if (stored_ || data.empty()) return;
    if (!fd_) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return;
    }
    if (know_size_ && offset_ + data.size() > std::uint64_t(expected_.size)) {
        ec = errc::size_mismatch;
        return;
    }
    if (!detail::write_all(fd_.get(), as_chars(data), offset_)) {
        ec = last_system_error();
        return;
    }
    hasher_.update(data);
    offset_ += data.size();
    // Write-behind: start the disk writes of every full 8 MiB as it is written, so that the
    // fsync in commit() waits only for the tail. Without it the whole blob sits dirty in the page
    // cache and its disk time is paid after the last byte arrives. Only a hint: a failure here
    // shows again, if it matters, as commit()'s fsync error.
    constexpr std::uint64_t writeback_step = 8u << 20;
    if (offset_ - flushed_ >= writeback_step) {
        ::sync_file_range(fd_.get(), off_t(flushed_), off_t(offset_ - flushed_),
                          SYNC_FILE_RANGE_WRITE);
        flushed_ = offset_;
    }
}

CZ_DECL descriptor blob_writer::commit(std::error_code& ec, std::string* detail) {
    ec.clear();
    if (stored_) return expected_;
    if (!fd_ || !store_) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return {};
    }
    if (::fsync(fd_.get()) != 0) {
        detail::system_failure(ec, detail, "fsync of", data_path_);
        return {};
    }
    if (know_size_ && offset_ != std::uint64_t(expected_.size)) {
        detail::set_error(ec, detail, errc::size_mismatch,
                          fmt::format("blob {}: got {} bytes, expected {}", expected_.digest.str(),
                                      offset_, expected_.size));
        abort();
        return {};
    }
    auto got = hasher_.final();
    if (know_digest_ && !(got == expected_.digest)) {
        detail::set_error(
            ec, detail, errc::digest_mismatch,
            fmt::format("blob {}: the content hashes to {}", expected_.digest.str(), got.str()));
        abort();
        return {};
    }
    // Blobs are read-only: content is immutable once named by its digest.
    if (::fchmod(fd_.get(), 0444) != 0) {
        detail::system_failure(ec, detail, "chmod of", data_path_);
        return {};
    }
    auto target = store_->blob_path(got);
    if (store_->contains(got)) {
        ::unlink(data_path_.c_str());
    } else if (::rename(data_path_.c_str(), target.c_str()) != 0) {
        detail::system_failure(ec, detail, "committing blob to", target);
        return {};
    } else if (!detail::fsync_directory(target.parent_path(), ec, detail)) {
        return {};
    }
    fd_.reset(); // unlocks
    descriptor out = expected_;
    out.digest = got;
    out.size = std::int64_t(offset_);
    return out;
}

CZ_DECL void blob_writer::abort() noexcept {
    if (fd_) ::unlink(data_path_.c_str());
    fd_.reset();
}

// ---------------------------------------------------------------------------------------------
// content_store

CZ_DECL content_store content_store::open(const std::filesystem::path& root, std::error_code& ec,
                                          std::string* detail) {
    ec.clear();
    content_store cs;
    cs.root_ = root;
    for (const auto& dir : {cs.layout_dir() / "blobs" / "sha256", cs.ingest_dir()}) {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            if (detail) *detail = "creating " + dir.string();
            return {};
        }
    }
    auto layout = cs.layout_dir() / "oci-layout";
    std::string bytes;
    if (std::filesystem::exists(layout, ec)) {
        if (!detail::read_small_file(layout, 4096, bytes, ec, detail)) return {};
        nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
        auto it = j.is_object() ? j.find("imageLayoutVersion") : j.end();
        if (it == j.end() || !it->is_string() ||
            !it->get_ref<const std::string&>().starts_with("1.")) {
            detail::set_error(ec, detail, errc::invalid_layout,
                              fmt::format("{}: imageLayoutVersion is not 1.x", layout.string()));
            return {};
        }
    } else if (!detail::replace_file(cs.layout_dir(), "oci-layout",
                                     R"({"imageLayoutVersion":"1.0.0"})", ec, detail)) {
        return {};
    }
    auto index = cs.layout_dir() / "index.json";
    if (!std::filesystem::exists(index, ec)) {
        image_index empty;
        auto lock = detail::lock_index(cs, ec, detail);
        if (!lock) return {};
        if (!std::filesystem::exists(index, ec) && !detail::write_index_json(cs, empty, ec, detail))
            return {};
    }
    ec.clear();
    return cs;
}

CZ_DECL content_store content_store::open(const std::filesystem::path& root) {
    std::error_code ec;
    std::string detail;
    auto cs = open(root, ec, &detail);
    if (ec) throw cz::system_error(ec, "store " + root.string() + ": " + detail);
    return cs;
}

CZ_DECL std::filesystem::path content_store::blob_path(const digest& d) const {
    return layout_dir() / "blobs" / "sha256" / d.hex();
}

CZ_DECL bool content_store::contains(const digest& d) const {
    struct ::stat st;
    return ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

CZ_DECL blob_writer content_store::begin_write(const descriptor& expected, std::error_code& ec,
                                               std::string* detail) const {
    return start_write(expected, true, ec, detail);
}

CZ_DECL blob_writer content_store::try_begin_write(const descriptor& expected, std::error_code& ec,
                                                   std::string* detail) const {
    return start_write(expected, false, ec, detail);
}

CZ_DECL blob_writer content_store::start_write(const descriptor& expected, bool wait,
                                               std::error_code& ec, std::string* detail) const {
    ec.clear();
    blob_writer w;
    w.store_ = this;
    w.expected_ = expected;
    w.know_digest_ = !(expected.digest == digest{});
    w.know_size_ = expected.size >= 0;
    w.data_path_ = w.know_digest_ ? ingest_path(expected.digest)
                                  : ingest_dir() / ("unknown-" + detail::unique_suffix());
    // Open and lock the ingest file. Another writer may commit (rename away) or abort (unlink)
    // the file while we wait for its lock: then the path no longer names the inode we locked,
    // and we start over, looking for the committed blob first.
    for (int attempt = 0;; ++attempt) {
        if (w.know_digest_ && contains(expected.digest)) {
            w.stored_ = true;
            w.fd_.reset();
            return w;
        }
        if (attempt == 100) {
            detail::set_error(ec, detail, errc::invalid_layout,
                              fmt::format("{}: replaced 100 times while waiting for its lock",
                                          w.data_path_.string()));
            return {};
        }
        w.fd_.reset(sys::open(w.data_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
        if (!w.fd_) {
            detail::system_failure(ec, detail, "opening", w.data_path_);
            return {};
        }
        if (!wait) {
            int r;
            while ((r = ::flock(w.fd_.get(), LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
            }
            if (r != 0 && errno == EWOULDBLOCK) {
                ec = std::make_error_code(std::errc::operation_would_block);
                if (detail) *detail = w.data_path_.string() + ": another writer holds it";
                return {};
            }
            if (r != 0) {
                detail::system_failure(ec, detail, "locking", w.data_path_);
                return {};
            }
        } else if (!detail::lock_exclusive(w.fd_.get())) {
            detail::system_failure(ec, detail, "locking", w.data_path_);
            return {};
        }
        struct ::stat held, named;
        if (sys::fstat(w.fd_.get(), &held) != 0) {
            detail::system_failure(ec, detail, "fstat of", w.data_path_);
            return {};
        }
        if (::stat(w.data_path_.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
            held.st_dev != named.st_dev)
            continue;
        if (w.know_digest_ && contains(expected.digest)) {
            // Committed by another writer between our check and our lock.
            ::unlink(w.data_path_.c_str());
            w.stored_ = true;
            w.fd_.reset();
            return w;
        }
        // Resume: re-hash what an earlier attempt left. More than the expected size cannot be
        // a prefix of the blob: start over.
        auto existing = std::uint64_t(held.st_size);
        if (w.know_size_ && existing > std::uint64_t(expected.size)) {
            if (sys::ftruncate(w.fd_.get(), 0) != 0) {
                detail::system_failure(ec, detail, "truncating", w.data_path_);
                return {};
            }
            existing = 0;
        }
        std::vector<char> buf(1 << 20);
        while (w.offset_ < existing) {
            auto want = std::min<std::uint64_t>(buf.size(), existing - w.offset_);
            auto n = sys::pread_some(w.fd_.get(), buf.data(), std::size_t(want), off_t(w.offset_));
            if (n <= 0) {
                detail::system_failure(ec, detail, "re-reading", w.data_path_, n < 0 ? errno : EIO);
                return {};
            }
            w.hasher_.update(as_bytes(std::string_view(buf.data(), std::size_t(n))));
            w.offset_ += std::uint64_t(n);
        }
        return w;
    }
}

CZ_DECL descriptor content_store::ingest(source_ref src, const descriptor& expected,
                                         std::error_code& ec, std::string* detail) const {
    auto w = begin_write(expected, ec, detail);
    if (ec) return {};
    if (w.already_stored()) return expected;
    std::vector<std::byte> buf(1 << 20);
    // Drop what the ingest already holds.
    std::uint64_t skipped = 0;
    while (skipped < w.offset()) {
        auto want = std::min<std::uint64_t>(buf.size(), w.offset() - skipped);
        auto n = src.read_some(mutable_bytes(buf.data(), std::size_t(want)), ec);
        if (ec) return {};
        if (n == 0) {
            detail::set_error(ec, detail, errc::size_mismatch,
                              fmt::format("source ended after {} bytes, before the {} bytes "
                                          "already ingested",
                                          skipped, w.offset()));
            w.abort();
            return {};
        }
        skipped += n;
    }
    while (true) {
        auto n = src.read_some(buf, ec);
        if (ec) {
            if (detail) *detail = fmt::format("reading the source at offset {}", w.offset());
            return {};
        }
        if (n == 0) break;
        w.write(bytes_view(buf.data(), n), ec);
        if (ec) {
            if (detail)
                *detail = ec == errc::size_mismatch
                              ? fmt::format("blob {}: more than the expected {} bytes",
                                            expected.digest.str(), expected.size)
                              : fmt::format("writing {}", w.data_path_.string());
            if (ec == errc::size_mismatch) w.abort();
            return {};
        }
    }
    return w.commit(ec, detail);
}

CZ_DECL descriptor content_store::put(std::string_view media_type, std::string_view bytes,
                                      std::error_code& ec, std::string* detail) const {
    auto expected = describe(media_type, bytes);
    memory_source src(as_bytes(bytes));
    return ingest(src, expected, ec, detail);
}

CZ_DECL std::string content_store::read(const descriptor& d, std::size_t max, std::error_code& ec,
                                        std::string* detail) const {
    ec.clear();
    auto fd = open_blob(d.digest, ec);
    if (ec) {
        if (detail) *detail = fmt::format("blob {}: not in the store", d.digest.str());
        return {};
    }
    return detail::read_verified(fd.get(), blob_path(d.digest), d, max, ec, detail);
}

CZ_DECL unique_fd content_store::open_blob(const digest& d, std::error_code& ec) const {
    ec.clear();
    unique_fd fd(sys::open(blob_path(d).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) ec = errno == ENOENT ? make_error_code(errc::not_found) : last_system_error();
    return fd;
}

CZ_DECL void content_store::remove(const digest& d, std::error_code& ec) const {
    ec.clear();
    if (::unlink(blob_path(d).c_str()) != 0)
        ec = errno == ENOENT ? make_error_code(errc::not_found) : last_system_error();
}

CZ_DECL std::vector<digest> content_store::list(std::error_code& ec) const {
    ec.clear();
    std::vector<digest> out;
    std::filesystem::directory_iterator it(layout_dir() / "blobs" / "sha256", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::error_code parse_ec;
        auto d = digest::parse("sha256:" + it->path().filename().string(), parse_ec);
        if (!parse_ec) out.push_back(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// ---------------------------------------------------------------------------------------------
// image_store

CZ_DECL std::vector<image_entry> image_store::list(std::error_code& ec, std::string* detail) const {
    auto ix = detail::read_index_json(*content_, ec, detail);
    std::vector<image_entry> out;
    if (ec) return out;
    for (auto& d : ix.manifests) {
        image_entry e;
        if (auto it = d.annotations.find(std::string(annotation_ref_name));
            it != d.annotations.end())
            e.name = it->second;
        e.target = std::move(d);
        out.push_back(std::move(e));
    }
    return out;
}

CZ_DECL void image_store::tag(std::string_view name, const descriptor& target, std::error_code& ec,
                              std::string* detail) const {
    ec.clear();
    if (!detail::valid_ref_name(name)) {
        detail::set_error(ec, detail, errc::invalid_reference,
                          fmt::format("{} is not a valid {} (components of letters and digits "
                                      "joined by -._:@+ and '/')",
                                      detail::quote_input(name), annotation_ref_name));
        return;
    }
    if (!media_type::is_manifest(target.media_type) && !media_type::is_index(target.media_type)) {
        detail::set_error(ec, detail, errc::unsupported_media_type,
                          fmt::format("{}: a tag points at a manifest or an index, not {}",
                                      detail::quote_input(name),
                                      detail::quote_input(target.media_type)));
        return;
    }
    if (!content_->contains(target.digest)) {
        detail::set_error(ec, detail, errc::not_found,
                          fmt::format("{}: blob {} is not in the store", detail::quote_input(name),
                                      target.digest.str()));
        return;
    }
    auto lock = detail::lock_index(*content_, ec, detail);
    if (!lock) return;
    auto ix = detail::read_index_json(*content_, ec, detail);
    if (ec) return;
    auto key = std::string(annotation_ref_name);
    std::erase_if(ix.manifests, [&](const descriptor& d) {
        auto it = d.annotations.find(key);
        return it != d.annotations.end() && it->second == name;
    });
    descriptor entry = target;
    entry.annotations[key] = std::string(name);
    ix.manifests.push_back(std::move(entry));
    detail::write_index_json(*content_, ix, ec, detail);
}

CZ_DECL void image_store::untag(std::string_view name, std::error_code& ec,
                                std::string* detail) const {
    ec.clear();
    auto lock = detail::lock_index(*content_, ec, detail);
    if (!lock) return;
    auto ix = detail::read_index_json(*content_, ec, detail);
    if (ec) return;
    auto key = std::string(annotation_ref_name);
    auto removed = std::erase_if(ix.manifests, [&](const descriptor& d) {
        auto it = d.annotations.find(key);
        return it != d.annotations.end() && it->second == name;
    });
    if (removed == 0) {
        detail::set_error(ec, detail, errc::not_found,
                          fmt::format("no image named {}", detail::quote_input(name)));
        return;
    }
    detail::write_index_json(*content_, ix, ec, detail);
}

CZ_DECL image_entry image_store::find(std::string_view name, std::error_code& ec,
                                      std::string* detail) const {
    auto entries = list(ec, detail);
    if (ec) return {};
    for (auto& e : entries)
        if (e.name == name) return std::move(e);
    // Compare normalised names: "alpine" finds "docker.io/library/alpine:latest" and the other
    // way round (skopeo writes whatever name it is given).
    std::error_code parse_ec;
    auto wanted = parse_reference(name, parse_ec);
    if (!parse_ec) {
        for (auto& e : entries) {
            auto r = parse_reference(e.name, parse_ec);
            if (!parse_ec && r == wanted) return std::move(e);
        }
    }
    detail::set_error(ec, detail, errc::not_found,
                      fmt::format("no image named {}", detail::quote_input(name)));
    return {};
}

CZ_DECL descriptor image_store::lookup(std::string_view name, std::error_code& ec,
                                       std::string* detail) const {
    return find(name, ec, detail).target;
}

CZ_DECL descriptor image_store::resolve(const descriptor& start, const platform& want,
                                        std::error_code& ec, std::string* detail) const {
    ec.clear();
    descriptor d = start;
    std::set<digest> seen;
    for (int depth = 0;; ++depth) {
        if (media_type::is_manifest(d.media_type)) return d;
        if (!media_type::is_index(d.media_type)) {
            detail::set_error(ec, detail, errc::unsupported_media_type,
                              fmt::format("{} is {}, neither a manifest nor an index",
                                          d.digest.str(), detail::quote_input(d.media_type)));
            return {};
        }
        if (depth == 8 || !seen.insert(d.digest).second) {
            detail::set_error(ec, detail, errc::index_too_deep,
                              fmt::format("index {}: {}", d.digest.str(),
                                          depth == 8 ? "indexes nested more than 8 deep"
                                                     : "reached again (a cycle)"));
            return {};
        }
        std::string why;
        auto bytes = content_->read(d, max_document_size, ec, &why);
        if (ec) {
            if (detail) *detail = why;
            return {};
        }
        auto ix = parse_index(std::move(bytes), ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("index {}: {}", d.digest.str(), why);
            return {};
        }
        const auto* next = select_platform(ix, want, ec, &why);
        if (ec) {
            if (detail) *detail = fmt::format("index {}: {}", d.digest.str(), why);
            return {};
        }
        d = *next;
    }
}

CZ_DECL verify_report image_store::verify(std::error_code& ec) const {
    verify_report report;
    ec.clear();
    auto blobs_dir = content_->layout_dir() / "blobs" / "sha256";
    std::filesystem::directory_iterator it(blobs_dir, ec), end;
    std::vector<std::byte> buf(1 << 20);
    for (; !ec && it != end; it.increment(ec)) {
        auto name = it->path().filename().string();
        auto rel = "blobs/sha256/" + name;
        std::error_code parse_ec;
        auto d = digest::parse("sha256:" + name, parse_ec);
        if (parse_ec) {
            report.problems.push_back(rel + ": not a sha256 blob name");
            continue;
        }
        std::error_code open_ec;
        auto fd = content_->open_blob(d, open_ec);
        if (open_ec) {
            report.problems.push_back(fmt::format("{}: cannot open: {}", rel, open_ec.message()));
            continue;
        }
        fd_source src(fd.get());
        sha256_hasher h;
        std::error_code read_ec;
        auto n = copy(src, h, read_ec);
        if (read_ec) {
            report.problems.push_back(fmt::format("{}: read error: {}", rel, read_ec.message()));
            continue;
        }
        ++report.blobs;
        report.bytes += n;
        auto got = h.final();
        if (!(got == d))
            report.problems.push_back(fmt::format("{}: content hashes to {}", rel, got.str()));
    }
    if (ec) return report;
    std::string why;
    auto entries = list(ec, &why);
    if (ec) {
        report.problems.push_back(fmt::format("index.json: {}: {}", why, ec.message()));
        ec.clear();
        return report;
    }
    std::set<digest> seen;
    for (const auto& e : entries)
        detail::walk(*content_, e.target,
                     fmt::format("index.json {}", e.name.empty() ? "(untagged)" : e.name), seen,
                     &report.problems);
    std::error_code ingest_ec; // an ingest area that cannot be listed holds nothing to report
    for (std::filesystem::directory_iterator i(content_->ingest_dir(), ingest_ec), end;
         !ingest_ec && i != end; i.increment(ingest_ec)) {
        std::error_code size_ec;
        auto size = i->is_regular_file(size_ec) ? i->file_size(size_ec) : 0;
        if (size_ec) continue; // committed or removed meanwhile
        ++report.partial_blobs;
        report.partial_bytes += size;
    }
    return report;
}

CZ_DECL gc_report image_store::gc(const gc_options& options, std::error_code& ec,
                                  std::string* detail) const {
    gc_report report;
    // Hold the index lock: no tag appears or goes while we decide what is garbage.
    auto lock = detail::lock_index(*content_, ec, detail);
    if (!lock) return report;
    auto entries = list(ec, detail);
    if (ec) return report;
    std::set<digest> reachable;
    for (const auto& e : entries)
        detail::walk(*content_, e.target, "", reachable, nullptr);
    auto blobs = content_->list(ec);
    if (ec) {
        if (detail) *detail = "listing blobs";
        return report;
    }
    auto now = std::filesystem::file_time_type::clock::now();
    for (const auto& d : blobs) {
        if (reachable.count(d)) continue;
        auto path = content_->blob_path(d);
        std::error_code stat_ec;
        auto mtime = std::filesystem::last_write_time(path, stat_ec);
        auto size = std::filesystem::file_size(path, stat_ec);
        if (stat_ec) continue; // removed meanwhile
        if (now - mtime < options.grace) {
            ++report.kept;
            continue;
        }
        std::error_code rm_ec;
        if (!options.dry_run) content_->remove(d, rm_ec);
        if (!rm_ec) {
            ++report.removed;
            report.bytes += size;
        }
    }
    detail::remove_abandoned_ingests(*content_, options.ingest_age, options.dry_run, report);
    return report;
}

// ---------------------------------------------------------------------------------------------
// Throwing overloads: the error and its detail become a cz::system_error.

namespace detail {
template <class F>
auto or_throw(std::string_view what, F&& f) {
    std::error_code ec;
    std::string why;
    auto result = f(ec, &why);
    if (ec)
        throw cz::system_error(ec,
                               why.empty() ? std::string(what) : fmt::format("{}: {}", what, why));
    return result;
}
} // namespace detail

CZ_DECL descriptor content_store::ingest(source_ref src, const descriptor& expected) const {
    return detail::or_throw("ingest", [&](std::error_code& ec, std::string* why) {
        return ingest(src, expected, ec, why);
    });
}

CZ_DECL descriptor content_store::put(std::string_view media_type, std::string_view bytes) const {
    return detail::or_throw("put", [&](std::error_code& ec, std::string* why) {
        return put(media_type, bytes, ec, why);
    });
}

CZ_DECL std::string content_store::read(const descriptor& d, std::size_t max) const {
    return detail::or_throw(
        "read", [&](std::error_code& ec, std::string* why) { return read(d, max, ec, why); });
}

CZ_DECL std::vector<image_entry> image_store::list() const {
    return detail::or_throw("index.json",
                            [&](std::error_code& ec, std::string* why) { return list(ec, why); });
}

CZ_DECL void image_store::tag(std::string_view name, const descriptor& target) const {
    detail::or_throw("tag", [&](std::error_code& ec, std::string* why) {
        tag(name, target, ec, why);
        return 0;
    });
}

CZ_DECL void image_store::untag(std::string_view name) const {
    detail::or_throw("untag", [&](std::error_code& ec, std::string* why) {
        untag(name, ec, why);
        return 0;
    });
}

CZ_DECL image_entry image_store::find(std::string_view name) const {
    return detail::or_throw(
        "find", [&](std::error_code& ec, std::string* why) { return find(name, ec, why); });
}

CZ_DECL descriptor image_store::lookup(std::string_view name) const {
    return detail::or_throw(
        "lookup", [&](std::error_code& ec, std::string* why) { return lookup(name, ec, why); });
}

CZ_DECL descriptor image_store::resolve(const descriptor& d, const platform& want) const {
    return detail::or_throw("resolve", [&](std::error_code& ec, std::string* why) {
        return resolve(d, want, ec, why);
    });
}

} // namespace cz::oci
