// Building image layers in memory for the applier tests: a small table syntax for entries,
// written with cz::tar::writer and optionally compressed with gzip or zstd.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/tar/writer.hpp>

#include <string>
#include <vector>

namespace cz_test {

// One layer entry. type: 'f' file (data), 'd' directory, 'l' symlink (data = target),
// 'h' hard link (data = target), 'c' char device (data = "major:minor"), 'p' fifo.
// Whiteouts are files named ".wh.<name>" / ".wh..wh..opq" (type 'f', no data).
struct ent {
    char type;
    std::string name;
    std::string data = {};
    std::uint32_t mode = 0644;
    std::uint32_t uid = 0, gid = 0;
    std::vector<cz::tar::xattr> xattrs = {};
};

inline cz::byte_buffer make_layer(const std::vector<ent>& entries,
                                  cz::compression comp = cz::compression::none) {
    cz::byte_buffer raw;
    cz::buffer_sink rs(raw);
    {
        cz::tar::writer w(rs);
        for (const auto& x : entries) {
            cz::tar::entry e;
            e.name = x.name;
            e.mode = x.mode;
            e.uid = x.uid;
            e.gid = x.gid;
            e.mtime_ns = 1600000000LL * 1000000000LL + 250;
            e.xattrs = x.xattrs;
            switch (x.type) {
            case 'f': e.type = cz::tar::entry_type::regular; e.size = x.data.size(); break;
            case 'd': e.type = cz::tar::entry_type::directory; e.mode = x.mode == 0644 ? 0755 : x.mode; break;
            case 'l': e.type = cz::tar::entry_type::symlink; e.linkname = x.data; e.mode = 0777; break;
            case 'h': e.type = cz::tar::entry_type::hard_link; e.linkname = x.data; break;
            case 'c': {
                e.type = cz::tar::entry_type::char_device;
                auto colon = x.data.find(':');
                e.devmajor = std::uint32_t(std::stoul(x.data.substr(0, colon)));
                e.devminor = std::uint32_t(std::stoul(x.data.substr(colon + 1)));
                break;
            }
            case 'p': e.type = cz::tar::entry_type::fifo; break;
            }
            w.add(e);
            if (x.type == 'f') w.write(cz::as_bytes(x.data));
        }
        w.finish();
    }
    if (comp == cz::compression::none) return raw;
    cz::byte_buffer out;
    cz::buffer_sink os(out);
    cz::compressing_sink c(os, comp);
    std::error_code ec;
    c.write(raw, ec);
    c.finish(ec);
    return out;
}

} // namespace cz_test
