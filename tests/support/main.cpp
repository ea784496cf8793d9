// The one main() of every doctest runner.
//
// Beyond doctest's own main it does two things, so that a green run means everything ran:
// - a filter that selects no test case (`-tc=` with a typo) is a failure, not a quiet pass;
// - each test case's outcome (passed, failed, or skipped with its reason; see support.hpp) is
//   appended as one JSON line to the file named by $CZ_TEST_RESULTS, which scripts/test adds up
//   into its summary line.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "support.hpp"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <unistd.h>

namespace cz_test {

namespace {

struct run_state {
    std::string program; // argv joined: tells cases of one meson test from another's
    std::string current_case;
    std::string skip_reason;
    unsigned cases_run = 0;
    bool query = false; // --help, --list-test-cases, ...: runs nothing on purpose
};

run_state& state() {
    static run_state s;
    return s;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += char(c);
            }
        }
    }
    return out + "\"";
}

// One line per test case, written with one write() on an O_APPEND descriptor: test programs
// that meson runs in parallel never interleave their lines.
void record(std::string_view result, std::string_view reason) {
    const char* path = std::getenv("CZ_TEST_RESULTS");
    if (!path || !*path) return;
    std::string line = "{\"program\": " + json_string(state().program) +
                       ", \"case\": " + json_string(state().current_case) +
                       ", \"result\": " + json_string(result);
    if (!reason.empty()) line += ", \"reason\": " + json_string(reason);
    line += "}\n";
    int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
    ::close(fd);
}

struct outcome_listener : doctest::IReporter {
    explicit outcome_listener(const doctest::ContextOptions&) {}

    void report_query(const doctest::QueryData&) override { state().query = true; }
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData& tc) override {
        state().current_case = tc.m_name;
        state().skip_reason.clear();
        ++state().cases_run;
    }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
        bool failed = stats.failure_flags != doctest::TestCaseFailureReason::None ||
                      stats.numAssertsFailedCurrentTest > 0;
        if (failed)
            record("failed", "");
        else if (!state().skip_reason.empty())
            record("skipped", state().skip_reason);
        else
            record("passed", "");
    }
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

} // namespace

void skip(std::string_view reason) {
    static std::mutex m;
    std::lock_guard lock(m);
    if (!state().skip_reason.empty()) return; // the first reason is the one that counts
    state().skip_reason = reason.empty() ? "no reason given" : std::string(reason);
    std::printf("SKIPPED: %s: %s\n", state().current_case.c_str(), state().skip_reason.c_str());
    std::fflush(stdout);
}

} // namespace cz_test

REGISTER_LISTENER("cz_outcomes", 1, cz_test::outcome_listener);

int main(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
        if (i) cz_test::state().program += ' ';
        cz_test::state().program += argv[i];
    }
    doctest::Context context(argc, argv);
    int rc = context.run();
    if (context.shouldExit() || cz_test::state().query) return rc;
    if (cz_test::state().cases_run == 0) {
        std::fprintf(stderr, "%s: no test case matched the filters: nothing ran\n", argv[0]);
        return 1;
    }
    return rc;
}
