// Out-of-line definitions for cz/container/pull.hpp.
#pragma once

#include <cz/container/pull.hpp>

#include <cz/oci/reference.hpp>
#include <cz/oci/store.hpp>

#include <asio/io_context.hpp>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

namespace cz::container {

namespace detail {

// What the pull's thread tells the thread that builds the root filesystem.
struct pull_progress_state {
    std::mutex mutex;
    std::condition_variable changed;
    bool have_manifest = false;
    oci::descriptor manifest_desc;
    oci::manifest manifest;
    bool done = false;
    std::error_code ec;
    oci::descriptor tagged;
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
        if (p.finished) {
            std::lock_guard lock(state.mutex);
            state.changed.notify_all();
        }
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
        ro.wait_for_layer = [&](const oci::descriptor& layer, std::error_code& e) {
            std::unique_lock lock(state.mutex);
            // Polled as well as signalled: a blob another process stored meanwhile is not
            // announced by this pull.
            while (!content.contains(layer.digest)) {
                if (state.done) {
                    e = state.ec ? state.ec : make_error_code(oci::errc::not_found);
                    return;
                }
                state.changed.wait_for(lock, std::chrono::milliseconds(50));
            }
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
