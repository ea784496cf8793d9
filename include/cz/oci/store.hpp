// cz/oci/store.hpp — the content store and the image store: an OCI image layout on disk.
//
// Layout under a root directory (DESIGN: "State on disk"):
//   <root>/content/oci-layout          {"imageLayoutVersion": "1.0.0"}
//   <root>/content/index.json          the image store: one entry per reference
//   <root>/content/blobs/sha256/<hex>  every blob, named by the sha256 of its bytes, read-only
//   <root>/ingest/sha256-<hex>         a blob being written; resumable (kept across crashes)
//   <root>/index.lock                  flock(2)ed while index.json is read-modified-written
// <root>/content is a plain OCI image layout (image-spec image-layout.md): references are
// `org.opencontainers.image.ref.name` annotations on index.json's entries, the way skopeo's
// `oci:` transport and umoci write and read them, so `skopeo inspect oci:<root>/content:<ref>`
// and `umoci unpack --image <root>/content:<ref>` see what cz stores, and the reverse.
//
// Crash safety: a blob becomes visible only by rename(2) after its bytes are fsync'ed and their
// size and sha256 checked, so blobs/ never holds a partial or wrong blob; index.json is replaced
// by writing a temporary file, fsync, rename, fsync of the directory. A crash leaves at worst an
// ingest file, which the next writer of that blob resumes (containerd's local content store does
// the same: it re-hashes the bytes on disk, then appends).
// Concurrency: the writer of a blob holds flock(2) on its ingest file, so two processes writing
// the same blob take turns and the second finds the blob committed; index.json changes are
// serialised by index.lock, so concurrent tags are never lost. Readers take no lock.
#pragma once

#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/oci/error.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/types.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cz::oci {

class content_store;

// Writes one blob into the ingest area, then commits it. A byte_sink. Obtained from
// content_store::begin_write(); not copyable; destroying it without commit() keeps the bytes
// written so far for a later resume (abort() removes them).
class blob_writer {
public:
    blob_writer() = default;
    blob_writer(blob_writer&&) noexcept = default;
    blob_writer& operator=(blob_writer&&) noexcept = default;

    // The bytes already in the ingest (a resumed write starts here: send only what follows).
    std::uint64_t offset() const noexcept { return offset_; }
    // True when the blob was already in the store: nothing to write, commit() just returns.
    bool already_stored() const noexcept { return stored_; }

    // byte_sink. Fails with errc::size_mismatch past the expected size.
    CZ_DECL void write(bytes_view data, std::error_code& ec);
    void finish(std::error_code& ec) noexcept { ec.clear(); }

    // fsyncs, checks size and digest against the expected descriptor (when it has them; an
    // unknown digest is the one computed), and renames the data into blobs/. On a size or
    // digest mismatch the ingest is removed. Returns the stored blob's descriptor.
    CZ_DECL descriptor commit(std::error_code& ec, std::string* detail = nullptr);
    // Removes the partial data.
    CZ_DECL void abort() noexcept;

private:
    friend class content_store;
    const content_store* store_ = nullptr;
    unique_fd fd_;
    std::filesystem::path data_path_;
    descriptor expected_;
    bool know_digest_ = false;
    bool know_size_ = false;
    bool stored_ = false;
    sha256_hasher hasher_;
    std::uint64_t offset_ = 0;
    std::uint64_t flushed_ = 0; // bytes before this offset have had their writeback started
};

struct verify_report {
    std::uint64_t blobs = 0; // blobs re-hashed
    std::uint64_t bytes = 0; // their total size
    // One line per problem: "blobs/sha256/ab..: content hashes to sha256:cd..",
    // "index.json: docker.io/library/x:1 -> layers[0] sha256:..: missing".
    std::vector<std::string> problems;
    // Partial blobs in the ingest area: writes interrupted (or still going on). Not problems:
    // the next writer of each blob resumes from it, and gc removes those abandoned for a day.
    std::uint64_t partial_blobs = 0;
    std::uint64_t partial_bytes = 0;
    bool ok() const noexcept { return problems.empty(); }
};

struct gc_options {
    // Blobs younger than this are kept even when nothing reaches them: a concurrent pull commits
    // its blobs before it tags the image.
    std::chrono::seconds grace{600};
    // Decide and report, remove nothing: `removed` and `bytes` are what a real run would free.
    bool dry_run = false;
    // Ingest files (partial blobs) untouched for this long are abandoned: removed unless a
    // writer holds their lock. Younger ones are kept for the writer that resumes them.
    std::chrono::seconds ingest_age{24 * 3600};
};

struct gc_report {
    std::uint64_t removed = 0; // blobs removed (with dry_run: that would be)
    std::uint64_t bytes = 0;   // their total size
    std::uint64_t kept = 0;    // unreachable blobs kept because they are younger than the grace
    std::uint64_t ingests_removed = 0; // abandoned ingest files (with dry_run: that would be)
    std::uint64_t ingest_bytes = 0;
};

// One entry of the image store.
struct image_entry {
    std::string name; // the ref.name annotation; empty for an entry without one
    descriptor target;
};

// Blobs: an OCI image layout's blobs/ plus the ingest area.
class content_store {
public:
    content_store() = default;

    // Opens the store at `root`, creating the layout when it does not exist. Fails with
    // errc::invalid_layout when <root>/content is a layout of another version, or a system error.
    CZ_DECL static content_store open(const std::filesystem::path& root, std::error_code& ec,
                                      std::string* detail = nullptr);
    CZ_DECL static content_store open(const std::filesystem::path& root);

