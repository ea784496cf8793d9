// The cz tool's command line, as a user meets it: exit code 0 on success, 1 with one line
// "cz: what: why" on stderr for an error, 2 with CLI11's usage message for a bad flag or value,
// whether CLI11 finds it while parsing or a command's run step finds it (a size that
// parse_size_option rejects).
#include "cz_tool.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace cli_test;
using namespace cz_test;

TEST_SUITE("cli") {

    TEST_CASE("a bad size is a usage error, found while running the command") {
        temp_dir dir("cz-cli");
        write_file(dir / "plain", "hello\n");

        auto o = run_cz(dir, "decompress --max-output 12Q " + quote(dir / "plain"));
        CHECK(o.rc == 2);
        CHECK(o.out.empty());
        CHECK(contains(o.err, "--max-output: '12Q' is not a size"));
        CHECK(contains(o.err, "Run with --help"));
        CHECK(!contains(o.err, "cz: "));

        // ext4 create checks its sizes before it creates the image.
        auto image = dir / "out.img";
        o = run_cz(dir, "ext4 create " + quote(image) + " --from-tar " + quote(dir / "plain") +
                            " --size 1.5.5");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--size: '1.5.5' is not a size"));
        CHECK(!std::filesystem::exists(image));

        o = run_cz(dir, "ext4 create " + quote(image) + " --from-tar " + quote(dir / "plain") +
                            " --free lots");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--free: 'lots' is not a size"));
        CHECK(!std::filesystem::exists(image));
    }

    TEST_CASE("a good size is used") {
        if (!have("gzip")) CZ_SKIP("gzip is not installed");
        temp_dir dir("cz-cli");
        auto packed = dir / "hello.gz";
        sh_ok("printf 'hello\\n' | gzip -c > " + quote(packed));

        auto o = run_cz(dir, "decompress --max-output 1K " + quote(packed));
        CHECK(o.rc == 0);
        CHECK(o.out == "hello\n");
        CHECK(o.err.empty());

        // Over the limit: an error of the data, not of the usage.
        o = run_cz(dir, "decompress --max-output 3 " + quote(packed));
        CHECK(o.rc == 1);
        CHECK(o.err.rfind("cz: " + packed + ": ", 0) == 0);
        CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
    }

    TEST_CASE("errors CLI11 finds while parsing are usage errors") {
        temp_dir dir("cz-cli");
        auto o = run_cz(dir, "tar create " + quote(dir.str()) + " --compress lz4");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--compress"));
        CHECK(o.out.empty());

        o = run_cz(dir, "tar list --no-such-flag");
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--no-such-flag"));

        o = run_cz(dir, "ext4 create " + quote(dir / "x.img"));
        CHECK(o.rc == 2);
        CHECK(contains(o.err, "--from-tar"));

        o = run_cz(dir, "");
        CHECK(o.rc == 2);
    }

    // main() builds only the part of the command tree that the command line names: each command
    // `cz --help` lists must still be found, with cz's own --root before it or not.
    TEST_CASE("every command cz --help lists has its help") {
        temp_dir dir("cz-cli");
        auto all = run_cz(dir, "--help");
        REQUIRE(all.rc == 0);
        auto at = all.out.find("Subcommands:\n");
        REQUIRE(at != std::string::npos);
        std::vector<std::string> names;
        std::istringstream lines(all.out.substr(at + 13));
        for (std::string line; std::getline(lines, line) && line.starts_with("  ");)
            names.push_back(line.substr(2, line.find(' ', 2) - 2));
        CHECK(names.size() >= 20);
        for (const auto& name : names) {
            for (const std::string& root : {std::string(), "--root " + quote(dir.str()) + " ",
                                            "--root=" + quote(dir.str()) + " "}) {
                CAPTURE(root + name);
                auto o = run_cz(dir, root + name + " --help");
                CHECK(o.rc == 0);
                CHECK(contains(o.out, "Usage: cz " + name + " "));
            }
        }
        auto o = run_cz(dir, "no-such-command");
        CHECK(o.rc == 2);
        CHECK(o.out.empty());
    }

    TEST_CASE("an error is one line and exit code 1") {
        temp_dir dir("cz-cli");
        auto missing = dir / "missing";
        for (const char* command : {"digest", "decompress", "tar list", "tar cat"}) {
            CAPTURE(command);
            auto o = run_cz(dir, std::string(command) + " " + quote(missing));
            CHECK(o.rc == 1);
            CHECK(o.out.empty());
            CHECK(o.err == "cz: " + missing + ": No such file or directory\n");
        }
    }

    TEST_CASE("a bad archive is named with the header's offset") {
        temp_dir dir("cz-cli");
        std::filesystem::create_directory(dir / "tree");
        write_file(dir / "tree/a", "alpha\n");
        auto o = run_cz(dir, "tar create --mtime 7 -o " + quote(dir / "t.tar") + " " +
                                 quote(dir / "tree"));
        REQUIRE(o.rc == 0);
        // Corrupt the first header: a mode digit, so the checksum no longer matches.
        std::string bytes = read_file(dir / "t.tar");
        REQUIRE(bytes.size() > 1024);
        bytes[100] = bytes[100] == '0' ? '1' : '0';
        write_file(dir / "bad.tar", bytes);
        o = run_cz(dir, "tar list " + quote(dir / "bad.tar"));
        CHECK(o.rc == 1);
        CHECK(o.err ==
              "cz: " + (dir / "bad.tar") + ": tar header at offset 0: header checksum mismatch\n");
        auto image = dir / "x.img";
        o = run_cz(dir, "ext4 create " + quote(image) + " --from-tar " + quote(dir / "bad.tar"));
        CHECK(o.rc == 1);
        CHECK(o.err == "cz: " + (dir / "bad.tar") +
                           ": layer 1: tar header at offset 0: header checksum mismatch\n");
        CHECK(!std::filesystem::exists(image));
    }

    TEST_CASE("commands run with their options") {
        temp_dir dir("cz-cli");
        auto o = run_cz(dir, "version");
        CHECK(o.rc == 0);
        CHECK(o.out.rfind("cz ", 0) == 0);

        std::filesystem::create_directory(dir / "tree");
        write_file(dir / "tree/a", "alpha\n");
        o = run_cz(dir,
                   "tar create --mtime 7 -o " + quote(dir / "t.tar") + " " + quote(dir / "tree"));
        REQUIRE(o.rc == 0);
        o = run_cz(dir, "tar list --json " + quote(dir / "t.tar"));
        CHECK(o.rc == 0);
        CHECK(contains(o.out, "\"name\":\"a\""));
        CHECK(contains(o.out, "\"mtime\":7"));
        o = run_cz(dir, "tar cat " + quote(dir / "t.tar"));
        CHECK(o.rc == 0);
        CHECK(o.out == "alpha\n");
    }

} // TEST_SUITE
