// gzip/zstd agreement with the real tools: what `gzip` and `zstd` write, cz reads; what cz writes,
// `gzip -dc` and `zstd -dc` read.
#include <cz/core/compression.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

namespace {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/cz-core-test.XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~temp_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

void write_file(const std::string& path, cz::bytes_view data) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

cz::byte_buffer read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), {});
    return cz::to_buffer(s);
}

cz::byte_buffer sample() {
    std::mt19937 rng(42);
    cz::byte_buffer b(2'500'000);
    for (auto& x : b) x = std::byte(rng() % 4 == 0 ? rng() : 'x');
    return b;
}

} // namespace

TEST_SUITE("core") {

TEST_CASE("cz decodes what gzip and zstd write, and they decode what cz writes") {
    temp_dir dir;
    auto input = sample();
    write_file(dir.path + "/in", input);
    struct tool {
        const char* name;
        cz::compression format;
        const char* compress_cmd;
        const char* decompress_cmd;
    };
    for (auto t : {tool{"gzip", cz::compression::gzip, "gzip -c -6", "gzip -dc"},
                   tool{"zstd", cz::compression::zstd, "zstd -q -c -3", "zstd -q -dc"}}) {
        CAPTURE(t.name);
        if (!have(t.name)) {
            MESSAGE("skipped: ", t.name, " is not installed (scripts/install-deps installs it)");
            continue;
        }
        // Peer -> cz, two members/frames back to back.
        std::string packed = dir.path + "/peer";
        REQUIRE(std::system(fmt::format("{0} {1}/in > {2} && {0} {1}/in >> {2}", t.compress_cmd,
                                        dir.path, packed).c_str()) == 0);
        auto bytes = read_file(packed);
        cz::memory_source mem(bytes);
        cz::decompressing_source dec(mem);
        std::error_code ec;
        auto out = cz::read_all(dec, std::size_t(1) << 30, ec);
        CHECK(!ec);
        CHECK(dec.format() == t.format);
        auto twice = input;
        twice.insert(twice.end(), input.begin(), input.end());
        CHECK(out == twice);

        // cz -> peer.
        cz::byte_buffer ours;
        cz::buffer_sink sink(ours);
        cz::compressing_sink enc(sink, t.format);
        enc.write(input, ec);
        enc.finish(ec);
        REQUIRE(!ec);
        write_file(dir.path + "/ours", ours);
        REQUIRE(std::system(fmt::format("{} {}/ours > {}/back", t.decompress_cmd, dir.path,
                                        dir.path).c_str()) == 0);
        CHECK(read_file(dir.path + "/back") == input);
    }
}

}
