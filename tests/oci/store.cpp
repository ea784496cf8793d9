// cz/oci/store.hpp: the content store (ingest, resume, verify, gc, concurrent writers) and the
// image store (tags in index.json, lookup, resolving indexes).
#include <cz/oci/store.hpp>

#include "image.hpp"
#include "support/support.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <random>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

using namespace cz::oci;
using cz_test::read_file;
using cz_test::temp_dir;
using cz_test::write_file;

namespace {

// A source that hands out at most `chunk` bytes per read, so concurrent writers interleave.
class trickle_source {
public:
    trickle_source(std::string_view data, std::size_t chunk) : data_(data), chunk_(chunk) {}
    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
        ec.clear();
        auto n = std::min({buf.size(), chunk_, data_.size()});
        std::memcpy(buf.data(), data_.data(), n);
        data_.remove_prefix(n);
        return n;
    }

private:
    std::string_view data_;
    std::size_t chunk_;
};

std::string pattern(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = char(x >> 24);
    }
    return s;
}

std::size_t count_files(const std::filesystem::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir))
        ++n;
    return n;
}

// Runs `body` in `n` child processes at once; returns how many exited 0.
template <class F>
int in_processes(int n, F body) {
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int rc = 1;
            try {
                rc = body(i) ? 0 : 1;
            } catch (...) {
            }
            ::_exit(rc);
        }
        pids.push_back(pid);
    }
    int ok = 0;
    for (auto pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
    }
    return ok;
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("store: open creates an OCI image layout, and refuses another version") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path / "root");
        auto layout = nlohmann::json::parse(read_file(tmp.path / "root/content/oci-layout"));
        CHECK(layout["imageLayoutVersion"] == "1.0.0");
        auto index = parse_index(read_file(tmp.path / "root/content/index.json"));
        CHECK(index.manifests.empty());
        CHECK(std::filesystem::is_directory(tmp.path / "root/content/blobs/sha256"));
        CHECK(std::filesystem::is_directory(tmp.path / "root/ingest"));
        // Reopening keeps what is there.
        auto blob = cs.put("application/octet-stream", "x");
        CHECK(content_store::open(tmp.path / "root").contains(blob.digest));

        write_file(tmp.path / "root/content/oci-layout", R"({"imageLayoutVersion":"2.0.0"})");
        std::error_code ec;
        std::string detail;
        content_store::open(tmp.path / "root", ec, &detail);
        CHECK(ec == errc::invalid_layout);
        CHECK(detail.find("imageLayoutVersion") != std::string::npos);
    }

    TEST_CASE("store: blobs are written whole, checked, read-only, and read back checked") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto d = cs.put(media_type::oci_config, "{}");
        CHECK(d.digest.str() ==
              "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        CHECK(d.size == 2);
        auto path = cs.blob_path(d.digest);
        CHECK(path == tmp.path / "content/blobs/sha256" / d.digest.hex());
        CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::owner_write) ==
              std::filesystem::perms::none);
        std::error_code ec;
        CHECK(cs.read(d, 100, ec) == "{}");
        CHECK(!ec);
        // The same blob again: nothing to do.
        CHECK(cs.put(media_type::oci_config, "{}").digest == d.digest);
        CHECK(count_files(tmp.path / "ingest") == 0);

        std::string detail;
        cs.read(d, 1, ec, &detail);
        CHECK(ec == errc::document_too_large);
        auto wrong_size = d;
        wrong_size.size = 3;
        cs.read(wrong_size, 100, ec, &detail);
        CHECK(ec == errc::size_mismatch);
        auto absent = describe(media_type::oci_config, "{ }");
        cs.read(absent, 100, ec, &detail);
        CHECK(ec == errc::not_found);

        // A blob whose bytes changed on disk is caught when read.
        std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add);
        write_file(path, "[]");
        cs.read(d, 100, ec, &detail);
        CHECK(ec == errc::digest_mismatch);
        CHECK(detail.find(
                  "hashes to "
                  "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945") !=
              std::string::npos);
    }

    TEST_CASE("store: content that does not match its descriptor never becomes a blob") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        std::error_code ec;
        std::string detail;
        auto expected = describe(media_type::oci_layer, "the real content");
        cz::memory_source other(cz::as_bytes(std::string_view("other content!!!")));
        cs.ingest(other, expected, ec, &detail);
        CHECK(ec == errc::digest_mismatch);
        CHECK(detail.find(expected.digest.str()) != std::string::npos);
        CHECK(!cs.contains(expected.digest));
        CHECK(count_files(tmp.path / "ingest") == 0);

        cz::memory_source longer(cz::as_bytes(std::string_view("the real content, and more")));
        cs.ingest(longer, expected, ec, &detail);
        CHECK(ec == errc::size_mismatch);
        CHECK(count_files(tmp.path / "ingest") == 0);
        cz::memory_source shorter(cz::as_bytes(std::string_view("the real")));
        cs.ingest(shorter, expected, ec, &detail);
        CHECK(ec == errc::size_mismatch);
        CHECK(detail.find("got 8 bytes, expected 16") != std::string::npos);
        CHECK(count_files(tmp.path / "content/blobs/sha256") == 0);

        // Unknown digest and size (an import): the content names itself.
        descriptor unknown;
        unknown.media_type = std::string(media_type::oci_layer);
        unknown.size = -1;
        cz::memory_source any(cz::as_bytes(std::string_view("anything")));
        auto d = cs.ingest(any, unknown, ec, &detail);
        REQUIRE(!ec);
        CHECK(d.digest == cz::sha256(cz::as_bytes(std::string_view("anything"))));
        CHECK(d.size == 8);
    }

    TEST_CASE("store: an interrupted ingest resumes at the bytes on disk") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto data = pattern(3 << 20, 1);
        auto expected = describe(media_type::oci_layer_gzip, data);
        std::error_code ec;
        {
            auto w = cs.begin_write(expected, ec);
            REQUIRE(!ec);
            CHECK(w.offset() == 0);
            w.write(cz::as_bytes(std::string_view(data).substr(0, 1234567)), ec);
            REQUIRE(!ec);
            // Dropped without commit: a crash, as far as the store can tell.
        }
        CHECK(!cs.contains(expected.digest));
        {
            auto w = cs.begin_write(expected, ec);
            REQUIRE(!ec);
            CHECK(w.offset() == 1234567);
        }
        // ingest() skips what is there and sends the rest.
        struct counting {
            cz::memory_source inner;
            std::uint64_t reads = 0;
            std::size_t read_some(cz::mutable_bytes b, std::error_code& ec) {
                auto n = inner.read_some(b, ec);
                reads += n;
                return n;
            }
        } src{cz::memory_source(cz::as_bytes(data))};
        auto d = cs.ingest(src, expected, ec);
        REQUIRE(!ec);
        CHECK(d.digest == expected.digest);
        CHECK(read_file(cs.blob_path(d.digest)) == data);
        CHECK(count_files(tmp.path / "ingest") == 0);

        // A partial ingest holding garbage fails its digest check, is removed, and the next attempt
        // starts from zero and succeeds.
        auto data2 = pattern(100000, 2);
        auto expected2 = describe(media_type::oci_layer, data2);
        write_file(tmp.path / "ingest" / ("sha256-" + expected2.digest.hex()),
                   std::string(5000, 'z'));
        std::string detail;
        cz::memory_source first(cz::as_bytes(data2));
        cs.ingest(first, expected2, ec, &detail);
        CHECK(ec == errc::digest_mismatch);
        cz::memory_source second(cz::as_bytes(data2));
        cs.ingest(second, expected2, ec, &detail);
        CHECK(!ec);
        CHECK(read_file(cs.blob_path(expected2.digest)) == data2);
        // An ingest longer than the blob cannot be its prefix: it is dropped, not trusted.
        auto data3 = pattern(1000, 3);
        auto expected3 = describe(media_type::oci_layer, data3);
        write_file(tmp.path / "ingest" / ("sha256-" + expected3.digest.hex()), pattern(2000, 3));
        auto w = cs.begin_write(expected3, ec);
        CHECK(w.offset() == 0);
    }

    TEST_CASE("store: try_begin_write says 'would block' while another writer holds the blob") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto data = pattern(100000, 4);
        auto expected = describe(media_type::oci_layer, data);
        std::error_code ec;
        std::string detail;
        auto first = cs.try_begin_write(expected, ec, &detail);
        REQUIRE(!ec);
        first.write(cz::as_bytes(std::string_view(data).substr(0, 500)), ec);
        REQUIRE(!ec);
        // flock(2) locks belong to an open file: a second open in this process waits as well.
        auto second = cs.try_begin_write(expected, ec, &detail);
        CHECK(ec == std::errc::operation_would_block);
        CHECK(detail.find("sha256-" + expected.digest.hex()) != std::string::npos);
        first.write(cz::as_bytes(std::string_view(data).substr(500)), ec);
        first.commit(ec);
        REQUIRE(!ec);
        second = cs.try_begin_write(expected, ec, &detail);
        CHECK(!ec);
        CHECK(second.already_stored());
        // A writer that gave up leaves its bytes, and the next one resumes from them.
        auto data2 = pattern(100000, 5);
        auto expected2 = describe(media_type::oci_layer, data2);
        {
            auto w = cs.try_begin_write(expected2, ec);
            REQUIRE(!ec);
            w.write(cz::as_bytes(std::string_view(data2).substr(0, 700)), ec);
        }
        auto w = cs.try_begin_write(expected2, ec);
        CHECK(!ec);
        CHECK(w.offset() == 700);
    }

    TEST_CASE("store: writers of the same blob in several processes take turns (flock)") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto data = pattern(4 << 20, 7);
        auto expected = describe(media_type::oci_layer, data);
        int ok = in_processes(6, [&](int) {
            auto store = content_store::open(tmp.path);
            trickle_source src(data, 4096);
            std::error_code ec;
            auto d = store.ingest(src, expected, ec);
            return !ec && d.digest == expected.digest;
        });
        CHECK(ok == 6);
        CHECK(read_file(cs.blob_path(expected.digest)) == data);
        CHECK(count_files(tmp.path / "ingest") == 0);
        std::error_code ec;
        CHECK(image_store(cs).verify(ec).ok());
    }

    TEST_CASE(
        "store: kill -9 at 20 random points of an ingest; the store stays valid and resumes") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto data = pattern(8 << 20, 9);
        auto expected = describe(media_type::oci_layer, data);
        auto ingest_file = tmp.path / "ingest" / ("sha256-" + expected.digest.hex());
        std::mt19937 rng(12345);
        std::uint64_t largest_partial = 0;
        for (int round = 0; round < 20; ++round) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                // A slow writer: 64 KiB at a time, with a pause, so the kill lands mid-way.
                struct slow_source {
                    std::string_view rest;
                    std::size_t read_some(cz::mutable_bytes buf, std::error_code& ec) {
                        ec.clear();
                        ::usleep(300);
                        auto n = std::min({buf.size(), std::size_t(65536), rest.size()});
                        std::memcpy(buf.data(), rest.data(), n);
                        rest.remove_prefix(n);
                        return n;
                    }
                } src{data};
                std::error_code ec;
                auto store = content_store::open(tmp.path, ec);
                if (!ec) store.ingest(src, expected, ec);
                ::_exit(ec ? 1 : 0);
            }
            ::usleep(std::uniform_int_distribution<useconds_t>(1000, 60000)(rng));
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
            CAPTURE(round);
            // No partial blob is ever visible; the ingest holds a prefix at most.
            if (cs.contains(expected.digest))
                CHECK(read_file(cs.blob_path(expected.digest)) == data);
            std::error_code ec;
            CHECK(image_store(cs).verify(ec).ok());
            CHECK(count_files(tmp.path / "ingest") <= 1);
            if (std::filesystem::exists(ingest_file)) {
                auto partial = read_file(ingest_file);
                CHECK(std::string_view(data).starts_with(partial));
                largest_partial = std::max<std::uint64_t>(largest_partial, partial.size());
            }
        }
        // Killed writers left partial data that later writers resumed from.
        CHECK(largest_partial > 0);
        cz::memory_source src(cz::as_bytes(data));
        auto d = cs.ingest(src, expected);
        CHECK(d.digest == expected.digest);
        CHECK(read_file(cs.blob_path(expected.digest)) == data);
        CHECK(count_files(tmp.path / "ingest") == 0);
    }

    TEST_CASE("images: tag, lookup, list, untag; index.json as skopeo writes it") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto one = oci_test::put_image(cs, "one");
        auto two = oci_test::put_image(cs, "two");
        images.tag("docker.io/library/app:1", one.manifest);
        images.tag("docker.io/library/app:2", two.manifest);
        images.tag("localhost:5000/x/y@" + one.manifest.digest.str(), one.manifest);

        auto raw = nlohmann::json::parse(read_file(tmp.path / "content/index.json"));
        REQUIRE(raw["manifests"].size() == 3);
        CHECK(raw["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] ==
              "docker.io/library/app:1");
        CHECK(raw["manifests"][0]["digest"] == one.manifest.digest.str());

        std::error_code ec;
        std::string detail;
        CHECK(images.lookup("docker.io/library/app:2", ec).digest == two.manifest.digest);
        CHECK(images.lookup("app:1", ec).digest == one.manifest.digest); // normalised
        images.lookup("app", ec, &detail);                               // app:latest
        CHECK(ec == errc::not_found);
        CHECK(detail == "no image named \"app\"");
        // find() gives the name an entry is stored under, for untag().
        auto found = images.find("app:2", ec);
        CHECK(!ec);
        CHECK(found.name == "docker.io/library/app:2");
        CHECK(found.target.digest == two.manifest.digest);
        images.find("app:3", ec, &detail);
        CHECK(ec == errc::not_found);
        CHECK(detail == "no image named \"app:3\"");

        // Re-tagging moves the name; the old target stays for other names.
        images.tag("docker.io/library/app:1", two.manifest);
        auto entries = images.list(ec);
        REQUIRE(entries.size() == 3);
        CHECK(entries.back().name == "docker.io/library/app:1");
        CHECK(entries.back().target.digest == two.manifest.digest);

        images.untag("docker.io/library/app:2", ec);
        CHECK(!ec);
        images.untag("docker.io/library/app:2", ec);
        CHECK(ec == errc::not_found);
        CHECK(images.list(ec).size() == 2);

        // What a tag may point at, and what a name may be.
        images.tag("a:b", one.layer, ec, &detail);
        CHECK(ec == errc::unsupported_media_type);
        images.tag("a:b", describe(media_type::oci_manifest, "{}not stored"), ec, &detail);
        CHECK(ec == errc::not_found);
        images.tag("[::1]:5000/app:1", one.manifest, ec, &detail);
        CHECK(ec == errc::invalid_reference);
        images.tag("", one.manifest, ec, &detail);
        CHECK(ec == errc::invalid_reference);
    }

    TEST_CASE("images: concurrent tags from many processes are all kept (index.lock)") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        auto img = oci_test::put_image(cs, "x");
        int ok = in_processes(8, [&](int p) {
            auto store = content_store::open(tmp.path);
            image_store images(store);
            for (int i = 0; i < 10; ++i) {
                std::error_code ec;
                images.tag(fmt::format("docker.io/library/p{}:{}", p, i), img.manifest, ec);
                if (ec) return false;
            }
            return true;
        });
        CHECK(ok == 8);
        std::error_code ec;
        std::set<std::string> names;
        for (const auto& e : image_store(cs).list(ec))
            names.insert(e.name);
        CHECK(names.size() == 80);
    }

    TEST_CASE("images: resolve an index to the manifest for a platform") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto amd = oci_test::put_image(cs, "amd64", "amd64");
        auto arm = oci_test::put_image(cs, "arm64", "arm64", "v8");
        image_index ix;
        ix.media_type = std::string(media_type::oci_index);
        ix.manifests = {amd.manifest, arm.manifest};
        ix.manifests[0].platform = platform{"linux", "amd64", "", "", {}};
        ix.manifests[1].platform = platform{"linux", "arm64", "v8", "", {}};
        auto ix_desc = cs.put(media_type::oci_index, serialize(ix));
        images.tag("docker.io/library/multi:1", ix_desc);

        std::error_code ec;
        std::string detail;
        auto top = images.lookup("multi:1", ec);
        CHECK(images.resolve(top, parse_platform("linux/amd64"), ec).digest == amd.manifest.digest);
        CHECK(images.resolve(top, parse_platform("linux/aarch64"), ec).digest ==
              arm.manifest.digest);
        images.resolve(top, parse_platform("linux/s390x"), ec, &detail);
        CHECK(ec == errc::no_matching_platform);
        CHECK(detail.find("linux/amd64, linux/arm64/v8") != std::string::npos);
        // A manifest resolves to itself.
        CHECK(images.resolve(amd.manifest, parse_platform("linux/s390x"), ec).digest ==
              amd.manifest.digest);

        // Indexes nested more than 8 deep are refused.
        auto d = ix_desc;
        for (int i = 0; i < 9; ++i) {
            image_index outer;
            outer.manifests = {d};
            outer.manifests[0].platform.reset();
            d = cs.put(media_type::oci_index, serialize(outer));
        }
        images.resolve(d, parse_platform("linux/amd64"), ec, &detail);
        CHECK(ec == errc::index_too_deep);
        // A missing index blob.
        image_index lonely;
        lonely.manifests = {describe(media_type::oci_manifest, "not stored")};
        auto missing = describe(media_type::oci_index, serialize(lonely));
        images.resolve(missing, parse_platform("linux/amd64"), ec, &detail);
        CHECK(ec == errc::not_found);
    }

    TEST_CASE("store: verify re-hashes every blob and walks every reference") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto img = oci_test::put_image(cs, "content");
        images.tag("docker.io/library/v:1", img.manifest);
        std::error_code ec;
        auto report = images.verify(ec);
        CHECK(!ec);
        CHECK(report.ok());
        CHECK(report.blobs == 3);

        // A corrupted layer, a missing config, a stray file.
        auto layer = cs.blob_path(img.layer.digest);
        std::filesystem::permissions(layer, std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::add);
        auto bytes = read_file(layer);
        bytes[700] ^= 1;
        write_file(layer, bytes);
        cs.remove(img.config.digest, ec);
        write_file(tmp.path / "content/blobs/sha256/stray", "x");
        report = images.verify(ec);
        CHECK(!ec);
        REQUIRE(report.problems.size() == 3);
        std::string all;
        for (const auto& p : report.problems)
            all += p + "\n";
        CAPTURE(all);
        CHECK(all.find("blobs/sha256/" + img.layer.digest.hex() + ": content hashes to") !=
              std::string::npos);
        CHECK(all.find("blobs/sha256/stray: not a sha256 blob name") != std::string::npos);
        CHECK(all.find("index.json docker.io/library/v:1 -> config " + img.config.digest.str() +
                       ": missing") != std::string::npos);
    }

    TEST_CASE("store: gc removes what no reference reaches") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto kept = oci_test::put_image(cs, "kept");
        auto dropped = oci_test::put_image(cs, "dropped");
        images.tag("docker.io/library/kept:1", kept.manifest);
        std::error_code ec;
        // Young blobs survive the default grace.
        auto report = images.gc({}, ec);
        CHECK(!ec);
        CHECK(report.removed == 0);
        CHECK(report.kept == 3);
        // A dry run reports what it would remove and removes nothing.
        gc_options dry;
        dry.grace = std::chrono::seconds(0);
        dry.dry_run = true;
        report = images.gc(dry, ec);
        CHECK(!ec);
        CHECK(report.removed == 3);
        CHECK(report.bytes ==
              std::uint64_t(dropped.manifest.size + dropped.config.size + dropped.layer.size));
        CHECK(cs.contains(dropped.layer.digest));
        CHECK(cs.contains(dropped.manifest.digest));
        report = images.gc({std::chrono::seconds(0)}, ec);
        CHECK(report.removed == 3);
        CHECK(report.bytes ==
              std::uint64_t(dropped.manifest.size + dropped.config.size + dropped.layer.size));
        CHECK(cs.contains(kept.layer.digest));
        CHECK(!cs.contains(dropped.layer.digest));
        CHECK(images.verify(ec).ok());
        // Untag, gc: empty.
        images.untag("docker.io/library/kept:1", ec);
        images.gc({std::chrono::seconds(0)}, ec);
        CHECK(cs.list(ec).empty());
    }

    TEST_CASE("store: gc removes abandoned ingest files, never one a writer holds") {
        temp_dir tmp;
        auto cs = content_store::open(tmp.path);
        image_store images(cs);
        auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
        auto partial = [&](const std::string& content, std::size_t written) {
            std::error_code wec;
            auto w = cs.begin_write(describe(cz::oci::media_type::oci_layer, content), wec);
            REQUIRE(!wec);
            w.write(cz::as_bytes(std::string_view(content).substr(0, written)), wec);
            REQUIRE(!wec);
            return w;
        };
        auto abandoned_bytes = pattern(5000, 1);
        { auto w = partial(abandoned_bytes, 3000); } // dropped: the ingest stays, unlocked
        auto abandoned =
            cs.ingest_dir() / ("sha256-" + cz::sha256(cz::as_bytes(abandoned_bytes)).hex());
        REQUIRE(std::filesystem::exists(abandoned));
        std::filesystem::last_write_time(abandoned, old);
        auto young_bytes = pattern(5000, 2);
        { auto w = partial(young_bytes, 1000); }
        auto held_bytes = pattern(5000, 3);
        auto held = partial(held_bytes, 2000); // a live writer, stalled for two days
        auto held_path = cs.ingest_dir() / ("sha256-" + cz::sha256(cz::as_bytes(held_bytes)).hex());
        std::filesystem::last_write_time(held_path, old);

        std::error_code ec;
        gc_options options;
        auto report = images.gc(options, ec);
        REQUIRE(!ec);
        CHECK(report.ingests_removed == 1);
        CHECK(report.ingest_bytes == 3000);
        CHECK(!std::filesystem::exists(abandoned));
        CHECK(count_files(cs.ingest_dir()) == 2);
        // The stalled writer finishes its blob.
        held.write(cz::as_bytes(std::string_view(held_bytes).substr(2000)), ec);
        REQUIRE(!ec);
        auto d = held.commit(ec);
        REQUIRE(!ec);
        CHECK(cs.read(d, 1 << 20) == held_bytes);
        // An age of 0 takes the young one too.
        options.ingest_age = std::chrono::seconds(0);
        report = images.gc(options, ec);
        CHECK(report.ingests_removed == 1);
        CHECK(count_files(cs.ingest_dir()) == 0);
    }

} // TEST_SUITE
