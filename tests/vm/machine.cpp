// cz/vm/machine.hpp and cz/vm/run.hpp without a VMM: the machine concept, what it is spoken in
// (exit_status), and run_machine driven against a fake machine (fake_machine.hpp) whose script
// says how the guest behaves. tests/vm/boot.cpp runs run_machine on a real qemu_vm.
#include <cz/vm/run.hpp>

#include "fake_machine.hpp"

#include <cz/vm/qemu.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

using namespace cz::vm;
using cz::vm::test::fake_machine;
using namespace std::chrono_literals;

namespace {

// The concept is a constraint: the fake and QEMU's machine model it, and a type that lacks one of
// its expressions does not.
static_assert(machine<fake_machine>);
static_assert(machine<qemu_vm>);
struct without_error_detail : fake_machine {
    using fake_machine::fake_machine;
    void error_detail() const = delete;
};
static_assert(!machine<without_error_detail>);
static_assert(!machine<int>);

using calls = std::vector<std::string>;

fake_machine::script powers_off_after(std::chrono::milliseconds d, std::string console) {
    fake_machine::script s;
    s.runs_for = d;
    s.console = std::move(console);
    return s;
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("run_machine: a guest that powers off: start, wait, how it ended, the console's end") {
    asio::io_context ctx;
    fake_machine m(ctx, powers_off_after(0ms, "one\ntwo\nthree\nCZ-DONE\n"));
    std::error_code ec;
    auto r = run_machine(m, {.timeout = 0ms, .console_lines = 2}, ec);
    CHECK_FALSE(ec);
    CHECK(m.calls() == calls{"start", "wait"});
    CHECK(r.started);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status.reason == exit_reason::poweroff);
    CHECK(r.status.clean());
    CHECK(r.console_tail == "three\nCZ-DONE\n");
}

TEST_CASE("run_machine: a guest that ends within the timeout: wait_for, its own status") {
    asio::io_context ctx;
    auto script = powers_off_after(400ms, "CZ-DONE");
    script.exit = {exit_reason::reboot, "guest-reset", {}, false, {}};
    fake_machine m(ctx, script);
    std::error_code ec;
    auto r = run_machine(m, {.timeout = 500ms}, ec);
    CHECK_FALSE(ec);
    CHECK(m.calls() == calls{"start", "wait_for 500ms"});
    CHECK_FALSE(r.timed_out);
    CHECK(r.status.reason == exit_reason::reboot);
    CHECK(r.status.clean());
    CHECK(r.console_tail == "CZ-DONE");
}

TEST_CASE("run_machine: a guest that outlives the timeout is stopped; a timeout is no error") {
    asio::io_context ctx;
    auto script = powers_off_after(0ms, "booting\nCZ-HANGING\n");
    script.runs_for.reset();
    SUBCASE("quit works") {
        fake_machine m(ctx, script);
        std::error_code ec;
        auto r = run_machine(m, {.timeout = 500ms}, ec);
        CHECK_FALSE(ec);
        CHECK(m.calls() == calls{"start", "wait_for 500ms"});
        CHECK(r.timed_out);
        CHECK(r.status.reason == exit_reason::stopped);
        CHECK_FALSE(r.status.clean());
        CHECK(r.status.describe() == "stopped");
        CHECK(r.console_tail == "booting\nCZ-HANGING\n");
        CHECK_FALSE(m.running());
    }
    SUBCASE("the VMM had to be killed") {
        script.stop_needs_kill = true;
        fake_machine m(ctx, script);
        std::error_code ec;
        auto r = run_machine(m, {.timeout = 500ms}, ec);
        CHECK_FALSE(ec);
        CHECK(r.timed_out);
        CHECK(r.status.forced);
        CHECK(r.status.describe() == "stopped (forced)");
    }
}

TEST_CASE("run_machine: start fails: its error and the VMM's message, no wait") {
    asio::io_context ctx;
    fake_machine::script script;
    script.start_error = errc::vmm_start_failed;
    script.vmm_message = "qemu-system-x86_64: -kernel /k: not a kernel";
    fake_machine m(ctx, script);
    std::error_code ec;
    auto r = run_machine(m, {.timeout = 500ms}, ec);
    CHECK(ec == errc::vmm_start_failed);
    CHECK(m.calls() == calls{"start"});
    CHECK_FALSE(r.started);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status.reason == exit_reason::vmm_error);
    CHECK(r.status.message == script.vmm_message);
    CHECK(r.status.describe() == "vmm_error: qemu-system-x86_64: -kernel /k: not a kernel");
    CHECK(r.console_tail.empty());
}

TEST_CASE("run_machine: a wait that fails passes its error on") {
    asio::io_context ctx;
    auto script = powers_off_after(0ms, "");
    script.wait_error = std::make_error_code(std::errc::io_error);
    for (auto timeout : {0ms, 500ms}) {
        CAPTURE(timeout.count());
        fake_machine m(ctx, script);
        std::error_code ec;
        auto r = run_machine(m, {.timeout = timeout}, ec);
        CHECK(ec == std::errc::io_error);
        CHECK(r.started);
        CHECK_FALSE(r.timed_out);
        CHECK(m.calls().size() == 2);
    }
}

