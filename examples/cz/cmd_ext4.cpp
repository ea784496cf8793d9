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
    case ext4::file_type::regular:
        return '-';
    case ext4::file_type::directory:
        return 'd';
    case ext4::file_type::symlink:
        return 'l';
    case ext4::file_type::char_device:
        return 'c';
    case ext4::file_type::block_device:
        return 'b';
    case ext4::file_type::fifo:
        return 'p';
    case ext4::file_type::socket:
        return 's';
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
    std::string size =
        st.type == ext4::file_type::char_device || st.type == ext4::file_type::block_device
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

struct ext4_create_options {
    std::string out;
    std::vector<std::string> layers;
    std::string size;             // a size (parse_size_option); empty: grow to fit
    std::string free_space = "0"; // a size (parse_size_option)
};

int run_ext4_create(const ext4_create_options& o) {
    ext4::format_options opt;
    if (!o.size.empty()) opt.size = parse_size_option("--size", o.size);
    opt.free_bytes = parse_size_option("--free", o.free_space);
    unique_fd fd(::open(o.out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) throw_error(last_system_error(), "{}", o.out);
    try {
        ext4::formatter f(std::move(fd), opt);
        ext4::layer_applier a(f);
        for (const auto& layer : o.layers) {
            auto in = open_input(layer);
            fd_source src(in.get());
            std::error_code ec;
            a.apply(src, ec);
            if (ec) throw_error(ec, "{}: {}", layer, to_string(a.error_detail()));
        }
        std::error_code ec;
        f.finish(ec);
        if (ec) throw_error(ec, "{}", o.out);
    } catch (...) {
        ::unlink(o.out.c_str()); // never leave a half-written image behind
        throw;
    }
    return exit_ok;
}

struct ext4_ls_options {
    std::string image;
    std::string path = "/";
};

int run_ext4_ls(const ext4_ls_options& o) {
    auto img = open_image(o.image);
    std::error_code ec;
    auto ino = img.r->lookup(o.path, ec);
    if (ec) throw_error(ec, "{}: {}", o.image, o.path);
    auto st = img.r->stat(ino, ec);
    if (ec) throw_error(ec, "{}: {}", o.image, o.path);
    std::string out;
    if (st.type != ext4::file_type::directory) {
        out = ls_line(*img.r, st, o.path);
    } else {
        auto entries = img.r->read_dir(ino, ec);
        if (ec) throw_error(ec, "{}: {}", o.image, o.path);
        std::sort(entries.begin(), entries.end(),
                  [](const auto& a, const auto& b) { return a.name < b.name; });
        for (const auto& e : entries) {
            auto est = img.r->stat(e.ino, ec);
            if (ec) throw_error(ec, "{}: {}/{}", o.image, o.path, e.name);
            out += ls_line(*img.r, est, e.name);
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return exit_ok;
}

struct ext4_cat_options {
    std::string image;
    std::string path;
};

int run_ext4_cat(const ext4_cat_options& o) {
    auto img = open_image(o.image);
    std::error_code ec;
    auto ino = img.r->lookup(o.path, ec);
    if (ec) throw_error(ec, "{}: {}", o.image, o.path);
    auto st = img.r->stat(ino, ec);
    if (!ec && st.type != ext4::file_type::regular) ec = ext4::errc::not_found;
    if (ec) throw_error(ec, "{}: {}: not a regular file", o.image, o.path);
    fd_sink out(1);
    img.r->read_file(ino, out, ec);
    if (ec) throw_error(ec, "{}: {}", o.image, o.path);
    return exit_ok;
}

struct ext4_export_options {
    std::string image;
    std::string out;
};

int run_ext4_export(const ext4_export_options& o) {
    auto img = open_image(o.image);
    unique_fd fd(o.out == "-"
                     ? ::fcntl(1, F_DUPFD_CLOEXEC, 3)
                     : ::open(o.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) throw_error(last_system_error(), "{}", o.out);
    fd_sink sink(fd.get());
    std::error_code ec;
    ext4::export_tar(*img.r, sink, {}, ec);
    if (ec) throw_error(ec, "{}: exporting to {}", o.image, o.out);
    return exit_ok;
}

void register_ext4_commands(context ctx) {
    auto* ext4_cmd = ctx.app.add_subcommand("ext4", "Build and read ext4 images (cz/ext4)");
    ext4_cmd->require_subcommand(1);

    // cz ext4 create OUT --from-tar LAYER...
    add_command<ext4_create_options>(
        ctx, *ext4_cmd, "create",
        "Build an ext4 image from OCI layer tars (plain, gzip or zstd), applied in order",
        [](CLI::App& cmd, ext4_create_options& o) {
            cmd.add_option("OUT", o.out, "Image file to write (replaced)")->required();
            cmd.add_option("--from-tar", o.layers, "Layer tars, lowest first; - for standard input")
                ->required()
                ->expected(1, -1);
            cmd.add_option("--size", o.size,
                           "Fixed image size (e.g. 512M, 4G); default: grow to fit");
            cmd.add_option("--free", o.free_space, "Growing images: extra free space (e.g. 64M)");
        },
        run_ext4_create);

    // cz ext4 ls IMG [PATH]
    add_command<ext4_ls_options>(
        ctx, *ext4_cmd, "ls", "List a directory (or show a file) in an image",
        [](CLI::App& cmd, ext4_ls_options& o) {
            cmd.add_option("IMG", o.image, "ext4 image")->required();
            cmd.add_option("PATH", o.path,
                           "Path inside the image (default /); symlinks are not followed");
        },
        run_ext4_ls);

    // cz ext4 cat IMG PATH
    add_command<ext4_cat_options>(
        ctx, *ext4_cmd, "cat", "Write a file of an image to standard output",
        [](CLI::App& cmd, ext4_cat_options& o) {
            cmd.add_option("IMG", o.image, "ext4 image")->required();
            cmd.add_option("PATH", o.path, "Path of a regular file inside the image")->required();
        },
        run_ext4_cat);

    // cz ext4 export IMG OUT.tar
    add_command<ext4_export_options>(
        ctx, *ext4_cmd, "export", "Write an image's tree as a pax tar archive",
        [](CLI::App& cmd, ext4_export_options& o) {
            cmd.add_option("IMG", o.image, "ext4 image")->required();
            cmd.add_option("OUT", o.out, "Tar file to write; - for standard output")->required();
        },
        run_ext4_export);
}

} // namespace cz::cli
