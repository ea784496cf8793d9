// Fuzzes the OCI layer applier with arbitrary layer bytes (plain, gzip or zstd tar): each input
// is applied twice (as two layers, so whiteouts and replacements meet lower content) into an image
// in a memfd. It must end in a finished image or a clean error, never crash or write outside it.
#include <cz/ext4/applier.hpp>

#include <sys/mman.h>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    using namespace cz::ext4;
    cz::unique_fd fd(::memfd_create("cz-fuzz-ext4", MFD_CLOEXEC));
    if (!fd) return 0;
    format_options opt;
    opt.size = 256 << 20; // bounds the image: a hostile layer gets no_space, not a full disk
    formatter f(std::move(fd), opt);
    layer_applier a(f, {.limits = {.max_output = 64 << 20, .max_ratio = 2000}});
    std::error_code ec;
    for (int i = 0; i < 2 && !ec; ++i) {
        cz::memory_source src({reinterpret_cast<const std::byte*>(data), size});
        a.apply(src, ec);
    }
    if (!ec) f.finish(ec);
    return 0;
}
