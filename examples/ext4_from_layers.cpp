// ext4_from_layers: builds an ext4 image from OCI image layers, as a VM-based container runtime
// does before it boots the container's root file system.
//
//     ext4_from_layers OUT.img LAYER.tar[.gz|.zst]...
//
// cz/ext4 (with cz/tar underneath): layers apply in order, lowest first, each streamed once from
// its file through the decompressor and the tar reader into the image. OCI whiteouts (.wh.NAME,
// .wh..wh..opq) remove what lower layers left. No root, no mounts, nothing extracted on the host.
#include <cz/ext4.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <system_error>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        fmt::print(stderr, "usage: ext4_from_layers OUT.img LAYER...\n");
        return 2;
    }
    const char* out = argv[1];
    cz::unique_fd out_fd(::open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out_fd) {
        fmt::print(stderr, "ext4_from_layers: {}: {}\n", out, cz::last_system_error().message());
        return 1;
    }
    cz::ext4::format_options options; // size 0: the image grows to fit its content
    options.free_bytes = 16 << 20;    // and keeps 16 MiB free for whoever mounts it read-write
    cz::ext4::formatter image(std::move(out_fd), options);
    cz::ext4::layer_applier applier(image);

    std::error_code ec;
    for (int i = 2; i < argc && !ec; ++i) {
        cz::unique_fd layer_fd(::open(argv[i], O_RDONLY | O_CLOEXEC));
        if (!layer_fd) {
            ec = cz::last_system_error();
            fmt::print(stderr, "ext4_from_layers: {}: {}\n", argv[i], ec.message());
            break;
        }
        cz::fd_source layer(layer_fd.get());
        applier.apply(layer, ec); // gzip, zstd or plain tar, found by its first bytes
        if (ec)
            fmt::print(stderr, "ext4_from_layers: {}: {}: {}\n", argv[i],
                       cz::to_string(applier.error_detail()), ec.message());
    }
    if (!ec) {
        image.finish(ec); // lays out directories, inodes, bitmaps; the image is complete
        if (ec) fmt::print(stderr, "ext4_from_layers: {}: {}\n", out, ec.message());
    }
    if (ec) {
        ::unlink(out); // never leave a half-written image behind
        return 1;
    }
    fmt::print("{}: {} layers, {} inodes, {} MiB of file data\n", out, applier.layers(),
               image.node_count(), image.data_blocks() * cz::ext4::block_size >> 20);
}
