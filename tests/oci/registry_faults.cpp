// registry_client::async_pull through a fault-injecting proxy (fault_proxy.hpp) in front of
// docker-registry: connections reset, stalled and cut short in the middle of a layer, 500s, 429s
// with Retry-After, a flipped byte, a redirect to another host, an oversized manifest. Each pull
// either completes with the image skopeo pushed or fails with an error naming the cause; either
// way the store verifies clean, holds no blob the pull did not finish, and every partial blob
// left in its ingest area is a true prefix of the blob (what the next pull resumes from).
#include <cz/oci/registry/client.hpp>

#include "fault_proxy.hpp"
#include "registry_image.hpp"
#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <fmt/format.h>

#include <ctime>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;
using namespace std::chrono_literals;

namespace {

// docker-registry with one image skopeo pushed (cz/app:1: a config and a ~1 MB layer), and an
// empty store to pull it into.
struct pushed_image {
    std::optional<registry_server> server;
    temp_dir dir{"cz-faults"};
    oci::content_store source_store = oci::content_store::open(dir.path / "source");
    oci::image_store source{source_store};
    oci::content_store store = oci::content_store::open(dir.path / "dest");
    oci::image_store images{store};
    oci::descriptor image;
    oci::descriptor layer;
    oci::descriptor config;