    const std::filesystem::path& root() const noexcept { return root_; }
    std::filesystem::path layout_dir() const { return root_ / "content"; }
    std::filesystem::path ingest_dir() const { return root_ / "ingest"; }
    // Where the blob `d` is written before it is committed (and a reader can follow the write).
    std::filesystem::path ingest_path(const digest& d) const {
        return ingest_dir() / ("sha256-" + d.hex());
    }
    CZ_DECL std::filesystem::path blob_path(const digest& d) const;
    CZ_DECL bool contains(const digest& d) const;

    // Starts writing the blob `expected` describes, or resumes an earlier attempt at it (same
    // digest: the bytes on disk are re-hashed and writing continues at offset()). Blocks while
    // another process writes the same blob. An empty expected.digest (default) means "not known
    // yet": the write cannot be resumed, and its digest is what the bytes hash to. A negative
    // expected.size means "not known".
    CZ_DECL blob_writer begin_write(const descriptor& expected, std::error_code& ec,
                                    std::string* detail = nullptr) const;
    // As begin_write, but fails with std::errc::operation_would_block instead of waiting while
    // another writer holds the blob: for callers that must not block their thread (an event
    // loop whose other tasks may be that writer), who wait their own way and try again.
    CZ_DECL blob_writer try_begin_write(const descriptor& expected, std::error_code& ec,
                                        std::string* detail = nullptr) const;

    // Stores the bytes of `src` as the blob `expected` describes (resuming: the first offset()
    // bytes of src are read and dropped, as a source without seeking allows) and commits.
    CZ_DECL descriptor ingest(source_ref src, const descriptor& expected, std::error_code& ec,
                              std::string* detail = nullptr) const;
    CZ_DECL descriptor ingest(source_ref src, const descriptor& expected) const;
    // Stores bytes from memory (manifests, configs); returns their descriptor.
    CZ_DECL descriptor put(std::string_view media_type, std::string_view bytes, std::error_code& ec,
                           std::string* detail = nullptr) const;
    CZ_DECL descriptor put(std::string_view media_type, std::string_view bytes) const;
    // Reads a whole blob of at most `max` bytes, checking its size and digest against `d`.
    CZ_DECL std::string read(const descriptor& d, std::size_t max, std::error_code& ec,
                             std::string* detail = nullptr) const;
    CZ_DECL std::string read(const descriptor& d, std::size_t max) const;
    // Opens a blob for reading (O_RDONLY | O_CLOEXEC); errc::not_found when absent.
    CZ_DECL unique_fd open_blob(const digest& d, std::error_code& ec) const;
    // Removes a blob; errc::not_found when absent.
    CZ_DECL void remove(const digest& d, std::error_code& ec) const;
    // Every blob in blobs/sha256 (names that are not 64 lowercase hex digits are skipped).
    CZ_DECL std::vector<digest> list(std::error_code& ec) const;

private:
    friend class blob_writer;
    CZ_DECL blob_writer start_write(const descriptor& expected, bool wait, std::error_code& ec,
                                    std::string* detail) const;
    std::filesystem::path root_;
};

// References: index.json of the content store's layout, plus what follows from them (resolving
// an index to one platform's manifest, verify, gc).
class image_store {
public:
    explicit image_store(const content_store& content) : content_(&content) {}
    const content_store& content() const noexcept { return *content_; }

    // Every entry of index.json, in its order.
    CZ_DECL std::vector<image_entry> list(std::error_code& ec, std::string* detail = nullptr) const;
    CZ_DECL std::vector<image_entry> list() const;
    // Points `name` at `target` (a manifest or index already in the content store), replacing
    // what it pointed at. `name` is kept as given; callers normalise it first
    // (parse_reference(...).str()) when they want docker's names.
    CZ_DECL void tag(std::string_view name, const descriptor& target, std::error_code& ec,
                     std::string* detail = nullptr) const;
    CZ_DECL void tag(std::string_view name, const descriptor& target) const;
    // Removes `name`; errc::not_found when no entry has it.
    CZ_DECL void untag(std::string_view name, std::error_code& ec,
                       std::string* detail = nullptr) const;
    CZ_DECL void untag(std::string_view name) const;
    // The entry for `name`: an exact match of the annotation first, then of the normalised
    // reference (so "alpine" finds "docker.io/library/alpine:latest"). errc::not_found otherwise.
    // find() returns the entry with the name it is stored under (what untag() takes); lookup()
    // its target.
    CZ_DECL image_entry find(std::string_view name, std::error_code& ec,
                             std::string* detail = nullptr) const;
    CZ_DECL image_entry find(std::string_view name) const;
    CZ_DECL descriptor lookup(std::string_view name, std::error_code& ec,
                              std::string* detail = nullptr) const;
    CZ_DECL descriptor lookup(std::string_view name) const;
    // Follows `d` through indexes (at most 8 levels, no cycles) to the image manifest for `want`.
    CZ_DECL descriptor resolve(const descriptor& d, const platform& want, std::error_code& ec,
                               std::string* detail = nullptr) const;
    CZ_DECL descriptor resolve(const descriptor& d, const platform& want) const;
    // Re-hashes every blob, and checks that everything index.json reaches is present with the
    // announced size. The error code is for failures to read the store at all; what is wrong
    // with its content is in the report.
    CZ_DECL verify_report verify(std::error_code& ec) const;
    // Removes the blobs nothing in index.json reaches (and that are older than the grace), and
    // the ingest files older than options.ingest_age that no live writer holds locked.
    CZ_DECL gc_report gc(const gc_options& options, std::error_code& ec,
                         std::string* detail = nullptr) const;

private:
    const content_store* content_;
};

} // namespace cz::oci

#if CZ_HEADER_ONLY
#include <cz/oci/impl/store.ipp>
#endif
