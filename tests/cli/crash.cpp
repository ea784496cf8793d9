// Crash consistency of the store: `cz image load` killed with SIGKILL at 20 points of a load from
// an OCI layout directory and at 20 of a load from an OCI archive. After each kill `cz store
// verify` must be clean (every blob under blobs/ complete and hashing to its name, nothing
// half-written visible), and the next load into the same root must complete and leave the image
// listed.
#include "../oci/image.hpp"
#include "cz_tool.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstring>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace cz_test;
using namespace cli_test;

namespace {

// An OCI layout in `dir`/content holding crash:1, an image of `layers` layers of `size` random
// bytes each (random: the store's work is hashing and writing, not compressing).
std::string make_layout(const std::filesystem::path& dir, int layers, std::size_t size) {
    namespace oci = cz::oci;
    auto cs = oci::content_store::open(dir);
    std::mt19937_64 rng(42);
    oci::manifest m;
    m.media_type = std::string(oci::media_type::oci_manifest);
    oci::image_config c;
    c.architecture = "amd64";
    c.os = "linux";
    for (int i = 0; i < layers; ++i) {
        std::string bytes(size, '\0');
        for (std::size_t j = 0; j + 8 <= size; j += 8) {
            auto v = rng();
            std::memcpy(bytes.data() + j, &v, 8);
        }
        auto layer = cs.put(oci::media_type::oci_layer, bytes);
        m.layers.push_back(layer);
        c.diff_ids.push_back(layer.digest);
    }
    m.config = cs.put(oci::media_type::oci_config, oci::serialize(c));
    auto manifest = cs.put(oci::media_type::oci_manifest, oci::serialize(m));
    oci::image_store(cs).tag("crash:1", manifest);
    return (dir / "content").string();
}

// How many entries `dir` has; 0 while it does not exist yet.
int entries(const std::filesystem::path& dir) {
    std::error_code ec;
    int n = 0;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        ++n;
    return n;
}

// Starts `cz --root ROOT image load LAYOUT` with its output discarded; returns its pid.
pid_t start_load(const std::string& root, const std::string& layout) {
    auto exe = cli_test::cz();
    pid_t pid = ::fork();
    if (pid == 0) {
        std::freopen("/dev/null", "w", stdout);
        std::freopen("/dev/null", "w", stderr);
        ::execl(exe.c_str(), exe.c_str(), "--root", root.c_str(), "image", "load", layout.c_str(),
                nullptr);
        ::_exit(127);
    }
    return pid;
}

} // namespace

TEST_SUITE("cz cli") {

    TEST_CASE("store: kill -9 during image load, 20 times each from a layout and an archive; "
              "verify is clean, the next load completes") {
        temp_dir tmp("cz-crash");
        auto layout_dir = make_layout(tmp.path / "source", 6, 6u << 20);
        // The same image as an OCI archive, written by cz image save.
        auto archive = (tmp.path / "crash.tar").string();
        auto saved = run_cz(tmp, "--root " + quote((tmp.path / "source").string()) +
                                     " image save crash:1 -o " + quote(archive));
        REQUIRE_MESSAGE(saved.rc == 0, saved.err);

        int status = 0;

        std::mt19937 rng(7);
        int killed_midway = 0;
        for (int i = 0; i < 40; ++i) {
            auto layout = i < 20 ? layout_dir : archive;
            INFO("kill " << i << " loading " << layout);
            // A root of its own each time, killed at a point of the load: after `stage` blobs
            // are committed, and for half the points also in the middle of the next blob's
            // ingest. (Watched on disk rather than timed: the machine's speed does not matter.)
            auto root = (tmp.path / ("root" + std::to_string(i))).string();
            int stage = std::uniform_int_distribution<int>(0, 7)(rng);
            bool mid_blob = i % 2 == 1;
            pid_t pid = start_load(root, layout);
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (std::chrono::steady_clock::now() < deadline) {
                auto committed = entries(std::filesystem::path(root) / "content/blobs/sha256");
                auto ingesting = entries(std::filesystem::path(root) / "ingest");
                if (committed >= stage && (!mid_blob || ingesting > 0)) break;
                if (::waitpid(pid, &status, WNOHANG) == pid) break; // finished first
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            auto listed = run_cz(tmp, "--root " + quote(root) + " image ls --json");
            if (WIFSIGNALED(status) && !contains(listed.out, "crash:1")) ++killed_midway;
            if (!std::filesystem::exists(std::filesystem::path(root) / "content")) continue;
            auto verify = run_cz(tmp, "--root " + quote(root) + " store verify");
            CHECK_MESSAGE(verify.rc == 0, verify.out << verify.err);
            // Only whole blobs under blobs/: names are digests, and verify re-hashed each.
            for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(root) /
                                                                     "content/blobs/sha256")) {
                auto name = f.path().filename().string();
                CHECK_MESSAGE(name.size() == 64, name);
            }
            // The next load completes from whatever the killed one left.
            auto last = run_cz(tmp, "--root " + quote(root) + " image load " + quote(layout));
            CHECK_MESSAGE(last.rc == 0, last.err);
            auto ls = run_cz(tmp, "--root " + quote(root) + " image ls --json");
            CHECK(contains(ls.out, "crash:1"));
            verify = run_cz(tmp, "--root " + quote(root) + " store verify");
            CHECK_MESSAGE(verify.rc == 0, verify.out << verify.err);
        }
        // The kills landed inside loads (before the tag), or the test shows nothing.
        CHECK(killed_midway >= 20);
    }
}
