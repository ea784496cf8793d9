// cz ext4 create/ls/cat/export — cz/ext4 from the command line.
//
//   cz ext4 create OUT.img --from-tar LAYER.tar[.gz|.zst]... [--size SIZE] [--free SIZE]
//   cz ext4 ls IMG [PATH]
//   cz ext4 cat IMG PATH
//   cz ext4 export IMG OUT.tar
#include "cli.hpp"

#include <cz/core/stream.hpp>
#include <cz/ext4.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace cz::cli {

namespace {

struct opened_image {
    unique_fd fd;
    std::unique_ptr<ext4::fd_image> img;
    std::unique_ptr<ext4::reader> r;
};

opened_image open_image(const std::string& path) {
    opened_image o;
    o.fd = unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!o.fd) throw_error(last_system_error(), "{}", path);
    std::error_code ec;
    o.img = std::make_unique<ext4::fd_image>(o.fd.get(), ec);
    if (ec) throw_error(ec, "{}", path);
    o.r = std::make_unique<ext4::reader>(o.img->ref(), ec);
    if (ec) throw_error(ec, "{}", path);
    return o;
}

char type_char(ext4::file_type t) {
    switch (t) {
    case ext4::file_type::regular: return '-';
    case ext4::file_type::directory: return 'd';
    case ext4::file_type::symlink: return 'l';
    case ext4::file_type::char_device: return 'c';
    case ext4::file_type::block_device: return 'b';
    case ext4::file_type::fifo: return 'p';
    case ext4::file_type::socket: return 's';
    }
    return '?';
}

// "drwxr-xr-x" with setuid/setgid/sticky as ls shows them.
std::string mode_string(const ext4::inode_info& st) {
    std::string s(10, '-');
    s[0] = type_char(st.type);
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i)
        if (st.mode & (0400u >> i)) s[std::size_t(i + 1)] = rwx[i];
    auto special = [&](std::size_t at, std::uint32_t bit, char set, char unset) {
        if (st.mode & bit) s[at] = s[at] == '-' ? unset : set;
    };
    special(3, 04000, 's', 'S');
    special(6, 02000, 's', 'S');
    special(9, 01000, 't', 'T');
    return s;
}

std::string ls_line(const ext4::reader& r, const ext4::inode_info& st, const std::string& name) {
    std::string size = st.type == ext4::file_type::char_device || st.type == ext4::file_type::block_device
                           ? fmt::format("{}, {}", st.major, st.minor)
                           : std::to_string(st.size);
    std::string line = fmt::format("{} {:>3} {:>6} {:>6} {:>12} {}", mode_string(st), st.links,
                                   st.uid, st.gid, size, name);
    if (st.type == ext4::file_type::symlink) {
        std::error_code ec;
        line += " -> " + r.read_link(st.ino, ec);
    }
    return line + "\n";
}

} // namespace

