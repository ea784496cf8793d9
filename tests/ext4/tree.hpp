// Helpers shared by the ext4 tests (beside tests/support): e2fsck, loop mounts, and a canonical
// listing of a tree (names, types, modes, owners, sizes, content hashes, symlink targets, device
// numbers, hard-link identity, xattrs, mtimes) taken from a host directory (a loop mount, a GNU
// tar extraction, an umoci bundle) or from an image through cz::ext4::reader, so that two views
// of the same tree compare as two maps.
#pragma once

#include "support/support.hpp"

#include <cz/core/sha256.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/ext4/reader.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace cz_test {

// e2fsck -fn exit status (0: clean); the output goes to `log`.
inline int fsck(const std::string& image, std::string* log = nullptr) {
    return sh("e2fsck -fn " + quote(image) + " 2>&1", log);
}

// A read-only loop mount, undone (umount + losetup -d) on destruction, also on failure. When it
// fails, `log` says why.
struct loop_mount {
    std::string dir;
    std::string dev;
    std::string log;
    bool mounted = false;
    loop_mount(const std::string& image, const std::string& where) : dir(where) {
        ::mkdir(dir.c_str(), 0755);
        std::string out;
        if (sh("losetup --find --show --read-only " + quote(image) + " 2>&1", &out) != 0) {
            log = "losetup: " + out;
            return;
        }
        dev = out.substr(0, out.find('\n'));
        mounted = sh("mount -t ext4 -o ro " + quote(dev) + " " + quote(dir) + " 2>&1", &log) == 0;
    }
    ~loop_mount() {
        if (mounted) sh("umount " + quote(dir));
        if (!dev.empty()) sh("losetup -d " + quote(dev));
    }
    loop_mount(const loop_mount&) = delete;
    loop_mount& operator=(const loop_mount&) = delete;
};

// A content digest that does not depend on how zeros are stored: the file is cut into 1 MiB
// chunks at fixed offsets; an all-zero chunk (a hole or written zeros) contributes one 'Z', any
// other chunk its bytes. Files with holes of terabytes hash in no time.
struct chunk_hasher {
    static constexpr std::size_t chunk = 1 << 20;
    cz::sha256_hasher h;
    std::vector<std::byte> buf;
    void zero_chunks(std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i)
            h.update(cz::as_bytes("Z"));
    }
    void add_chunk(cz::bytes_view c) {
        bool zero = std::all_of(c.begin(), c.end(), [](std::byte b) { return b == std::byte{0}; });
        if (zero)
            h.update(cz::as_bytes("Z"));
        else
            h.update(c);
    }
    // byte_sink: data in order.
    void write(cz::bytes_view d, std::error_code&) {
        while (!d.empty()) {
            std::size_t k = std::min(d.size(), chunk - buf.size());
            buf.insert(buf.end(), d.begin(), d.begin() + std::ptrdiff_t(k));
            d = d.subspan(k);
            if (buf.size() == chunk) {
                add_chunk(buf);
                buf.clear();
            }
        }
    }
    void finish(std::error_code&) {}
    std::string hex() {
        if (!buf.empty()) add_chunk(buf);
        buf.clear();
        return h.final().hex().substr(0, 16);
    }
};

// The chunk digest of a host file, skipping holes with SEEK_DATA.
inline std::string host_file_hash(int fd, std::uint64_t size) {
    chunk_hasher ch;
    std::vector<std::byte> b(chunk_hasher::chunk);
    std::uint64_t pos = 0;
    while (pos < size) {
        off_t data = ::lseek(fd, off_t(pos), SEEK_DATA);
        std::uint64_t next = data < 0 ? size : std::uint64_t(data);
        if (next >= pos + chunk_hasher::chunk) { // whole chunks of hole
            std::uint64_t skip =
                std::min(next, size) / chunk_hasher::chunk - pos / chunk_hasher::chunk;
            ch.zero_chunks(skip);
            pos += skip * chunk_hasher::chunk;
            if (skip == 0) break;
            continue;
        }
        std::size_t len = std::size_t(std::min<std::uint64_t>(chunk_hasher::chunk, size - pos));
        ssize_t r = ::pread(fd, b.data(), len, off_t(pos));
        REQUIRE(r == ssize_t(len));
        ch.add_chunk({b.data(), len});
        pos += len;
    }
    return ch.h.final().hex().substr(0, 16);
}

