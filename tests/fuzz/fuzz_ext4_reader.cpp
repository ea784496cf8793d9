// Fuzzes cz::ext4::reader with arbitrary images: every structure it reaches (superblock, group
// descriptors, inodes, extent trees, block maps, directories, symlinks, xattrs) must end in data
// or a clean error, never crash, read out of bounds, loop forever or allocate without bound.
#include <cz/ext4/reader.hpp>

#include <cz/core/stream.hpp>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    using namespace cz::ext4;
    std::error_code ec;
    reader r(image_ref::memory({reinterpret_cast<const std::byte*>(data), size}), ec);
    if (ec) return 0;
    std::size_t visited = 0;
    r.walk(root_inode, [&](const std::string&, const dir_entry& e) {
        if (++visited > 10000) return false;
        std::error_code lec;
        auto st = r.stat(e.ino, lec);
        if (lec) return true;
        cz::null_sink sink;
        // Files are streamed with holes as zeros: only small ones, so a sparse 16 TiB file
        // does not turn into a timeout; their extent maps are walked whatever the size.
        if (st.type == file_type::regular && st.size <= (1 << 20)) r.read_file(e.ino, sink, lec);
        lec = {};
        r.for_each_run(e.ino, [](const reader::run&) { return true; }, lec);
        lec = {};
        if (st.type == file_type::symlink) r.read_link(e.ino, lec);
        lec = {};
        r.read_xattrs(e.ino, lec);
        return true;
    }, ec);
    ec = {};
    r.lookup("a/b/../c", ec);
    return 0;
}
