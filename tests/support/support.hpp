// What every test program shares: skipping with a reason, temporary directories, looking for a
// tool, running a shell command, small file helpers. Each test program links main.cpp beside
// this file, which reports every test case's outcome (see there).
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>

namespace cz_test {

// Marks the running test case as skipped, with one line saying why. The case's outcome is then
// "skipped" in scripts/test's summary (unless a check had already failed). Use CZ_SKIP to
// return from the test case at the same time.
void skip(std::string_view reason);

#define CZ_SKIP(reason)                                                                          \
    do {                                                                                         \
        ::cz_test::skip(reason);                                                                 \
        return;                                                                                  \
    } while (0)

// True when running as root (loop mounts, network namespaces).
inline bool is_root() { return ::geteuid() == 0; }

// True when `tool` is on PATH.
inline bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// A directory under $TMPDIR (or /tmp), removed with everything in it when the object goes.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(std::string_view prefix = "cz-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + ".XXXXXX")).string();
        REQUIRE(::mkdtemp(tmpl.data()));
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string str() const { return path.string(); }
    std::string operator/(std::string_view name) const { return (path / name).string(); }
};

// Quotes `s` for /bin/sh.
inline std::string quote(std::string_view s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

// Runs a shell command; returns its exit status (128 + signal when killed, -1 when it could not
// run) and, with `out`, its standard output.
inline int sh(const std::string& command, std::string* out = nullptr) {
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return -1;
    char buf[65536];
    while (auto n = std::fread(buf, 1, sizeof buf, p))
        if (out) out->append(buf, n);
    int status = ::pclose(p);
    if (status == -1) return -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs a shell command that must succeed; returns its standard output.
inline std::string sh_ok(const std::string& command) {
    std::string out;
    int rc = sh(command, &out);
    REQUIRE_MESSAGE(rc == 0, command, " exited ", rc);
    return out;
}

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

inline void write_file(const std::filesystem::path& path, std::string_view data) {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
    REQUIRE_MESSAGE(f.good(), "writing ", path.string());
}

// Where the test data in tests/data is (meson passes CZ_SOURCE_ROOT).
inline std::filesystem::path data_dir() {
    const char* root = std::getenv("CZ_SOURCE_ROOT");
    REQUIRE_MESSAGE(root, "CZ_SOURCE_ROOT is not set (run the tests through meson test)");
    return std::filesystem::path(root) / "tests" / "data";
}

} // namespace cz_test
