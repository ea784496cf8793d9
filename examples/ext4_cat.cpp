// ext4_cat: prints a file from an ext4 image to standard output, without mounting it.
//
//     ext4_cat IMAGE PATH
//
// cz/ext4's reader: one call opens the image (cz's, or one mke2fs made) and owns the file;
// lookup() walks the path from the root (symlinks are not followed) and read_file() streams the
// file's data, holes as zeros, into any byte sink; here, standard output.
#include <cz/ext4.hpp>

#include <fmt/format.h>

#include <system_error>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 3) {
        fmt::print(stderr, "usage: ext4_cat IMAGE PATH\n");
        return 2;
    }
    const char* path = argv[2];
    std::error_code ec;
    cz::ext4::reader image = cz::ext4::reader::open(argv[1], ec);
    if (ec) {
        fmt::print(stderr, "ext4_cat: {}: {}\n", argv[1], ec.message());
        return 1;
    }
    std::uint32_t ino = image.lookup(path, ec);
    cz::ext4::inode_info st;
    if (!ec) st = image.stat(ino, ec);
    if (ec) {
        fmt::print(stderr, "ext4_cat: {}: {}: {}\n", argv[1], path, ec.message());
        return 1;
    }
    if (st.type != cz::ext4::file_type::regular) {
        fmt::print(stderr, "ext4_cat: {}: {}: not a regular file\n", argv[1], path);
        return 1;
    }
    cz::fd_sink out(STDOUT_FILENO);
    image.read_file(ino, out, ec);
    if (ec) {
        fmt::print(stderr, "ext4_cat: {}: {}: {}\n", argv[1], path, ec.message());
        return 1;
    }
}
