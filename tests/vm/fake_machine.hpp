// A cz::vm::machine with no VMM behind it, for testing code written against the concept
// (cz/vm/run.hpp) without QEMU. Like Firecracker's TestBackend beside its VsockBackend contract,
// it records every call and answers from a script: whether start fails and with what message,
// what the console says, how the guest ends, and after how long. It has no clock: "how long" is
// compared with wait_for's limit. Asynchronous completions are posted to the io_context given.
#pragma once

#include <cz/vm/machine.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace cz::vm::test {

class fake_machine {
public:
    struct script {
        // start() fails with this, and error_detail() says `vmm_message`.
        std::error_code start_error;
        std::string vmm_message;
        // What the guest writes to its console; console() has it once started.
        std::string console;
        // How the guest ends by itself, and after how long; nullopt: never, until stopped.
        exit_status exit{exit_reason::poweroff, "guest-shutdown", {}, false, {}};
        std::optional<std::chrono::milliseconds> runs_for = std::chrono::milliseconds(0);
        // wait() and wait_for() fail with this (as if the VMM went away under them).
        std::error_code wait_error;
        // The VMM ignores power-off and quit: stopping it takes SIGKILL (exit_status::forced).
        bool stop_needs_kill = false;
    };

    fake_machine(asio::io_context& ctx, script s) : ctx_(&ctx), script_(std::move(s)) {}
    fake_machine(fake_machine&&) noexcept = default;
    fake_machine& operator=(fake_machine&&) noexcept = delete;
    fake_machine(const fake_machine&) = delete;
    fake_machine& operator=(const fake_machine&) = delete;

    // Every call so far, in order: "start", "wait", "wait_for 500ms", "stop 1000ms 2000ms",
    // "async_wait", "async_stop 0ms 2000ms".
    const std::vector<std::string>& calls() const noexcept { return calls_; }

    void start(std::error_code& ec) {
        calls_.push_back("start");
        ec.clear();
        if (state_ != state::created) {
            ec = errc::already_started;
            return;
        }
        if (script_.start_error) {
            state_ = state::start_failed;
            ec = script_.start_error;
            detail_.message = script_.vmm_message;
            return;
        }
        state_ = state::running;
        state_dir_ = "/fake/vms/0";
        console_ = script_.console;
    }

    exit_status wait(std::error_code& ec) {
        calls_.push_back("wait");
        if (!check_waitable(ec)) return {};
        if (state_ == state::running) {
            if (!script_.runs_for)
                throw std::logic_error("fake_machine: wait() for a guest that never ends");
            end(script_.exit);
        }
        return status_;
    }

    exit_status wait_for(std::chrono::milliseconds limit, std::error_code& ec) {
        calls_.push_back("wait_for " + std::to_string(limit.count()) + "ms");
        if (!check_waitable(ec)) return {};
        if (state_ == state::running) {
            if (script_.runs_for && *script_.runs_for <= limit) {
                end(script_.exit);
            } else {
                // Past the limit: stopped, as qemu_vm does it (quit, then SIGKILL).
                end(stopped());
                ec = errc::timed_out;
            }
        }
        return status_;
    }

    exit_status stop(stop_options o, std::error_code& ec) {
        calls_.push_back("stop " + describe(o));
        ec.clear();
        if (state_ != state::running && state_ != state::ended) {
            ec = errc::not_running;
            return {};
        }
        if (state_ == state::running) end(stopped());
        return status_;
    }

    template <class Handler>
    void async_wait(Handler&& h) {
        calls_.push_back("async_wait");
        auto handler = share(std::forward<Handler>(h));
        if (state_ != state::running && state_ != state::ended) {
            complete(handler, errc::not_running, {});
        } else if (state_ == state::ended) {
            complete(handler, {}, status_);
        } else {
            waiters_.push_back(handler);
            if (script_.runs_for) end(script_.exit);
        }
    }

    template <class Handler>
    void async_stop(stop_options o, Handler&& h) {
        calls_.push_back("async_stop " + describe(o));
        auto handler = share(std::forward<Handler>(h));
        if (state_ != state::running && state_ != state::ended) {
            complete(handler, errc::not_running, {});
            return;
        }
        if (state_ == state::running) end(stopped());
        complete(handler, {}, status_);
    }

    bool running() const noexcept { return state_ == state::running; }
    const std::filesystem::path& state_dir() const noexcept { return state_dir_; }
    const std::string& console() const noexcept { return console_; }
    const cz::error_info& error_detail() const noexcept { return detail_; }

private:
    enum class state { created, start_failed, running, ended };
    using handler_type = std::function<void(std::error_code, exit_status)>;

    template <class Handler>
    static handler_type share(Handler&& h) {
        // std::function needs a copyable target; the handler itself may be move-only.
        auto p = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
        return [p](std::error_code ec, exit_status st) { (*p)(ec, std::move(st)); };
    }

    void complete(const handler_type& h, std::error_code ec, exit_status st) {
        asio::post(*ctx_, [h, ec, st = std::move(st)]() mutable { h(ec, std::move(st)); });
    }

    bool check_waitable(std::error_code& ec) {
        ec.clear();
        if (state_ != state::running && state_ != state::ended) {
            ec = errc::not_running;
            return false;
        }
        if (script_.wait_error) {
            ec = script_.wait_error;
            return false;
        }
        return true;
    }

    exit_status stopped() const {
        exit_status st;
        st.reason = exit_reason::stopped;
        st.forced = script_.stop_needs_kill;
        if (st.forced) st.process = {true, 9};
        return st;
    }

    void end(exit_status st) {
        state_ = state::ended;
        status_ = std::move(st);
        for (auto& w : waiters_)
            complete(w, {}, status_);
        waiters_.clear();
    }

    static std::string describe(stop_options o) {
        return std::to_string(o.powerdown.count()) + "ms " + std::to_string(o.quit.count()) + "ms";
    }

    asio::io_context* ctx_;
    script script_;
    state state_ = state::created;
    std::filesystem::path state_dir_;
    std::string console_;
    cz::error_info detail_;
    exit_status status_;
    std::vector<handler_type> waiters_;
    std::vector<std::string> calls_;
};

} // namespace cz::vm::test
