// Out-of-line definitions for cz/container/pull.hpp.
#pragma once

#include <cz/container/pull.hpp>

#include <cz/core/stream.hpp>
#include <cz/core/syscall.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/oci/error.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/store.hpp>

#include <asio/io_context.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace cz::container {

namespace detail {

// What the pull's thread tells the thread that builds the root filesystem.
struct pull_progress_state {
    struct blob {
        std::uint64_t written = 0; // bytes in its ingest file so far
        bool committed = false;    // verified and in the store
    };
    std::mutex mutex;
    std::condition_variable changed;
    bool have_manifest = false;
    oci::descriptor manifest_desc;
    oci::manifest manifest;
    std::map<digest, blob> blobs; // those this pull has written to
    bool done = false;
    std::error_code ec;
    oci::descriptor tagged;
};

inline bool same_file(int fd, const std::filesystem::path& path) {
    struct ::stat a, b;
    return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

// A layer read while the pull writes it: its ingest file, followed up to the bytes the pull has
// written so far. The bytes are not verified yet when they are applied; confirm() then waits for
// the pull to commit the blob and checks that the committed blob is the file that was read.
// That holds because a blob's ingest file only grows (a resumed fetch appends; one that starts
// over removes the file and makes a new one). A layer already in the store, or committed by
// another process meanwhile, is read from the store.
class followed_layer final : public layer_reader {
public:
    followed_layer(const oci::content_store& content, pull_progress_state& state,
                   oci::descriptor layer)
        : content_(content), state_(state), layer_(std::move(layer)) {}

    std::size_t read_some(mutable_bytes buf, std::error_code& ec) override {
        ec.clear();
        if (buf.empty()) return 0;
        std::unique_lock lock(state_.mutex);
        for (;;) {
            if (!fd_ && !open(ec)) {
                if (ec) return 0;
                if (state_.done) { // the pull ended without this layer
                    ec = state_.ec ? state_.ec : make_error_code(oci::errc::not_found);
                    return 0;
                }
                state_.changed.wait_for(lock, std::chrono::milliseconds(50));
                continue;
            }
            if (from_store_) {
                lock.unlock();
                return fd_source(fd_.get()).read_some(buf, ec);
            }
            // Every byte the manifest announces: the end, without waiting for the commit (an
            // fsync); confirm() waits for that.
            if (layer_.size >= 0 && offset_ == std::uint64_t(layer_.size)) return 0;
            const auto b = state_.blobs[layer_.digest];
            // Once committed the whole file is there (and it is the one read, or confirm() fails).
            auto limit = b.committed ? offset_ + buf.size() : b.written;
            if (offset_ < limit) {
                auto want = std::min<std::uint64_t>(buf.size(), limit - offset_);
                lock.unlock();
                ssize_t n =
                    sys::pread_some(fd_.get(), buf.data(), std::size_t(want), off_t(offset_));
                if (n < 0) {
                    ec = last_system_error();
                    return 0;
                }
                offset_ += std::uint64_t(n);
                if (n > 0 || b.committed) return std::size_t(n);
                lock.lock(); // a file that was started over: shorter than what was written
            } else if (state_.done) {
                ec = state_.ec ? state_.ec : make_error_code(oci::errc::not_found);
                return 0;
            }
            state_.changed.wait_for(lock, std::chrono::milliseconds(50));
        }
    }

    void confirm(std::error_code& ec) override {
        ec.clear();
        if (from_store_) return;
        std::unique_lock lock(state_.mutex);
        state_.changed.wait(lock,
                            [&] { return state_.blobs[layer_.digest].committed || state_.done; });
        if (!state_.blobs[layer_.digest].committed) {
            ec = state_.ec ? state_.ec : make_error_code(oci::errc::not_found);
            return;
        }
        if (!same_file(fd_.get(), content_.blob_path(layer_.digest)))
            ec = make_error_code(oci::errc::digest_mismatch); // read a file the pull gave up on
    }

private:
    // Opens the blob (in the store) or its ingest file (being written by this pull). False, with
    // `ec` clear, while neither is there yet. Called with the state locked.
    bool open(std::error_code& ec) {
        if (content_.contains(layer_.digest)) {
            fd_ = content_.open_blob(layer_.digest, ec);
            from_store_ = true;
            return !ec;
        }
        auto it = state_.blobs.find(layer_.digest);
        if (it == state_.blobs.end() || it->second.written == 0) return false;
        fd_.reset(sys::open(content_.ingest_path(layer_.digest).c_str(),
                            O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        return bool(fd_); // committed meanwhile (renamed away): found in the store next time
    }

    const oci::content_store& content_;
    pull_progress_state& state_;
    oci::descriptor layer_;
    unique_fd fd_;
    bool from_store_ = false;
    std::uint64_t offset_ = 0;
};

} // namespace detail

CZ_DECL pull_result pull_image(const std::filesystem::path& root, std::string_view image,
                               const pull_options& opts, std::error_code& ec, std::string* detail) {
    ec.clear();
    pull_result r;
    std::string why;
    auto say = [&](std::string what) {
        if (detail) *detail = std::move(what);
        return r;
    };
    auto ref = oci::parse_reference(image, ec, &why);
    if (ec) return say(std::string(image) + ": " + why);
    auto content = oci::content_store::open(root, ec, &why);
    if (ec) return say("the store under " + root.string() + ": " + why);
    oci::image_store images(content);

    detail::pull_progress_state state;
    asio::io_context io;
    oci::registry::registry_client client(io.get_executor(), opts.registry);
    client.on_progress([&](const oci::registry::blob_progress& p) {
        if (opts.on_blob) opts.on_blob(p);
        std::lock_guard lock(state.mutex);
        auto& b = state.blobs[p.digest];
        b.written = p.done;
        b.committed = p.finished;
        state.changed.notify_all();
    });
    client.on_manifest([&](const oci::descriptor& d, const oci::manifest& m) {
        std::lock_guard lock(state.mutex);
        state.have_manifest = true;
        state.manifest_desc = d;
        state.manifest = m;
        state.changed.notify_all();
    });
    client.async_pull(ref, opts.platform, images, [&](std::error_code e, oci::descriptor d) {
        std::lock_guard lock(state.mutex);
        state.done = true;
        state.ec = e;
        state.tagged = d;
        state.changed.notify_all();
    });
    std::thread puller([&] {
        std::error_code failure;
        try {
            io.run();
        } catch (const std::system_error& e) {
            failure = e.code();
        } catch (...) {
            failure = std::make_error_code(std::errc::state_not_recoverable);
        }
        std::lock_guard lock(state.mutex);
        if (!state.done) state.ec = failure ? failure : make_error_code(std::errc::interrupted);
        state.done = true;
        state.changed.notify_all();
    });

    // The layers as they arrive, while the pull goes on.
    std::error_code build_ec;
    std::string build_why;
    {
        std::unique_lock lock(state.mutex);
        state.changed.wait(lock, [&] { return state.have_manifest || state.done; });
    }
    if (state.have_manifest) {
        rootfs_options ro;
        ro.on_layer = opts.on_layer;
        ro.defer_publish = opts.defer_publish;
        ro.open_layer = [&](const oci::descriptor& layer, std::error_code& e) {
            e.clear();
            return std::unique_ptr<layer_reader>(new detail::followed_layer(content, state, layer));
        };
        // The builder needs its own copy: the pull's thread is still running.
        oci::manifest m;
        oci::descriptor md;
        {
            std::lock_guard lock(state.mutex);
            m = state.manifest;
            md = state.manifest_desc;
        }
        r.manifest = md.digest;
        r.rootfs = ensure_rootfs(content, m, md.digest, ro, build_ec, &build_why);
    }
    // A failed build lets the pull finish: its blobs are verified and worth keeping.
    puller.join();
    if (build_ec && !state.ec && state.have_manifest) {
        // Layers were applied before they were verified: build again from the verified blobs,
        // so that the error (or the image) is the one they make.
        rootfs_options ro;
        ro.on_layer = opts.on_layer;
        ro.defer_publish = opts.defer_publish;
        build_ec.clear();
        r.rootfs = ensure_rootfs(content, state.manifest, state.manifest_desc.digest, ro, build_ec,
                                 &build_why);
    }

    if (state.ec) {
        if (!r.rootfs.pending_name.empty()) ::unlink(r.rootfs.path.c_str()); // of no use now
        ec = state.ec;
        return say(client.last_error().empty() ? ref.str() : client.last_error());
    }
    if (build_ec) {
        ec = build_ec;
        return say("the root filesystem of " + ref.str() + ": " + build_why);
    }
    r.tagged = state.tagged;
    return r;
}

} // namespace cz::container