TEST_CASE("run_machine: a panic is how the guest ended, not an error") {
    asio::io_context ctx;
    auto script =
        powers_off_after(0ms, "CZ-PANICKING\nKernel panic - not syncing: Attempted to kill init!\n");
    script.exit = {exit_reason::panic, "guest-reset", {}, false, {}};
    fake_machine m(ctx, script);
    std::error_code ec;
    auto r = run_machine(m, {.timeout = 0ms, .console_lines = 1}, ec);
    CHECK_FALSE(ec);
    CHECK(r.status.reason == exit_reason::panic);
    CHECK_FALSE(r.status.clean());
    CHECK(r.console_tail == "Kernel panic - not syncing: Attempted to kill init!\n");
}

TEST_CASE("run_machine: a machine started before is not started again") {
    asio::io_context ctx;
    fake_machine m(ctx, powers_off_after(0ms, ""));
    std::error_code ec;
    m.start(ec);
    REQUIRE_FALSE(ec);
    auto r = run_machine(m, {}, ec);
    CHECK(ec == errc::already_started);
    CHECK_FALSE(r.started);
    CHECK(m.calls() == calls{"start", "start"});
}

TEST_CASE("console_tail: the last lines, a last line without a newline counts") {
    CHECK(console_tail("a\nb\nc\n", 2) == "b\nc\n");
    CHECK(console_tail("a\nb\nc", 2) == "b\nc");
    CHECK(console_tail("a\nb\nc\n", 3) == "a\nb\nc\n");
    CHECK(console_tail("a\nb\nc\n", 10) == "a\nb\nc\n");
    CHECK(console_tail("a\nb\nc\n", 1) == "c\n");
    CHECK(console_tail("a\nb\nc\n", 0).empty());
    CHECK(console_tail("", 5).empty());
    CHECK(console_tail("\n\n\n", 2) == "\n\n");
    CHECK(console_tail("no newline at all", 1) == "no newline at all");
    CHECK(console_tail("a\r\nb\r\n", 1) == "b\r\n"); // a serial console's line ends
}

TEST_CASE("exit_status: clean() and describe()") {
    exit_status st;
    CHECK(st.reason == exit_reason::vmm_error);
    CHECK_FALSE(st.clean());
    CHECK(st.describe() == "vmm_error");
    st.process = {true, 6};
    st.message = "qemu-system-x86_64: assertion failed";
    CHECK(st.describe() == "vmm_error (signal 6): qemu-system-x86_64: assertion failed");
    st = {};
    st.reason = exit_reason::killed;
    st.process = {true, 9};
    CHECK(st.describe() == "killed (signal 9)");
    st.reason = exit_reason::stopped; // the signal is stop()'s own: not reported
    CHECK(st.describe() == "stopped");
    st.forced = true;
    CHECK(st.describe() == "stopped (forced)");
    for (auto r : {exit_reason::poweroff, exit_reason::reboot}) {
        st = {};
        st.reason = r;
        CHECK(st.clean());
        CHECK(st.describe() == to_string(r));
    }
    CHECK(to_string(exit_reason::panic) == "panic");
    CHECK(to_string(static_cast<exit_reason>(99)) == "unknown");
}

TEST_CASE("fake_machine: asynchronous waits complete on the io_context, stop ends a guest that "
          "never ends by itself") {
    // The fake is the double run_machine's tests trust: its answers follow the concept's table.
    asio::io_context ctx;
    auto script = powers_off_after(0ms, "");
    script.runs_for.reset();
    fake_machine m(ctx, script);
    std::error_code ec;
    m.wait(ec);
    CHECK(ec == errc::not_running);
    m.start(ec);
    REQUIRE_FALSE(ec);
    CHECK(m.running());
    CHECK(m.state_dir() == "/fake/vms/0");
    std::vector<exit_reason> seen;
    m.async_wait([&](std::error_code e, exit_status st) {
        CHECK_FALSE(e);
        seen.push_back(st.reason);
    });
    ctx.run();
    CHECK(seen.empty()); // still running
    m.async_stop({0ms, 2000ms}, [&](std::error_code e, exit_status st) {
        CHECK_FALSE(e);
        seen.push_back(st.reason);
    });
    CHECK(seen.empty()); // completions are posted, never run inside the initiator
    ctx.restart();
    ctx.run();
    CHECK(seen == std::vector<exit_reason>{exit_reason::stopped, exit_reason::stopped});
    CHECK_FALSE(m.running());
    CHECK(m.wait(ec).reason == exit_reason::stopped);
    CHECK_FALSE(ec);
    CHECK(m.calls() == calls{"wait", "start", "async_wait", "async_stop 0ms 2000ms", "wait"});
}

} // TEST_SUITE
