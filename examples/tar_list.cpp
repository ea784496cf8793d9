// tar_list: lists a tar archive (plain, gzip or zstd) the way `tar -tvf` does.
//
//     tar_list ARCHIVE
//
// cz/tar and cz/core's compression piece: a file source, a decompressor that recognises gzip
// and zstd by their first bytes, and the streaming tar reader. Nothing is extracted; next()
// skips each entry's data.
#include <cz/core/compression.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/tar.hpp>

#include <fmt/format.h>

#include <ctime>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// "drwxr-xr-x", with setuid, setgid and sticky bits as ls shows them.
std::string mode_string(const cz::tar::entry& e) {
    // One letter per cz::tar::entry_type, in its order: regular, hard_link, symlink, char_device,
    // block_device, directory, fifo, contiguous; the GNU-only types list as files.
    constexpr std::string_view letters = "-hlcbdp-";
    auto type = std::size_t(e.type);
    std::string s(1, type < letters.size() ? letters[type] : '-');
    for (int i = 0; i < 9; ++i)
        s += (e.mode & (0400u >> i)) ? "rwxrwxrwx"[i] : '-';
    if (e.mode & 04000) s[3] = s[3] == 'x' ? 's' : 'S';
    if (e.mode & 02000) s[6] = s[6] == 'x' ? 's' : 'S';
    if (e.mode & 01000) s[9] = s[9] == 'x' ? 't' : 'T';
    return s;
}

// "2023-11-14 22:13" in local time, as tar prints it.
std::string date_string(std::int64_t mtime_ns) {
    std::time_t t = std::time_t(mtime_ns / 1000000000);
    std::tm tm{};
    char buf[32];
    if (!::localtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm))
        return std::to_string(t);
    return buf;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        fmt::print(stderr, "usage: tar_list ARCHIVE\n");
        return 2;
    }
    cz::unique_fd fd(::open(argv[1], O_RDONLY | O_CLOEXEC));
    if (!fd) {
        fmt::print(stderr, "tar_list: {}: {}\n", argv[1], cz::last_system_error().message());
        return 1;
    }
    cz::fd_source file(fd.get());
    cz::decompressing_source plain(file);
    cz::tar::reader archive(plain);
    std::error_code ec;
    while (const cz::tar::entry* e = archive.next(ec)) {
        std::string owner = e->uname.empty() ? std::to_string(e->uid) : e->uname;
        std::string group = e->gname.empty() ? std::to_string(e->gid) : e->gname;
        bool device = e->type == cz::tar::entry_type::char_device ||
                      e->type == cz::tar::entry_type::block_device;
        std::string size =
            device ? fmt::format("{},{}", e->devmajor, e->devminor) : std::to_string(e->size);
        std::string line = fmt::format("{} {}/{} {:>9} {} {}", mode_string(*e), owner, group, size,
                                       date_string(e->mtime_ns), e->name);
        if (e->type == cz::tar::entry_type::symlink) line += " -> " + e->linkname;
        if (e->type == cz::tar::entry_type::hard_link) line += " link to " + e->linkname;
        fmt::print("{}\n", line);
    }
    if (ec) {
        fmt::print(stderr, "tar_list: {}: {}: {}\n", argv[1], cz::to_string(archive.error_detail()),
                   ec.message());
        return 1;
    }
}
