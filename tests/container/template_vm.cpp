// VM templates (cz/vm/template.hpp) with the real guest: cz-init booted to its agent's port on
// Debian's kernel, saved, and restored as clones whose agents each answer a handshake and a call,
// one after the other and two at once (suite vm).
#include <cz/vm/template.hpp>

#include "../vm/support.hpp"

#include <cz/agent/client.hpp>
#include <cz/container/guest.hpp>
#include <cz/vm/qemu.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/use_awaitable.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace {

namespace fs = std::filesystem;

struct guest {
    fs::path root;
    cz::vm::config cfg;
    cz::vm::qemu_options qemu;
    cz::vm::template_options tpl;
};

// The virtserialport cz-init's agent opens once it is ready (its id is what the template waits
// for).
std::vector<std::string> agent_port_words(const fs::path& state_dir) {
    return {"-device",
            "virtio-serial-device",
            "-chardev",
            "socket,id=agent,server=on,wait=off,path=" + (state_dir / "agent.sock").string(),
            "-device",
            "virtserialport,id=agentport,chardev=agent,name=cz.agent"};
}

guest make_guest(const fs::path& root) {
    auto kernel = cz::vm::test::debian_kernel({"virtio_console.ko", "virtio_blk.ko"});
    std::erase_if(kernel.modules, [](const fs::path& m) {
        return m.filename().string().find("vsock") != std::string::npos;
    });
    auto init = cz::vm::test::required_env_path("CZ_INIT");
    guest g;
    g.root = root;
    g.cfg.kernel = kernel.image;
    std::error_code ec;
    std::string why;
    g.cfg.initrd = cz::container::ensure_initramfs(root, init, kernel, ec, &why);
    if (ec) throw std::runtime_error("initramfs: " + why);
    g.cfg.root = root;
    g.cfg.vsock.reset();
    g.cfg.accel = cz::vm::accel_mode::tcg;
    g.cfg.append = "cz.log=info cz.agent=serial:cz.agent";
    auto disk = root / "disk.img";
    cz_test::write_file(disk, std::string(1 << 20, '\0'));
    g.cfg.disks = {{disk, true}};
    g.qemu.devices.push_back(
        [](cz::vm::device_context& d) { return agent_port_words(d.state_dir()); });
    g.tpl.ready_port = "agentport";
    g.tpl.layout = "agentport";
    return g;
}

// A clone's agent: connect to its port, handshake, ask for its statistics.
asio::awaitable<std::string> talk(cz::vm::qemu_vm& vm) {
    using tuple_t = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
    auto ex = co_await asio::this_coro::executor;
    asio::local::stream_protocol::socket socket(ex);
    auto [cec] = co_await socket.async_connect(
        asio::local::stream_protocol::endpoint((vm.state_dir() / "agent.sock").string()),
        tuple_t{});
    if (cec) co_return "connect: " + cec.message();
    cz::agent::client c(std::move(socket));
    auto [hec, session] = co_await c.async_handshake(tuple_t{});
    (void)session;
    if (hec) co_return "handshake: " + hec.message();
    // The client runs (reads replies) while the call waits; the call closes it when answered.
    auto call = [&c]() -> asio::awaitable<std::error_code> {
        cz_agent_SetHostname name{};
        std::error_code ec;
        cz::agent::set_string(name.hostname, "clone", ec);
        auto [rec, r] = co_await c.async_call(name, tuple_t{});
        (void)r;
        c.close();
        co_return rec;
    };
    using namespace asio::experimental::awaitable_operators;
    auto [run_result, rec] = co_await (c.async_run(tuple_t{}) && call());
    (void)run_result;
    co_return rec ? "SetHostname: " + rec.message() : std::string("ok");
}

} // namespace

