// Running the cz tool from a test: its path, and one run's exit code, stdout and stderr.
#pragma once

#include "support/support.hpp"

#include <cstdlib>
#include <string>
#include <unistd.h>

namespace cli_test {

// The cz tool (meson passes CZ_BUILD_ROOT; these tests are only built with the examples).
inline std::string cz() {
    const char* root = std::getenv("CZ_BUILD_ROOT");
    REQUIRE_MESSAGE(root, "CZ_BUILD_ROOT is not set (run the tests through meson test)");
    std::string path = std::string(root) + "/examples/cz";
    REQUIRE_MESSAGE(::access(path.c_str(), X_OK) == 0, path, " is missing");
    return path;
}

struct outcome {
    int rc;
    std::string out;
    std::string err;
};

// Runs `cz ARGS` with standard input from /dev/null, keeping stdout and stderr apart (stderr
// goes through a file in `dir`).
inline outcome run_cz(const cz_test::temp_dir& dir, const std::string& args) {
    outcome o;
    auto err_file = dir / "stderr";
    o.rc = cz_test::sh(
        cz_test::quote(cz()) + " " + args + " </dev/null 2>" + cz_test::quote(err_file), &o.out);
    o.err = cz_test::read_file(err_file);
    return o;
}

inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

} // namespace cli_test
