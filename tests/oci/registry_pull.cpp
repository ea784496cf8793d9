// registry_client::async_pull against docker-registry on loopback: skopeo pushes images cz made
// (one platform, and an index of two), cz pulls them into a fresh store, and the two agree on
// every digest and byte.
#include <cz/oci/registry/client.hpp>

#include "registry_image.hpp"
#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_future.hpp>

#include <algorithm>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;

TEST_SUITE("oci registry") {

    TEST_CASE("pull: what skopeo pushed, byte for byte; an index resolved for a platform") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-pull");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        auto amd64 = make_image(source, "amd64", dir.path);
        auto arm64 = make_image(source, "arm64", dir.path);
        amd64.platform = linux("amd64");
        arm64.platform = linux("arm64");
        nlohmann::json index = {{"schemaVersion", 2},
                                {"mediaType", oci::media_type::oci_index},
                                {"manifests", {oci::to_json(amd64), oci::to_json(arm64)}}};
        auto index_d = source_store.put(oci::media_type::oci_index, index.dump());
        source.tag("single", amd64);
        source.tag("multi", index_d);
        push(server, dir.path / "source", "single");
        push(server, dir.path / "source", "multi", "--all");

        auto dest_store = oci::content_store::open(dir.path / "dest");
        oci::image_store dest(dest_store);
        std::vector<reg::blob_progress> progress;
        auto pull = [&](const std::string& name, const std::string& arch) {
            std::pair<std::error_code, oci::descriptor> result;
            std::string last_error;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                reg::registry_client client(io.get_executor());
                client.on_progress([&](const reg::blob_progress& p) { progress.push_back(p); });
                auto ref = oci::parse_reference(server.host() + "/cz/" + name);
                auto [ec, d] = co_await client.async_pull(ref, linux(arch), dest,
                                                          as_tuple(asio::use_awaitable));
                result = {ec, d};
                last_error = client.last_error();
            });
            INFO(last_error);
            CHECK(!result.first);
            return result.second;
        };

        auto single = pull("single:1", "amd64");
        CHECK(single.digest == amd64.digest); // skopeo pushed cz's manifest unchanged
        CHECK(dest.lookup(server.host() + "/cz/single:1").digest == amd64.digest);
        // Every blob cz stored is the source's, byte for byte.
        std::error_code ec;
        for (const auto& d : dest_store.list(ec))
            CHECK(read_file(dest_store.blob_path(d)) == read_file(source_store.blob_path(d)));
        CHECK(dest_store.list(ec).size() == 3); // manifest, config, layer
        CHECK(!progress.empty());
        CHECK(progress.back().finished);
        auto report = dest.verify(ec);
        CHECK(report.ok());

        // Again: everything is there, nothing is fetched.
        progress.clear();
        pull("single:1", "amd64");
        CHECK(progress.empty());

        // The index: the arm64 manifest and its blobs, and not amd64's config.
        auto multi = pull("multi:1", "arm64");
        CHECK(multi.digest == index_d.digest);
        auto resolved = dest.resolve(multi, linux("arm64"));
        CHECK(resolved.digest == arm64.digest);
        auto arm_manifest = oci::parse_manifest(source_store.read(arm64, 1 << 20));
        CHECK(dest_store.contains(arm_manifest.config.digest));
        CHECK(dest.verify(ec).ok());
    }

    TEST_CASE("pull: a layer of several MiB, stored on 0, 1 or 2 threads beside the client's") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        registry_server server;
        temp_dir dir("cz-pull");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        // About 3 MB of gzip: several of the pieces a blob is received and stored in.
        auto image = make_image(source, "amd64", dir.path, 3000000);
        source.tag("big", image);
        push(server, dir.path / "source", "big");
        auto layer = oci::parse_manifest(source_store.read(image, 1 << 20)).layers.at(0);
        REQUIRE(layer.size > 2 * (1 << 20));
        for (std::size_t threads : {0, 1, 2}) {
            CAPTURE(threads);
            auto dest_store =
                oci::content_store::open(dir.path / ("dest" + std::to_string(threads)));
            oci::image_store dest(dest_store);
            std::vector<std::uint64_t> done;
            std::error_code pull_ec;
            std::string last_error;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                reg::registry_options options;
                options.store_threads = threads;
                reg::registry_client client(io.get_executor(), options);
                client.on_progress([&](const reg::blob_progress& p) {
                    if (p.digest == layer.digest) done.push_back(p.done);
                });
                auto ref = oci::parse_reference(server.host() + "/cz/big:1");
                auto [ec, d] = co_await client.async_pull(ref, linux("amd64"), dest,
                                                          as_tuple(asio::use_awaitable));
                pull_ec = ec;
                last_error = client.last_error();
            });
            INFO(last_error);
            REQUIRE(!pull_ec);
            CHECK(read_file(dest_store.blob_path(layer.digest)) ==
                  read_file(source_store.blob_path(layer.digest)));
            // Progress grows piece by piece to the whole blob.
            REQUIRE(done.size() > 2);
            CHECK(std::is_sorted(done.begin(), done.end()));
            CHECK(done.back() == static_cast<std::uint64_t>(layer.size));
            std::error_code ec;
            CHECK(dest.verify(ec).ok());
            CHECK(!std::filesystem::exists(dest_store.ingest_dir() /
                                           ("sha256-" + layer.digest.hex())));
        }
    }

    TEST_CASE("pull: a tag that is not there, a platform the index lacks") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        registry_server server;
        temp_dir dir("cz-pull");
        auto store = oci::content_store::open(dir.path);
        oci::image_store images(store);
        run([&](asio::io_context& io) -> asio::awaitable<void> {
            reg::registry_client client(io.get_executor());
            auto ref = oci::parse_reference(server.host() + "/cz/none:1");
            auto [ec, d] = co_await client.async_pull(ref, oci::host_platform(), images,
                                                      as_tuple(asio::use_awaitable));
            CHECK(ec == oci::errc::not_found);
            CHECK(client.last_error().find("MANIFEST_UNKNOWN") != std::string::npos);
        });
        std::error_code ec;
        CHECK(images.list(ec).empty());
    }

    TEST_CASE("pull: Basic authentication (distribution's htpasswd): none, wrong, right") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        registry_server server(false, htpasswd);
        temp_dir dir("cz-pull-auth");
        auto source_store = oci::content_store::open(dir.path / "source");
        oci::image_store source(source_store);
        auto image = make_image(source, "amd64", dir.path);
        source.tag("auth", image);
        push(server, dir.path / "source", "auth", "--dest-creds cz:secret");

        auto store = oci::content_store::open(dir.path / "dest");
        oci::image_store images(store);
        auto ref = oci::parse_reference(server.host() + "/cz/auth:1");
        auto pull = [&](std::optional<reg::credentials> creds) {
            std::pair<std::error_code, std::string> result;
            run([&](asio::io_context& io) -> asio::awaitable<void> {
                reg::registry_options options;
                std::string asked_for;
                options.credentials = [&](std::string_view registry) {
                    asked_for = registry;
                    return creds;
                };
                reg::registry_client client(io.get_executor(), options);
                auto [ec, d] = co_await client.async_pull(ref, linux("amd64"), images,
                                                          as_tuple(asio::use_awaitable));
                CHECK(asked_for == server.host()); // asked by the registry's own name
                result = {ec, client.last_error()};
            });
            return result;
        };
        auto none = pull(std::nullopt);
        CHECK(none.first == reg::errc::unauthorized);
        CHECK(none.second.find("wants a user name and password") != std::string::npos);
        auto wrong = pull(reg::credentials{"cz", "wrong"});
        CHECK(wrong.first == reg::errc::unauthorized);
        CHECK(wrong.second.find("401") != std::string::npos);
        std::error_code ec;
        CHECK(images.list(ec).empty());
        auto right = pull(reg::credentials{"cz", "secret"});
        CHECK_MESSAGE(!right.first, right.second);
        CHECK(images.lookup(ref.str()).digest == image.digest);
        CHECK(images.verify(ec).ok());
    }
}
