// Fuzzes the OCI layer applier with arbitrary layer bytes (plain, gzip or zstd tar): each input
// is applied twice (as two layers, so whiteouts and replacements meet lower content) into an image
// in a memfd. It must end in a finished image or a clean error, never crash.
//
// An image the applier finished is then read back through cz::ext4::reader, and anything the
// reader refuses aborts (an image cz finished must always be readable): every entry is stat'ed,
// every file read (to its size; one past 16 MiB, a sparse one from a GNU sparse tar, gets its
// extent map walked instead), every symlink and xattr read. It must also hold what e2fsck
// insists on: an entry's type is its inode's; a file's link count is its names, a directory's
// 2 + its subdirectories (1 past link_max); no block belongs to two inodes, none lies past the
// image; paths look up to their inodes; the used-inode count is the reserved inodes plus the
// ones the tree reaches.
#include <cz/ext4/applier.hpp>
#include <cz/ext4/layout.hpp>
#include <cz/ext4/reader.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace cz::ext4;

// A finished image that does not read back: a bug, reported as a crash.
[[noreturn]] void broken(const std::string& what, const std::error_code& ec = {}) {
    std::fprintf(stderr, "fuzz_ext4_applier: the finished image does not read back: %s%s%s\n",
                 what.c_str(), ec ? ": " : "", ec ? ec.message().c_str() : "");
    std::abort();
}

struct counting_sink {
    std::uint64_t bytes = 0;
    void write(cz::bytes_view d, std::error_code&) { bytes += d.size(); }
    void finish(std::error_code&) {}
};

std::uint8_t entry_type(file_type t) {
    switch (t) {
    case file_type::regular:
        return ft_regular;
    case file_type::directory:
        return ft_directory;
    case file_type::symlink:
        return ft_symlink;
    case file_type::char_device:
        return ft_chrdev;
    case file_type::block_device:
        return ft_blkdev;
    case file_type::fifo:
        return ft_fifo;
    case file_type::socket:
        return ft_socket;
    }
    return ft_unknown;
}

constexpr std::uint64_t max_read = 16 << 20; // bytes of one file streamed through the reader
constexpr std::size_t max_lookups = 256;     // reader::lookup scans directories linearly

struct inode_seen {
    inode_info st;
    std::uint32_t names = 0;
    std::uint32_t subdirs = 0;
};

void check_image(int fd) {
    std::error_code ec;
    fd_image img(fd, ec);
    if (ec) broken("sizing the image", ec);
    reader r(img.ref(), ec);
    if (ec) broken("superblock and group descriptors", ec);
    const auto& info = r.info();
    std::vector<bool> claimed(info.blocks_count);
    auto claim_blocks = [&](const std::string& path, std::uint32_t ino, const inode_info& st) {
        const std::uint64_t size_blocks = (st.size + info.block_size - 1) / info.block_size;
        std::error_code lec;
        r.for_each_run(
            ino,
            [&](const reader::run& run) {
                if (run.logical + run.len > size_blocks)
                    broken(path + ": a data run past the file's size");
                if (run.physical == 0) return true; // unwritten
                if (run.physical + run.len > info.blocks_count)
                    broken(path + ": a data run past the image");
                for (std::uint64_t b = run.physical; b < run.physical + run.len; ++b) {
                    if (claimed[b])
                        broken(path + ": block " + std::to_string(b) + " belongs to two inodes");
                    claimed[b] = true;
                }
                return true;
            },
            lec);
        if (lec) broken(path + ": extent map", lec);
    };

    std::map<std::uint32_t, inode_seen> inodes;
    std::map<std::string, std::uint32_t> dirs{{"", root_inode}};
    inodes[root_inode].st = r.stat(root_inode, ec);
    if (ec) broken("the root directory", ec);
    claim_blocks("/", root_inode, inodes[root_inode].st);
    std::size_t looked_up = 0;
    r.walk(
        root_inode,
        [&](const std::string& path, const dir_entry& e) {
            std::error_code lec;
            auto st = r.stat(e.ino, lec);
            if (lec) broken(path + ": stat", lec);
            if (e.type != entry_type(st.type))
                broken(path + ": the entry's type is not its inode's");
            auto& seen = inodes[e.ino];
            seen.st = st;
            ++seen.names;
            auto slash = path.rfind('/');
            std::uint32_t parent = dirs.at(slash == std::string::npos ? "" : path.substr(0, slash));
            switch (st.type) {
            case file_type::regular: {
                if (seen.names > 1) break; // a hard link: read with its first name
                claim_blocks(path, e.ino, st);
                if (st.size > max_read) break;
                counting_sink sink;
                r.read_file(e.ino, sink, lec);
                if (lec) broken(path + ": reading", lec);
                if (sink.bytes != st.size) broken(path + ": read a size other than the inode's");
                break;
            }
            case file_type::directory:
                claim_blocks(path, e.ino, st);
                ++inodes[parent].subdirs;
                dirs[path] = e.ino;
                break;
            case file_type::symlink:
                if (auto target = r.read_link(e.ino, lec); lec)
                    broken(path + ": symlink target", lec);
                else if (target.size() != st.size)
                    broken(path + ": the target's length is not the inode's size");
                break;
            default:
                break;
            }
            r.read_xattrs(e.ino, lec);
            if (lec) broken(path + ": xattrs", lec);
            if (looked_up++ < max_lookups && (r.lookup(path, lec) != e.ino || lec))
                broken(path + ": looks up to another inode", lec);
            return true;
        },
        ec);
    if (ec) broken("walking the tree", ec);

    for (const auto& [ino, seen] : inodes) {
        auto where = "inode " + std::to_string(ino);
        if (seen.st.type == file_type::directory) {
            std::uint32_t want = 2 + seen.subdirs;
            if (want >= link_max) want = 1;
            if (seen.st.links != want)
                broken(where + ": a directory's link count is not 2 + subdirectories");
        } else if (seen.st.links != seen.names) {
            broken(where + ": link count " + std::to_string(seen.st.links) + ", names " +
                   std::to_string(seen.names));
        }
    }
    // The root is one of the reserved inodes (1 to first_inode - 1); the rest are in the tree.
    if (info.inodes_count - info.free_inodes != first_inode - 1 + inodes.size() - 1)
        broken("used inodes " + std::to_string(info.inodes_count - info.free_inodes) + ", " +
               std::to_string(inodes.size() - 1) + " in the tree");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    cz::unique_fd fd(::memfd_create("cz-fuzz-ext4", MFD_CLOEXEC));
    if (!fd) return 0;
    cz::unique_fd keep(::dup(fd.get())); // the formatter owns `fd`; the reader reads `keep`
    if (!keep) return 0;
    format_options opt;
    opt.size = 256 << 20; // bounds the image: a hostile layer gets no_space, not a full disk
    formatter f(std::move(fd), opt);
    layer_applier a(f, {.limits = {.max_output = 64 << 20, .max_ratio = 2000}});
    std::error_code ec;
    for (int i = 0; i < 2 && !ec; ++i) {
        cz::memory_source src({reinterpret_cast<const std::byte*>(data), size});
        a.apply(src, ec);
    }
    if (ec) return 0;
    f.finish(ec);
    if (!ec) check_image(keep.get());
    return 0;
}
