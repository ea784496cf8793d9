// cz/ext4.hpp — ext4 images without root or mounts: a formatter that writes a filesystem into a
// sparse file, a reader for any ext4 image, an OCI layer applier and a tar exporter. Needs
// cz/core with its compression piece (layers may be gzip or zstd) and cz/tar; no Asio.
//
// Building an image from OCI layers (tar, tar+gzip or tar+zstd, lowest first):
//
//     cz::unique_fd out(::open("rootfs.img", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
//     cz::ext4::formatter image(std::move(out));     // format_options: fixed size, free space
//     cz::ext4::layer_applier applier(image);
//     std::error_code ec;
//     for (int layer_fd : layers) {
//         cz::fd_source layer(layer_fd);              // or any cz::byte_source (a socket...)
//         applier.apply(layer, ec);                   // whiteouts, opaque dirs, hard links
//         if (ec) ...;  // applier.error_detail(): {"layer 2: entry 'etc/passwd'", 1536}
//     }
//     image.finish(ec);                               // lays out the metadata; the image is done
//
// Reading a file out of an image (cz's, or one mke2fs made):
//
//     auto image = cz::ext4::reader::open("rootfs.img", ec);   // owns the file
//     std::uint32_t ino = image.lookup("/etc/os-release", ec);   // symlinks are not followed
//     cz::fd_sink out(STDOUT_FILENO);
//     image.read_file(ino, out, ec);                             // holes read as zeros
//
// Also: the formatter's own calls build a tree without layers (formatter.hpp); stat, read_dir,
// read_link, read_xattrs and walk read one (reader.hpp); export_tar writes an image's tree as a
// tar stream (export.hpp). examples/ext4_from_layers.cpp and examples/ext4_cat.cpp are these two
// blocks as whole programs.
#pragma once

#include <cz/ext4/applier.hpp>
#include <cz/ext4/error.hpp>
#include <cz/ext4/export.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/ext4/layout.hpp>
#include <cz/ext4/reader.hpp>