struct tree_entry {
    char type = '?';
    std::uint32_t mode = 0, uid = 0, gid = 0;
    std::uint64_t size = 0;
    std::string hash, target, dev, xattrs, link_group;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint64_t ino = 0; // to compute link groups; not compared

    std::string str() const {
        return fmt::format("{} {:o} {}:{} size={} {} ->{} dev={} links={} xattrs={} mtime={}.{:09}",
                           type, mode, uid, gid, size, hash, target, dev, link_group, xattrs,
                           mtime_sec, mtime_nsec);
    }
};
using tree = std::map<std::string, tree_entry>;

inline std::string hex(std::string_view s) {
    std::string out;
    for (unsigned char c : s)
        out += fmt::format("{:02x}", c);
    return out;
}

inline void assign_link_groups(tree& t) {
    std::map<std::uint64_t, std::string> first;
    for (auto& [path, e] : t)
        if (e.type != 'd' && !first.count(e.ino)) first[e.ino] = path;
    for (auto& [path, e] : t)
        if (e.type != 'd') e.link_group = first[e.ino];
}

inline std::string xattr_string(std::vector<std::pair<std::string, std::string>> xs) {
    std::sort(xs.begin(), xs.end());
    std::string out;
    for (auto& [n, v] : xs)
        out += n + "=" + hex(v) + ";";
    return out;
}