TEST_SUITE("vm template") {

    TEST_CASE("template: made once, clones restored one after the other and two at once answer") {
        cz_test::temp_dir tmp;
        auto g = make_guest(tmp.path);
        asio::io_context ctx;
        std::error_code ec;
        cz::error_info why;
        auto missing = cz::vm::find_template(g.cfg, g.qemu, g.tpl, ec, why);
        CHECK(ec == cz::vm::errc::template_not_found);
        auto t = cz::vm::make_template(ctx, g.cfg, g.qemu, g.tpl, ec, why);
        REQUIRE_MESSAGE(!ec, ec.message() << ": " << cz::to_string(why));
        CHECK(fs::exists(t.state));
        CHECK(fs::exists(t.memory));
        CHECK(t.memory_size == g.cfg.memory_mib << 20);
        auto found = cz::vm::find_template(g.cfg, g.qemu, g.tpl, ec, why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        CHECK(found.key == t.key);

        auto clone_opts = g.qemu;
        cz::vm::use_template(t, clone_opts);
        for (int i = 0; i < 2; ++i) {
            CAPTURE(i);
            cz::vm::qemu_vm vm(ctx, g.cfg, clone_opts);
            vm.start(ec);
            REQUIRE_MESSAGE(!ec, cz::to_string(vm.error_detail()));
            cz::vm::restore_clone(vm, ctx, t, ec, why);
            REQUIRE_MESSAGE(!ec, cz::to_string(why));
            std::string said;
            bool done = false;
            asio::co_spawn(ctx, talk(vm), [&](std::exception_ptr, std::string s) {
                said = std::move(s);
                done = true;
            });
            ctx.restart();
            while (!done && ctx.run_one() > 0) {
            }
            CHECK(said == "ok");
            vm.stop({std::chrono::milliseconds(0), std::chrono::seconds(3)}, ec);
        }

        cz::vm::qemu_vm a(ctx, g.cfg, clone_opts), b(ctx, g.cfg, clone_opts);
        a.start(ec);
        REQUIRE(!ec);
        b.start(ec);
        REQUIRE(!ec);
        std::string said_a, said_b;
        int done = 0;
        auto restore_and_talk = [&](cz::vm::qemu_vm& vm,
                                    std::string& said) -> asio::awaitable<void> {
            cz::error_info w;
            auto e = co_await cz::vm::async_restore_clone(vm, t, w);
            if (e)
                said = "restore: " + cz::to_string(w);
            else
                said = co_await talk(vm);
            ++done;
        };
        asio::co_spawn(ctx, restore_and_talk(a, said_a), asio::detached);
        asio::co_spawn(ctx, restore_and_talk(b, said_b), asio::detached);
        ctx.restart();
        while (done < 2 && ctx.run_one() > 0) {
        }
        CHECK(said_a == "ok");
        CHECK(said_b == "ok");
        a.stop({std::chrono::milliseconds(0), std::chrono::seconds(3)}, ec);
        b.stop({std::chrono::milliseconds(0), std::chrono::seconds(3)}, ec);

        std::vector<cz::vm::template_info> listed = cz::vm::list_templates(g.root, ec);
        REQUIRE(listed.size() == 1);
        CHECK(listed[0].key == t.key);
        cz::vm::remove_template(g.root, t.key, ec);
        CHECK(!ec);
        CHECK(!fs::exists(t.dir));
        CHECK(!fs::exists(t.memory));
    }

    TEST_CASE("template: a truncated state file or a replaced memory file makes it invalid") {
        cz_test::temp_dir tmp;
        auto g = make_guest(tmp.path);
        asio::io_context ctx;
        std::error_code ec;
        cz::error_info why;
        auto t = cz::vm::make_template(ctx, g.cfg, g.qemu, g.tpl, ec, why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        fs::resize_file(t.state, t.state_size / 2);
        cz::vm::find_template(g.cfg, g.qemu, g.tpl, ec, why);
        CHECK(ec == cz::vm::errc::template_invalid);
        CHECK(cz::to_string(why).find("state") != std::string::npos);
        // Made again: found, then its memory file replaced by another of the same size.
        t = cz::vm::make_template(ctx, g.cfg, g.qemu, g.tpl, ec, why);
        REQUIRE(!ec);
        cz::vm::find_template(g.cfg, g.qemu, g.tpl, ec, why);
        CHECK(!ec);
        auto copy = t.memory.string() + ".copy";
        fs::copy_file(t.memory, copy);
        fs::rename(copy, t.memory);
        cz::vm::find_template(g.cfg, g.qemu, g.tpl, ec, why);
        CHECK(ec == cz::vm::errc::template_invalid);
        // A different kernel command line is another key: not found.
        auto other = g.cfg;
        other.append += " cz.other=1";
        cz::vm::find_template(other, g.qemu, g.tpl, ec, why);
        CHECK(ec == cz::vm::errc::template_not_found);
        cz::vm::remove_template(g.root, t.key, ec);
        CHECK(!ec);
    }

} // TEST_SUITE
