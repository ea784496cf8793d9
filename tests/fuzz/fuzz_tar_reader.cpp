// Fuzzes the tar parser and reader with arbitrary input: each run must end in entries, the end of
// the archive or a clean error, with bounded memory, never a crash or an out-of-bounds read.
// The input is parsed twice: by the push parser in chunks whose sizes come from the input (so
// headers and records straddle feed() calls), and by the blocking reader; both must agree.
#include <cz/tar/parser.hpp>
#include <cz/tar/reader.hpp>

#include <array>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    cz::bytes_view input{reinterpret_cast<const std::byte*>(data), size};
    cz::tar::parser_options opt{.max_name = 4096,
                                .max_xattrs = 64,
                                .max_xattr_bytes = 64 << 10,
                                .max_sparse_entries = 1024,
                                .max_header_bytes = 256 << 10,
                                .ignore_zeros = size > 0 && (data[0] & 1)};

    // 1. The push parser, fed in odd-sized chunks.
    std::vector<std::uint64_t> stored_sizes;
    std::uint64_t data_seen = 0;
    {
        cz::tar::parser p(opt);
        std::size_t pos = 0, chunk = size > 1 ? 1 + data[1] % 700 : 1;
        std::error_code ec;
        while (!p.ended()) {
            auto n = std::min(chunk, size - pos);
            auto used = p.feed(input.subspan(pos, n), ec);
            if (used > n) __builtin_trap();
            pos += used;
            if (ec && ec != cz::tar::errc::need_more) break;
            if (p.event() == cz::tar::parse_event::entry) {
                if (data_seen != (stored_sizes.empty() ? 0 : stored_sizes.back()))
                    __builtin_trap(); // the previous entry's data must have been complete
                stored_sizes.push_back(p.current().stored_size);
                data_seen = 0;
            } else if (p.event() == cz::tar::parse_event::data) {
                data_seen += p.data().size();
            }
            if (pos == size) {
                if (ec == cz::tar::errc::need_more) p.finish(ec);
                break;
            }
        }
    }

    // 2. The reader over the same bytes: same entries, stored data of the announced sizes, and
    // the first 64 KiB of each entry's logical content.
    {
        cz::memory_source mem(input);
        cz::tar::reader r(mem, opt);
        std::array<std::byte, 4096> buf;
        std::error_code ec;
        std::size_t index = 0;
        while (const cz::tar::entry* e = r.next(ec)) {
            if (index >= stored_sizes.size() || e->stored_size != stored_sizes[index])
                __builtin_trap();
            ++index;
            if (e->is_sparse()) {
                std::uint64_t logical = 0;
                while (logical < (64u << 10)) {
                    auto n = r.read_some(buf, ec);
                    if (n == 0) break;
                    logical += n;
                }
            } else {
                auto stored = r.stored_data();
                std::uint64_t total = 0;
                while (auto n = stored.read_some(buf, ec))
                    total += n;
                if (!ec && total != e->stored_size) __builtin_trap();
            }
            if (ec) break;
        }
    }
    // 3. The reader over memory, with views: the same entries and stored sizes again.
    {
        cz::tar::reader r(input, opt);
        std::error_code ec;
        std::size_t index = 0;
        while (const cz::tar::entry* e = r.next(ec)) {
            if (index >= stored_sizes.size() || e->stored_size != stored_sizes[index])
                __builtin_trap();
            ++index;
            std::uint64_t total = 0;
            for (auto v = r.read_view(4096, ec); !v.empty() && total < (64u << 10);
                 v = r.read_view(4096, ec)) {
                if (!e->is_sparse() &&
                    (v.data() < input.data() || v.data() + v.size() > input.data() + size))
                    __builtin_trap(); // views of a reader over memory point into the input
                total += v.size();
            }
            if (ec) break;
        }
    }
    return 0;
}
