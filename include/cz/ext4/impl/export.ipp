// Out-of-line definitions for cz/ext4/export.hpp.
#pragma once

#include <cz/ext4/export.hpp>
#include <cz/ext4/layout.hpp>
#include <cz/tar/writer.hpp>

#include <unordered_map>

namespace cz::ext4 {

CZ_DECL void export_tar(const reader& image, sink_ref out, export_options options,
                        std::error_code& ec) {
    ec = {};
    tar::writer w(out);
    std::unordered_map<std::uint32_t, std::string> first_name; // files with several links
    auto ns = [](const timestamp& t) { return t.sec * 1000000000 + std::int64_t(t.nsec); };
    image.walk(root_inode, [&](const std::string& path, const dir_entry& de) {
        inode_info st = image.stat(de.ino, ec);
        if (ec) return false;
        if (options.skip_empty_lost_found && path == "lost+found" &&
            st.type == file_type::directory && image.read_dir(de.ino, ec).empty() && !ec)
            return true;
        if (ec) return false;
        tar::entry e;
        e.name = st.type == file_type::directory ? path + "/" : path;
        e.mode = st.mode;
        e.uid = st.uid;
        e.gid = st.gid;
        e.mtime_ns = ns(st.mtime);
        e.atime_ns = ns(st.atime);
        e.ctime_ns = ns(st.ctime);
        for (auto& x : image.read_xattrs(de.ino, ec)) e.xattrs.push_back({x.name, x.value});
        if (ec) return false;
        if (st.type != file_type::directory && st.links > 1) {
            auto [it, fresh] = first_name.emplace(de.ino, path);
            if (!fresh) {
                e.type = tar::entry_type::hard_link;
                e.typeflag = '1';
                e.linkname = it->second;
                w.add(e, ec);
                return !ec;
            }
        }
        switch (st.type) {
        case file_type::directory: e.type = tar::entry_type::directory; e.typeflag = '5'; break;
        case file_type::symlink:
            e.type = tar::entry_type::symlink;
            e.typeflag = '2';
            e.linkname = image.read_link(de.ino, ec);
            if (ec) return false;
            break;
        case file_type::char_device:
        case file_type::block_device:
            e.type = st.type == file_type::char_device ? tar::entry_type::char_device
                                                        : tar::entry_type::block_device;
            e.typeflag = st.type == file_type::char_device ? '3' : '4';
            e.devmajor = st.major;
            e.devminor = st.minor;
            break;
        case file_type::fifo: e.type = tar::entry_type::fifo; e.typeflag = '6'; break;
        case file_type::socket: return true; // tar has no sockets (GNU tar skips them too)
        case file_type::regular: {
            e.type = tar::entry_type::regular;
            e.typeflag = '0';
            e.size = st.size;
            w.add(e, ec);
            if (ec) return false;
            struct to_writer {
                tar::writer* w;
                void write(bytes_view d, std::error_code& c) { w->write(d, c); }
                void finish(std::error_code&) {}
            } sink{&w};
            image.read_file(de.ino, sink, ec);
            return !ec;
        }
        }
        w.add(e, ec);
        return !ec;
    }, ec);
    if (!ec) w.finish(ec);
}

} // namespace cz::ext4
