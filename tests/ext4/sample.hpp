// A sample tree exercising every kind of node the formatter writes, built into a formatter and
// recorded as the listing the image must show (tree.hpp).
#pragma once

#include "tree.hpp"

#include <cz/ext4/formatter.hpp>

#include <random>

namespace cz_test {

struct sample_builder {
    cz::ext4::formatter& f;
    tree expected;
    std::uint64_t next_ino = 1;
    std::error_code ec{};

    static std::string hash_of(std::string_view data) {
        chunk_hasher h;
        std::error_code ec;
        h.write(cz::as_bytes(data), ec);
        return h.hex();
    }

    cz::ext4::metadata md(std::uint32_t mode, std::uint32_t uid = 0, std::uint32_t gid = 0,
                          cz::ext4::timestamp mtime = {1700000000, 123456789}) {
        cz::ext4::metadata m;
        m.mode = mode;
        m.uid = uid;
        m.gid = gid;
        m.mtime = m.atime = m.ctime = m.crtime = mtime;
        return m;
    }

    tree_entry record(const std::string& /*path*/, char type, const cz::ext4::metadata& m) {
        tree_entry e;
        e.type = type;
        e.mode = m.mode;
        e.uid = m.uid;
        e.gid = m.gid;
        e.mtime_sec = m.mtime.sec;
        e.mtime_nsec = m.mtime.nsec;
        e.ino = next_ino++;
        std::vector<std::pair<std::string, std::string>> xs;
        for (auto& x : m.xattrs) xs.push_back({x.name, x.value});
        e.xattrs = xattr_string(xs);
        return e;
    }

    // Directory path -> node (parents must exist).
    cz::ext4::node_id dir_node(const std::string& path) {
        cz::ext4::node_id n = cz::ext4::formatter::root;
        std::size_t at = 0;
        while (at < path.size()) {
            auto slash = path.find('/', at);
            if (slash == std::string::npos) slash = path.size();
            n = f.lookup(n, path.substr(at, slash - at));
            REQUIRE(n != cz::ext4::no_node);
            at = slash + 1;
        }
        return n;
    }
    std::pair<cz::ext4::node_id, std::string> split(const std::string& path) {
        auto slash = path.rfind('/');
        if (slash == std::string::npos) return {cz::ext4::formatter::root, path};
        return {dir_node(path.substr(0, slash)), path.substr(slash + 1)};
    }