void register_ext4_commands(context ctx) {
    auto* ext4_cmd = ctx.app.add_subcommand("ext4", "Build and read ext4 images (cz/ext4)");
    ext4_cmd->require_subcommand(1);

    // cz ext4 create OUT --from-tar LAYER...
    {
        auto* cmd = ext4_cmd->add_subcommand(
            "create", "Build an ext4 image from OCI layer tars (plain, gzip or zstd), applied in order");
        auto out = std::make_shared<std::string>();
        auto layers = std::make_shared<std::vector<std::string>>();
        auto size = std::make_shared<std::string>();
        auto free_space = std::make_shared<std::string>("0");
        cmd->add_option("OUT", *out, "Image file to write (replaced)")->required();
        cmd->add_option("--from-tar", *layers, "Layer tars, lowest first; - for standard input")
            ->required()->expected(1, -1);
        cmd->add_option("--size", *size, "Fixed image size (e.g. 512M, 4G); default: grow to fit");
        cmd->add_option("--free", *free_space, "Growing images: extra free space (e.g. 64M)");
        cmd->callback([=, &run = ctx.run] {
            ext4::format_options opt;
            if (!size->empty()) opt.size = parse_size_option("--size", *size);
            opt.free_bytes = parse_size_option("--free", *free_space);
            run = [=] {
                unique_fd fd(::open(out->c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
                if (!fd) throw_error(last_system_error(), "{}", *out);
                try {
                    ext4::formatter f(std::move(fd), opt);
                    ext4::layer_applier a(f);
                    for (const auto& layer : *layers) {
                        auto in = open_input(layer);
                        fd_source src(in.get());
                        std::error_code ec;
                        a.apply(src, ec);
                        if (ec) throw_error(ec, "{}: {}", layer, a.error_context());
                    }
                    std::error_code ec;
                    f.finish(ec);
                    if (ec) throw_error(ec, "{}", *out);
                } catch (...) {
                    ::unlink(out->c_str()); // never leave a half-written image behind
                    throw;
                }
                return exit_ok;
            };
        });
    }

    // cz ext4 ls IMG [PATH]
    {
        auto* cmd = ext4_cmd->add_subcommand("ls", "List a directory (or show a file) in an image");
        auto image = std::make_shared<std::string>();
        auto path = std::make_shared<std::string>("/");
        cmd->add_option("IMG", *image, "ext4 image")->required();
        cmd->add_option("PATH", *path, "Path inside the image (default /); symlinks are not followed");
        cmd->callback([=, &run = ctx.run] {
            run = [=] {
                auto o = open_image(*image);
                std::error_code ec;
                auto ino = o.r->lookup(*path, ec);
                if (ec) throw_error(ec, "{}: {}", *image, *path);
                auto st = o.r->stat(ino, ec);
                if (ec) throw_error(ec, "{}: {}", *image, *path);
                std::string out;
                if (st.type != ext4::file_type::directory) {
                    out = ls_line(*o.r, st, *path);
                } else {
                    auto entries = o.r->read_dir(ino, ec);
                    if (ec) throw_error(ec, "{}: {}", *image, *path);
                    std::sort(entries.begin(), entries.end(),
                              [](const auto& a, const auto& b) { return a.name < b.name; });
                    for (const auto& e : entries) {
                        auto est = o.r->stat(e.ino, ec);
                        if (ec) throw_error(ec, "{}: {}/{}", *image, *path, e.name);
                        out += ls_line(*o.r, est, e.name);
                    }
                }
                std::fwrite(out.data(), 1, out.size(), stdout);
                return exit_ok;
            };
        });
    }

    // cz ext4 cat IMG PATH
    {
        auto* cmd = ext4_cmd->add_subcommand("cat", "Write a file of an image to standard output");
        auto image = std::make_shared<std::string>();
        auto path = std::make_shared<std::string>();
        cmd->add_option("IMG", *image, "ext4 image")->required();
        cmd->add_option("PATH", *path, "Path of a regular file inside the image")->required();
        cmd->callback([=, &run = ctx.run] {
            run = [=] {
                auto o = open_image(*image);
                std::error_code ec;
                auto ino = o.r->lookup(*path, ec);
                if (ec) throw_error(ec, "{}: {}", *image, *path);
                auto st = o.r->stat(ino, ec);
                if (!ec && st.type != ext4::file_type::regular) ec = ext4::errc::not_found;
                if (ec) throw_error(ec, "{}: {}: not a regular file", *image, *path);
                fd_sink out(1);
                o.r->read_file(ino, out, ec);
                if (ec) throw_error(ec, "{}: {}", *image, *path);
                return exit_ok;
            };
        });
    }

    // cz ext4 export IMG OUT.tar
    {
        auto* cmd = ext4_cmd->add_subcommand("export", "Write an image's tree as a pax tar archive");
        auto image = std::make_shared<std::string>();
        auto out = std::make_shared<std::string>();
        cmd->add_option("IMG", *image, "ext4 image")->required();
        cmd->add_option("OUT", *out, "Tar file to write; - for standard output")->required();
        cmd->callback([=, &run = ctx.run] {
            run = [=] {
                auto o = open_image(*image);
                unique_fd fd(*out == "-" ? ::fcntl(1, F_DUPFD_CLOEXEC, 3)
                                         : ::open(out->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
                if (!fd) throw_error(last_system_error(), "{}", *out);
                fd_sink sink(fd.get());
                std::error_code ec;
                ext4::export_tar(*o.r, sink, {}, ec);
                if (ec) throw_error(ec, "{}: exporting to {}", *image, *out);
                return exit_ok;
            };
        });
    }
}

} // namespace cz::cli