// Lists the directory open as `dirfd` (relative path `rel`) into `t`. Everything goes through
// directory descriptors (fstatat, openat, readlinkat, and /proc/self/fd/N/NAME for xattrs), so
// paths of any length list, also 4095-byte ones under a mount point (lstat on the full path
// would give ENAMETOOLONG).
inline void list_host_dir(int dirfd, const std::string& rel, tree& t) {
    std::vector<std::string> names;
    {
        DIR* d = ::fdopendir(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE_MESSAGE(d, rel, ": ", std::strerror(errno));
        while (auto* de = ::readdir(d)) {
            std::string n = de->d_name;
            if (n != "." && n != "..") names.push_back(n);
        }
        ::closedir(d);
    }
    for (const auto& n : names) {
        std::string path = rel.empty() ? n : rel + "/" + n;
        struct stat st {};
        REQUIRE_MESSAGE(::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0, path, ": ",
                        std::strerror(errno));
        tree_entry e;
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.ino = st.st_ino;
        e.mtime_sec = st.st_mtim.tv_sec;
        e.mtime_nsec = std::uint32_t(st.st_mtim.tv_nsec);
        switch (st.st_mode & S_IFMT) {
        case S_IFREG: {
            e.type = 'f';
            e.size = std::uint64_t(st.st_size);
            cz::unique_fd fd(::openat(dirfd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            REQUIRE_MESSAGE(fd, path, ": ", std::strerror(errno));
            e.hash = host_file_hash(fd.get(), e.size);
            break;
        }
        case S_IFDIR:
            e.type = 'd';
            break;
        case S_IFLNK: {
            e.type = 'l';
            e.size = std::uint64_t(st.st_size);
            std::string buf(8192, '\0');
            ssize_t r = ::readlinkat(dirfd, n.c_str(), buf.data(), buf.size());
            REQUIRE_MESSAGE(r >= 0, path, ": ", std::strerror(errno));
            e.target = buf.substr(0, std::size_t(r));
            break;
        }
        case S_IFCHR:
            e.type = 'c';
            e.dev = fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
            break;
        case S_IFBLK:
            e.type = 'b';
            e.dev = fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
            break;
        case S_IFIFO:
            e.type = 'p';
            break;
        case S_IFSOCK:
            e.type = 's';
            break;
        }
        // The l*xattr calls do not follow the last component: a symlink's own xattrs.
        std::string via = fmt::format("/proc/self/fd/{}/{}", dirfd, n);
        std::vector<std::pair<std::string, std::string>> xs;
        std::string names_buf(65536, '\0');
        ssize_t nl = ::llistxattr(via.c_str(), names_buf.data(), names_buf.size());
        REQUIRE_MESSAGE((nl >= 0 || errno == ENOTSUP), path,
                        ": llistxattr: ", std::strerror(errno));
        for (ssize_t i = 0; i < nl;) {
            std::string xn(names_buf.data() + i);
            i += ssize_t(xn.size() + 1);
            std::string v(65536, '\0');
            ssize_t vl = ::lgetxattr(via.c_str(), xn.c_str(), v.data(), v.size());
            REQUIRE_MESSAGE(vl >= 0, path, ": lgetxattr ", xn, ": ", std::strerror(errno));
            xs.push_back({xn, v.substr(0, std::size_t(vl))});
        }
        e.xattrs = xattr_string(xs);
        t[path] = e;
        if (e.type == 'd') {
            cz::unique_fd sub(
                ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            REQUIRE_MESSAGE(sub, path, ": ", std::strerror(errno));
            list_host_dir(sub.get(), path, t);
        }
    }
}

// The tree under a host directory.
inline tree list_host(const std::string& root) {
    cz::unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE_MESSAGE(fd, root, ": ", std::strerror(errno));
    tree t;
    list_host_dir(fd.get(), "", t);
    assign_link_groups(t);
    return t;
}

// The tree of an image, through cz::ext4::reader.
inline tree list_image(const cz::ext4::reader& r) {
    using namespace cz::ext4;
    tree t;
    std::error_code ec;
    r.walk(
        root_inode,
        [&](const std::string& path, const dir_entry& de) {
            auto st = r.stat(de.ino, ec);
            REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
            tree_entry e;
            e.mode = st.mode;
            e.uid = st.uid;
            e.gid = st.gid;
            e.ino = st.ino;
            e.mtime_sec = st.mtime.sec;
            e.mtime_nsec = st.mtime.nsec;
            switch (st.type) {
            case file_type::regular: {
                e.type = 'f';
                e.size = st.size;
                chunk_hasher hs;
                r.read_file(de.ino, hs, ec);
                REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
                e.hash = hs.hex();
                break;
            }
            case file_type::directory:
                e.type = 'd';
                break;
            case file_type::symlink:
                e.type = 'l';
                e.size = st.size;
                e.target = r.read_link(de.ino, ec);
                break;
            case file_type::char_device:
                e.type = 'c';
                e.dev = fmt::format("{}:{}", st.major, st.minor);
                break;
            case file_type::block_device:
                e.type = 'b';
                e.dev = fmt::format("{}:{}", st.major, st.minor);
                break;
            case file_type::fifo:
                e.type = 'p';
                break;
            case file_type::socket:
                e.type = 's';
                break;
            }
            std::vector<std::pair<std::string, std::string>> xs;
            for (auto& x : r.read_xattrs(de.ino, ec))
                xs.push_back({x.name, x.value});
            REQUIRE_MESSAGE(!ec, path, ": ", ec.message());
            e.xattrs = xattr_string(xs);
            t[path] = e;
            return true;
        },
        ec);
    REQUIRE_MESSAGE(!ec, ec.message());
    assign_link_groups(t);
    return t;
}

// Human-readable differences between two trees ("" when equal). `dir_mtimes` false ignores the
// mtimes of directories (extraction tools set them differently for implicit parents).
inline std::string diff(tree a, tree b, bool dir_mtimes = true) {
    assign_link_groups(a);
    assign_link_groups(b);
    std::string out;
    for (const auto& [p, e] : a) {
        auto it = b.find(p);
        if (it == b.end()) {
            out += "only in first: " + p + "\n";
            continue;
        }
        tree_entry x = e, y = it->second;
        if (!dir_mtimes && x.type == 'd') x.mtime_sec = y.mtime_sec, x.mtime_nsec = y.mtime_nsec;
        if (x.str() != y.str()) out += p + ":\n  " + x.str() + "\n  " + y.str() + "\n";
    }
    for (const auto& [p, e] : b)
        if (!a.count(p)) out += "only in second: " + p + "\n";
    return out;
}

// The image's tree as the Linux kernel sees it, through a read-only loop mount at `mnt` (the
// caller checks is_root() first and skips with a reason when not).
inline tree kernel_tree(const std::string& image, const std::string& mnt) {
    loop_mount m(image, mnt);
    REQUIRE_MESSAGE(m.mounted, "loop-mounting ", image, ": ", m.log);
    return list_host(m.dir);
}

inline cz::ext4::reader open_image(const std::string& path, cz::unique_fd& fd,
                                   std::unique_ptr<cz::ext4::fd_image>& img) {
    fd = cz::unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    std::error_code ec;
    img = std::make_unique<cz::ext4::fd_image>(fd.get(), ec);
    REQUIRE(!ec);
    return cz::ext4::reader(img->ref());
}

} // namespace cz_test