    // `htpasswd`: "user:bcrypt" for Basic authentication (the push then uses cz:secret).
    explicit pushed_image(const std::string& htpasswd = {}) {
        server.emplace(false, htpasswd);
        image = make_image(source, "amd64", dir.path, 1000000);
        source.tag("app", image);
        push(*server, dir.path / "source", "app", htpasswd.empty() ? "" : "--dest-creds cz:secret");
        auto m = oci::parse_manifest(source_store.read(image, 1 << 20));
        layer = m.layers.at(0);
        config = m.config;
    }
    std::string blob_bytes(const cz::digest& d) const {
        return read_file(source_store.blob_path(d));
    }
};

struct pull_result {
    std::error_code ec;
    std::string error; // the client's last_error()
    std::chrono::steady_clock::duration took{};
};

// Pulls cz/app:1 from `host` into `images`. The defaults are shortened so that the retries the
// faults cause take milliseconds: 3 tries, 50 ms backoff (the stall tests shorten the read
// timeout too; a busy machine checking bcrypt passwords can be slow).
pull_result pull(const std::string& host, const oci::image_store& images,
                 std::function<void(reg::registry_options&)> adjust = {}) {
    pull_result result;
    run([&](asio::io_context& io) -> asio::awaitable<void> {
        reg::registry_options options;
        options.attempts = 3;
        options.backoff = 50ms;
        options.timeouts.io = 10s;
        options.timeouts.connect = 10s;
        options.concurrency = 1;
        if (adjust) adjust(options);
        reg::registry_client client(io.get_executor(), options);
        auto start = std::chrono::steady_clock::now();
        auto [ec, d] =
            co_await client.async_pull(oci::parse_reference(host + "/cz/app:1"), linux("amd64"),
                                       images, as_tuple(asio::use_awaitable));
        result = {ec, client.last_error(), std::chrono::steady_clock::now() - start};
    });
    return result;
}

// The store after a pull, whatever its outcome: verify finds nothing wrong, and each ingest
// file left (sha256-<hex>, a blob the pull did not finish) holds a non-empty prefix of that blob.
void check_store(const pushed_image& p) {
    std::error_code ec;
    auto report = p.images.verify(ec);
    REQUIRE(!ec);
    for (const auto& problem : report.problems)
        FAIL_CHECK(problem);
    std::uint64_t partial_blobs = 0, partial_bytes = 0; // what verify reports of the ingest area
    for (const auto& entry : std::filesystem::directory_iterator(p.store.ingest_dir())) {
        auto name = entry.path().filename().string();
        INFO("ingest file ", name);
        REQUIRE(name.starts_with("sha256-"));
        auto d = cz::digest::parse("sha256:" + name.substr(7));
        auto partial = read_file(entry.path());
        auto whole = p.blob_bytes(d);
        CHECK(!partial.empty()); // an ingest nothing was written into is removed
        CHECK(partial.size() < whole.size());
        CHECK(whole.compare(0, partial.size(), partial) == 0);
        ++partial_blobs;
        partial_bytes += partial.size();
    }
    CHECK(report.partial_blobs == partial_blobs);
    CHECK(report.partial_bytes == partial_bytes);
}

// The image is in the store, tagged, byte for byte what was pushed.
void check_pulled(const pushed_image& p, const std::string& host) {
    CHECK(p.images.lookup(host + "/cz/app:1").digest == p.image.digest);
    for (const auto* d : {&p.layer, &p.config})
        CHECK(read_file(p.store.blob_path(d->digest)) == p.blob_bytes(d->digest));
    check_store(p);
}

std::vector<proxied_request> gets_of(const fault_proxy& proxy, const cz::digest& d) {
    std::vector<proxied_request> out;
    for (const auto& r : proxy.requests())
        if (r.is_blob_get() && r.target.ends_with(d.str())) out.push_back(r);
    return out;
}

// How many GETs of `d` `seen` holds (the request being decided on included).
std::size_t count_gets(const std::vector<proxied_request>& seen, const cz::digest& d) {
    return std::count_if(seen.begin(), seen.end(), [&](const proxied_request& r) {
        return r.is_blob_get() && r.target.ends_with(d.str());
    });
}

// The offset a `Range: bytes=N-` header asks from; nullopt without one.
std::optional<std::uint64_t> range_start(const proxied_request& r) {
    auto range = r.header("range");
    if (!range || !range->starts_with("bytes=") || !range->ends_with("-")) return std::nullopt;
    return std::stoull(range->substr(6, range->size() - 7));
}

double seconds_between(const proxied_request& a, const proxied_request& b) {
    return std::chrono::duration<double>(b.at - a.at).count();
}

// An IMF-fixdate (RFC 9110) `ahead` from now, as servers write Retry-After.
std::string http_date_in(std::chrono::seconds ahead) {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

bool skip_without_peers() {
    if (!have("docker-registry")) {
        skip("docker-registry is not installed");
        return true;
    }
    if (!have("skopeo")) {
        skip("skopeo is not installed");
        return true;
    }
    return false;
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("faults: a connection reset in the middle of the layer; the pull resumes (Range)") {
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()) &&
                count_gets(seen, p.layer.digest) == 1)
                return fault::reset(300000);
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images);
        CHECK_MESSAGE(!result.ec, result.error);
        auto gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 2);
        auto from = range_start(gets[1]);
        REQUIRE(from);
        // A reset may drop what the client had not read yet: up to the 300 KB that were sent.
        CHECK(*from > 0);
        CHECK(*from <= 300000);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: a server that stalls in the middle of the layer; the read times out, the "
              "pull resumes") {
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()) &&
                count_gets(seen, p.layer.digest) == 1)
                return fault::stall(300000);
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images, [](auto& o) { o.timeouts.io = 1s; });
        CHECK_MESSAGE(!result.ec, result.error);
        auto gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 2);
        CHECK(range_start(gets[1]) == 300000u); // everything before the stall arrived
        auto waited = seconds_between(gets[0], gets[1]);
        CHECK(waited >= 0.9);
        CHECK(waited < 5);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: a server that stalls on every try; the pull fails with a timeout and "
              "keeps what arrived for the next one") {
        if (skip_without_peers()) return;
        pushed_image p;
        std::atomic<bool> stall{true};
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (stall && r.is_blob_get() && r.target.ends_with(p.layer.digest.str()))
                return fault::stall(100000);
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images, [](auto& o) {
            o.attempts = 2;
            o.timeouts.io = 1s;
        });
        CHECK(result.ec == std::errc::timed_out);
        INFO(result.error);
        CHECK(result.error.find(p.layer.digest.str()) != std::string::npos);
        CHECK(result.error.find("after 2 tries") != std::string::npos);
        auto gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 2);
        CHECK(range_start(gets[1]) == 100000u); // the second try resumed, then stalled too
        std::error_code ec;
        CHECK(p.images.list(ec).empty());
        CHECK(!p.store.contains(p.layer.digest));
        // 200 KB of the layer wait in the ingest area (check_store: a true prefix).
        CHECK(std::filesystem::file_size(p.store.ingest_dir() /
                                         ("sha256-" + p.layer.digest.hex())) == 200000);
        CHECK(p.images.verify(ec).partial_bytes == 200000);
        check_store(p);

        stall = false; // the next pull asks only for the rest
        auto again = pull(proxy.host(), p.images);
        CHECK_MESSAGE(!again.ec, again.error);
        gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 3);
        CHECK(range_start(gets[2]) == 200000u);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: a body shorter than its Content-Length, then a clean close; the pull "
              "resumes") {
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            // The config too: a small blob cut short after 10 bytes.
            if (r.is_blob_get() && count_gets(seen, p.layer.digest) == 1 &&
                r.target.ends_with(p.layer.digest.str()))
                return fault::close(500000);
            if (r.is_blob_get() && count_gets(seen, p.config.digest) == 1 &&
                r.target.ends_with(p.config.digest.str()))
                return fault::close(10);
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images);
        CHECK_MESSAGE(!result.ec, result.error);
        auto layer_gets = gets_of(proxy, p.layer.digest);
        REQUIRE(layer_gets.size() == 2);
        CHECK(range_start(layer_gets[1]) == 500000u);
        auto config_gets = gets_of(proxy, p.config.digest);
        REQUIRE(config_gets.size() == 2);
        CHECK(range_start(config_gets[1]) == 10u);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: 500 twice, then the layer; retried after a growing backoff") {
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()) &&
                count_gets(seen, p.layer.digest) <= 2)
                return fault::respond(http_answer(500, "Internal Server Error", {}, "busy"));
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images, [](auto& o) { o.backoff = 200ms; });
        CHECK_MESSAGE(!result.ec, result.error);
        auto gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 3);
        CHECK(seconds_between(gets[0], gets[1]) >= 0.19); // backoff
        CHECK(seconds_between(gets[1], gets[2]) >= 0.39); // doubled
        CHECK(seconds_between(gets[0], gets[2]) < 5);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: 500 for every try of the layer; the pull fails saying so, nothing is "
              "tagged") {
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()))
                return fault::respond(http_answer(
                    500, "Internal Server Error", {{"Content-Type", "application/json"}},
                    R"({"errors":[{"code":"UNKNOWN","message":"disk on fire"}]})"));
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images, [](auto& o) { o.attempts = 4; });
        CHECK(result.ec == reg::errc::unexpected_status);
        INFO(result.error);
        CHECK(result.error.find(p.layer.digest.str()) != std::string::npos);
        CHECK(result.error.find("500") != std::string::npos);
        CHECK(result.error.find("disk on fire") != std::string::npos);
        CHECK(result.error.find("(after 4 tries)") != std::string::npos);
        CHECK(gets_of(proxy, p.layer.digest).size() == 4); // the retry budget, no more
        CHECK(!p.store.contains(p.layer.digest));
        std::error_code ec;
        CHECK(p.images.list(ec).empty());
        check_store(p);
    }

    TEST_CASE("faults: 429 with Retry-After in seconds, as a date, and absurdly long") {
        if (skip_without_peers()) return;
        struct variant {
            const char* name;
            std::function<std::string()> value;
            double at_least, below; // seconds between the 429 and the next try
            std::chrono::seconds cap;
        };
        std::vector<variant> variants = {
            {"delta-seconds", [] { return std::string("2"); }, 1.9, 4, 60s},
            // The date has whole seconds: 3 s ahead is a wait of 2 to 3 s.
            {"HTTP-date", [] { return http_date_in(3s); }, 1.9, 4, 60s},
            {"a year, capped at 1 s", [] { return std::string("31536000"); }, 0.9, 3, 1s},
            {"year 9999, capped at 1 s",
             [] { return std::string("Fri, 31 Dec 9999 23:59:59 GMT"); }, 0.9, 3, 1s},
        };
        pushed_image p;
        for (const auto& v : variants) {
            INFO(v.name);
            fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
                const auto& r = seen.back();
                if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()) &&
                    count_gets(seen, p.layer.digest) == 1)
                    return fault::respond(http_answer(429, "Too Many Requests",
                                                      {{"Retry-After", v.value()}}, "slow down"));
                return fault::pass();
            });
            auto result = pull(proxy.host(), p.images, [&](auto& o) { o.max_retry_after = v.cap; });
            CHECK_MESSAGE(!result.ec, result.error);
            auto gets = gets_of(proxy, p.layer.digest);
            REQUIRE(gets.size() == 2);
            auto waited = seconds_between(gets[0], gets[1]);
            CHECK(waited >= v.at_least);
            CHECK(waited < v.below);
            check_pulled(p, proxy.host());
            // Empty again for the next variant.
            std::error_code ec;
            for (const auto& d : p.store.list(ec))
                p.store.remove(d, ec);
            p.images.untag(proxy.host() + "/cz/app:1");
        }
    }

    TEST_CASE("faults: a flipped byte in the layer; the pull fails with a digest mismatch, "
              "keeps nothing of it, and succeeds when tried again") {
        if (skip_without_peers()) return;
        pushed_image p;
        std::atomic<bool> spoil{true};
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (spoil && r.is_blob_get() && r.target.ends_with(p.layer.digest.str()))
                return fault::flip(123456);
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images);
        CHECK(result.ec == oci::errc::digest_mismatch);
        INFO(result.error);
        CHECK(result.error.find(p.layer.digest.str()) != std::string::npos);
        CHECK(!p.store.contains(p.layer.digest));
        CHECK(!std::filesystem::exists(p.store.ingest_dir() / ("sha256-" + p.layer.digest.hex())));
        std::error_code ec;
        CHECK(p.images.list(ec).empty());
        check_store(p);

        spoil = false;
        auto again = pull(proxy.host(), p.images);
        CHECK_MESSAGE(!again.ec, again.error);
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: the layer redirected to another host, which gets no credentials") {
        if (skip_without_peers()) return;
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        pushed_image p(htpasswd);
        // The other host (a CDN): serves blobs by digest from the source store.
        fault_proxy cdn(p.server->endpoint(), [&](const auto& seen) {
            auto target = seen.back().target;
            auto at = target.find("sha256:");
            if (at == std::string::npos) return fault::respond(http_answer(404, "Not Found", {}));
            auto d = cz::digest::parse(target.substr(at, 71));
            auto bytes = p.blob_bytes(d);
            auto from = range_start(seen.back());
            if (from)
                return fault::respond(
                    http_answer(206, "Partial Content",
                                {{"Content-Range", fmt::format("bytes {}-{}/{}", *from,
                                                               bytes.size() - 1, bytes.size())}},
                                bytes.substr(*from)));
            return fault::respond(http_answer(200, "OK", {}, bytes));
        });
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            const auto& r = seen.back();
            if (r.is_blob_get() && r.target.ends_with(p.layer.digest.str()))
                return fault::respond(
                    http_answer(307, "Temporary Redirect",
                                {{"Location", "http://" + cdn.host() + "/cdn/" +
                                                  p.layer.digest.str() + "?expires=1"}}));
            return fault::pass();
        });
        std::vector<std::string> asked;
        auto result = pull(proxy.host(), p.images, [&](auto& o) {
            o.credentials = [&](std::string_view registry) -> std::optional<reg::credentials> {
                asked.emplace_back(registry);
                if (registry == proxy.host()) return reg::credentials{"cz", "secret"};
                return std::nullopt;
            };
        });
        CHECK_MESSAGE(!result.ec, result.error);
        auto gets = gets_of(proxy, p.layer.digest);
        REQUIRE(gets.size() == 1);
        CHECK(gets[0].header("authorization").value_or("").starts_with("Basic ")); // the registry
        auto at_cdn = cdn.requests();
        REQUIRE(at_cdn.size() == 1);
        CHECK(at_cdn[0].target == "/cdn/" + p.layer.digest.str() + "?expires=1");
        CHECK(!at_cdn[0].header("authorization"));
        CHECK(asked == std::vector<std::string>{proxy.host()});
        check_pulled(p, proxy.host());
    }

    TEST_CASE("faults: a manifest larger than 4 MiB is refused") {
        if (skip_without_peers()) return;
        pushed_image p;
        std::string huge = R"({"schemaVersion":2,"layers":[)";
        huge.append(5 << 20, ' ');
        huge += "]}";
        fault_proxy proxy(p.server->endpoint(), [&](const auto& seen) {
            if (seen.back().is_manifest_get())
                return fault::respond(http_answer(
                    200, "OK", {{"Content-Type", std::string(oci::media_type::oci_manifest)}},
                    huge));
            return fault::pass();
        });
        auto result = pull(proxy.host(), p.images);
        CHECK(result.ec == oci::errc::document_too_large);
        INFO(result.error);
        CHECK(result.error.find("/manifests/1") != std::string::npos);
        CHECK(result.error.find(std::to_string(oci::max_document_size)) != std::string::npos);
        std::error_code ec;
        CHECK(p.store.list(ec).empty());
        CHECK(p.images.list(ec).empty());
        check_store(p);
    }

    TEST_CASE("faults: two pulls of the same image at once, in one thread, into one store") {
        // Each blob's ingest file is locked by its writer; the second pull must wait for the
        // first one's blobs without blocking the thread that the first one runs on (flock(2)
        // waiting there never returns: the holder cannot finish).
        if (skip_without_peers()) return;
        pushed_image p;
        fault_proxy proxy(p.server->endpoint(), [](const auto& seen) {
            return seen.back().is_blob_get() ? fault::slow(200ms) : fault::pass();
        });
        auto ref = oci::parse_reference(proxy.host() + "/cz/app:1");
        asio::io_context io;
        reg::registry_options options;
        options.timeouts.io = 5s;
        reg::registry_client first(io.get_executor(), options), second(io.get_executor(), options);
        std::optional<std::error_code> first_done, second_done;
        first.async_pull(ref, linux("amd64"), p.images,
                         [&](std::error_code ec, oci::descriptor) { first_done = ec; });
        second.async_pull(ref, linux("amd64"), p.images,
                          [&](std::error_code ec, oci::descriptor) { second_done = ec; });
        io.run();
        REQUIRE(first_done);
        REQUIRE(second_done);
        CHECK_MESSAGE(!*first_done, first.last_error());
        CHECK_MESSAGE(!*second_done, second.last_error());
        check_pulled(p, proxy.host());
        // Each blob came over the network once: the second pull found the first one's.
        CHECK(gets_of(proxy, p.layer.digest).size() == 1);
        CHECK(gets_of(proxy, p.config.digest).size() == 1);
    }
}