    void dir(const std::string& path, const cz::ext4::metadata& m) {
        auto [p, name] = split(path);
        f.make_directory(p, name, m, ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        expected[path] = record(path, 'd', m);
    }
    cz::ext4::node_id file(const std::string& path, const cz::ext4::metadata& m, std::string_view data) {
        auto [p, name] = split(path);
        auto n = f.add_file(p, name, m, ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        cz::memory_source src(cz::as_bytes(data));
        f.write_file(n, 0, src, data.size(), ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        auto e = record(path, 'f', m);
        e.size = data.size();
        e.hash = hash_of(data);
        expected[path] = e;
        return n;
    }
    void symlink(const std::string& path, const cz::ext4::metadata& m, const std::string& target) {
        auto [p, name] = split(path);
        f.add_symlink(p, name, target, m, ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        auto e = record(path, 'l', m);
        e.size = target.size();
        e.target = target;
        expected[path] = e;
    }
    void special(const std::string& path, const cz::ext4::metadata& m, cz::ext4::file_type t,
                 std::uint32_t maj = 0, std::uint32_t min = 0) {
        auto [p, name] = split(path);
        f.add_special(p, name, t, m, maj, min, ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        char c = t == cz::ext4::file_type::char_device ? 'c'
                 : t == cz::ext4::file_type::block_device ? 'b'
                 : t == cz::ext4::file_type::fifo ? 'p' : 's';
        auto e = record(path, c, m);
        if (c == 'c' || c == 'b') e.dev = fmt::format("{}:{}", maj, min);
        expected[path] = e;
    }
    void hard_link(const std::string& path, const std::string& target) {
        auto [p, name] = split(path);
        auto [tp, tname] = split(target);
        f.add_hard_link(p, name, f.lookup(tp, tname), ec);
        REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
        expected[path] = expected[target];
    }

    // Everything the formatter supports, small enough for a unit test.
    void build(std::size_t big_dir_entries = 3000) {
        using cz::ext4::file_type;
        expected["lost+found"] = record("lost+found", 'd', md(0700, 0, 0, {0, 0}));
        dir("etc", md(0755));
        file("etc/hostname", md(0644), "cz\n");
        file("etc/shadow", md(0640, 0, 42), "root:*:1::::::\n");
        file("empty", md(0600), "");
        dir("bin", md(0755));
        dir("usr", md(0755));
        dir("usr/bin", md(0755));
        file("bin/busybox", md(04755), std::string(10000, 'b'));
        hard_link("bin/ls", "bin/busybox");
        hard_link("usr/bin/env", "bin/busybox");
        symlink("bin/sh", md(0777), "busybox");
        symlink("bin/slow", md(0777), std::string(200, 's'));
        symlink("bin/longest", md(0777), std::string(4095, 'L'));
        dir("srv", md(02775, 0, 50));
        dir("tmp", md(01777));
        dir("home", md(0755));
        dir("home/user", md(0700, 100000, 200000));
        file("home/user/big-ids", md(0600, 4000000000u, 3000000000u), "ids");
        dir("dev", md(0755));
        special("dev/null", md(0666), file_type::char_device, 1, 3);
        special("dev/sda", md(0660, 0, 6), file_type::block_device, 8, 0);
        special("dev/big", md(0600), file_type::char_device, 300, 70000);
        special("dev/fifo", md(0644), file_type::fifo);
        special("dev/sock", md(0755), file_type::socket);
        auto caps = md(0755);
        caps.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20)},
                       {"user.small", "v"},
                       {"trusted.big", std::string(3000, 't')},
                       {"user.empty", ""}};
        file("caps", caps, "#!/bin/sh\n");
        auto dx = md(0755);
        dx.xattrs = {{"user.mime_type", "inode/directory"}};
        dir("xdir", dx);
        file(std::string(255, 'n'), md(0644), "long name");
        dir("times", md(0755));
        file("times/negative", md(0644, 0, 0, {-1000, 500000000}), "past") ;
        file("times/y2100", md(0644, 0, 0, {4102444800LL, 999999999}), "future");
        std::mt19937_64 rng(42);
        std::string random(1572864 + 123, '\0');
        for (auto& c : random) c = char(rng());
        file("random.bin", md(0644), random);
        // Sparse: 10 MiB with one block of data in the middle; holes stay holes.
        {
            auto m = md(0644);
            auto n = f.add_file(f.root, "sparse", m, ec);
            REQUIRE(!ec);
            std::string data(4096, 'D');
            cz::memory_source src(cz::as_bytes(data));
            f.write_file(n, 5 << 20, src, data.size(), ec);
            REQUIRE(!ec);
            f.set_file_size(n, 10 << 20, ec);
            REQUIRE(!ec);
            std::string whole(10 << 20, '\0');
            whole.replace(5 << 20, 4096, data);
            auto e = record("sparse", 'f', m);
            e.size = whole.size();
            e.hash = hash_of(whole);
            expected["sparse"] = e;
        }
        // 1500 one-block extents: an extent tree two levels deep.
        {
            auto m = md(0644);
            auto n = f.add_file(f.root, "fragmented", m, ec);
            REQUIRE(!ec);
            std::string whole;
            for (int i = 0; i < 1500; ++i) {
                std::string blk(4096, char('a' + i % 26));
                cz::memory_source src(cz::as_bytes(blk));
                f.write_file(n, std::uint64_t(i) * 8192, src, 4096, ec);
                REQUIRE(!ec);
                whole += blk;
                if (i + 1 < 1500) whole += std::string(4096, '\0');
            }
            auto e = record("fragmented", 'f', m);
            e.size = whole.size();
            e.hash = hash_of(whole);
            expected["fragmented"] = e;
        }
        dir("big", md(0755));
        for (std::size_t i = 0; i < big_dir_entries; ++i)
            file(fmt::format("big/entry-{:06}", i), md(0644), "");
    }
};

} // namespace cz_test
