// cpio archives from cz, read by the real peer: GNU cpio (listing and extraction) through gzip.
#include <cz/vm/initramfs.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {
std::string run(const std::string& cmd) {
    std::string out;
    FILE* f = ::popen(cmd.c_str(), "r");
    REQUIRE(f);
    char buf[512];
    while (auto n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    CHECK(::pclose(f) == 0);
    return out;
}
} // namespace

TEST_SUITE("vm") {

TEST_CASE("cpio peers: GNU cpio lists and extracts a gzip initramfs written by cz") {
    auto dir = fs::temp_directory_path() / ("cz-cpio-peer-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "out");
    std::string big(300000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::ofstream(dir / "big.bin", std::ios::binary) << big;

    cz::vm::initramfs_builder b;
    b.init_script("#!/bin/sh\nexit 0\n");
    b.add_file("usr/share/big.bin", dir / "big.bin", 0640);
    b.add_symlink("bin/sh", "busybox");
    b.add_bytes("etc/hostname", "cz\n");
    b.write_gzip(dir / "initramfs.cpio.gz");

    auto listing = run("gzip -dc " + (dir / "initramfs.cpio.gz").string() + " | cpio -t --quiet");
    for (auto name : {"dev\n", "dev/console\n", "init\n", "usr/share/big.bin\n", "bin/sh\n", "etc/hostname\n"})
        CHECK(listing.find(name) != std::string::npos);

    // Extraction (no device nodes: they need root).
    run("cd " + (dir / "out").string() + " && gzip -dc ../initramfs.cpio.gz | cpio -id --quiet --no-absolute-filenames 'init' 'usr/*' 'bin/*' 'etc/*'");
    std::stringstream ss;
    ss << std::ifstream(dir / "out/usr/share/big.bin", std::ios::binary).rdbuf();
    CHECK(ss.str() == big);
    CHECK(fs::read_symlink(dir / "out/bin/sh") == "busybox");
    struct stat st {};
    REQUIRE(::stat((dir / "out/init").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755);
    REQUIRE(::stat((dir / "out/usr/share/big.bin").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
    // The verbose listing shows the console node as a character device 5,1.
    auto verbose = run("gzip -dc " + (dir / "initramfs.cpio.gz").string() + " | cpio -tv --quiet 2>/dev/null");
    CHECK(verbose.find("crw-------") != std::string::npos);
    fs::remove_all(dir);
}

} // TEST_SUITE
