// cz/vm as a program compiled with CZ_SEPARATE_COMPILATION uses it: the out-of-line code of
// cz/core, its compression piece, cz/vsock and cz/vm comes from vm_src.cpp and the program links
// with dependency('cz-vm') alone. Nothing here boots a VM: the initramfs, config checks and a
// QMP handshake against a scripted peer reach the compiled code, coroutines included.
#include <cz/vm.hpp>

#include <cz/core/compression.hpp>

#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/write.hpp>

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <fcntl.h>
#include <string>

namespace vm = cz::vm;

TEST_SUITE("separate compilation: vm") {

    TEST_CASE("a gzip initramfs holds its files in cpio newc") {
        cz_test::temp_dir tmp;
        auto path = tmp / "initramfs.cpio.gz";
        vm::initramfs_builder b;
        b.init_script("#!/bin/sh\necho hi\n").add_bytes("etc/motd", "hello from cz\n");
        b.write_gzip(path);

        cz::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        cz::fd_source file(fd.get());
        cz::decompressing_source plain(file, cz::decompressing_source::mode::gzip);
        std::error_code ec;
        auto archive = cz::to_string(cz::read_all(plain, 1 << 20, ec));
        REQUIRE(!ec);
        CHECK(archive.starts_with("070701"));
        CHECK(archive.find("etc/motd") != std::string::npos);
        CHECK(archive.find("hello from cz\n") != std::string::npos);
        CHECK(archive.find("TRAILER!!!") != std::string::npos);
    }

    TEST_CASE("a config without a kernel is refused, naming the field") {
        vm::config cfg;
        cfg.kernel = "/nonexistent/vmlinuz";
        cz::error_info what;
        std::error_code ec;
        vm::validate(cfg, what, ec);
        CHECK(ec == vm::errc::invalid_config);
        CHECK(what.message.find("kernel") != std::string::npos);
    }

    TEST_CASE("QMP: parsing, and a handshake with a scripted peer") {
        const std::string greeting =
            R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}})";
        vm::qmp_message m;
        std::error_code ec;
        CHECK(vm::parse_qmp_message(cz::as_bytes(greeting + "\r\n"), m, ec) == greeting.size() + 2);
        CHECK(m.type == vm::qmp_message::kind::greeting);
        vm::parse_qmp_message(cz::as_bytes("{\"neither\": 1}\n"), m, ec);
        CHECK(ec == vm::errc::qmp_bad_message);

        asio::io_context io;
        vm::qmp_client::socket_type client(io), server(io);
        asio::local::connect_pair(client, server);
        // The peer's side of the handshake, written ahead: the client reads the greeting, sends
        // qmp_capabilities, then reads the reply.
        asio::write(server, asio::buffer(greeting + "\r\n{\"return\": {}}\r\n"));
        vm::qmp_client qmp(std::move(client));
        std::error_code hs = vm::errc::qmp_closed;
        qmp.async_handshake([&](std::error_code e) { hs = e; });
        io.run();
        CHECK(!hs);
        CHECK(qmp.greeting()["version"]["qemu"]["major"] == 7);
    }

} // TEST_SUITE
