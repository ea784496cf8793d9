// Fuzzes the tar parser and reader with arbitrary input: each run must end in entries, the end of
// the archive or a clean error, with bounded memory, never a crash or an out-of-bounds read.
// The input is parsed three times: by the push parser in chunks whose sizes come from the input
// (so headers and pax records straddle feed() calls), by the blocking reader over a byte source,
// and by the reader over memory with views. All three must agree: the same entries (name, type,
// sizes, offsets, sparse map), the same stored data, and the same ending (the end of the archive,
// or the same error at the same header).
#include <cz/tar/parser.hpp>
#include <cz/tar/reader.hpp>

#include <array>
#include <string>
#include <vector>

namespace {

// What one entry looks like to every pass.
struct seen_entry {
    std::string name;
    cz::tar::entry_type type;
    std::uint64_t size, stored_size, offset, header_offset;
    std::size_t sparse_segments;
    std::uint64_t data_hash = 0; // FNV-1a of the stored data
    bool operator==(const seen_entry&) const = default;
};

seen_entry summary(const cz::tar::entry& e) {
    return {e.name, e.type, e.size, e.stored_size, e.offset, e.header_offset, e.sparse_map.size()};
}

void hash(std::uint64_t& h, cz::bytes_view data) {
    for (auto b : data)
        h = (h ^ std::uint64_t(b)) * 0x100000001b3ull;
}

constexpr std::uint64_t hash_seed = 0xcbf29ce484222325ull;

[[noreturn]] void disagree() {
    __builtin_trap();
}

// Invariants of any entry the parser hands out.
void check_entry(const cz::tar::entry& e) {
    using t = cz::tar::entry_type;
    switch (e.type) {
    case t::directory:
    case t::symlink:
    case t::char_device:
    case t::block_device:
    case t::fifo:
        if (e.size != 0 || e.stored_size != 0) disagree(); // these never carry data
        break;
    default:
        break;
    }
    if (e.offset > e.header_offset) disagree();
    if (!e.is_sparse()) {
        if (e.size != e.stored_size) disagree();
        return;
    }
    std::uint64_t end = 0, total = 0;
    for (auto& s : e.sparse_map) {
        if (s.offset < end || s.length > e.size || s.offset > e.size - s.length) disagree();
        end = s.offset + s.length;
        total += s.length;
    }
    if (total > e.stored_size || end != e.size) disagree();
}

// How a pass ended: cleanly (no error) or with an error at a header.
struct ending {
    std::error_code ec;
    cz::error_info where;
    bool operator==(const ending&) const = default;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    cz::bytes_view input{reinterpret_cast<const std::byte*>(data), size};
    cz::tar::parser_options opt{.max_name = 4096,
                                .max_xattrs = 64,
                                .max_xattr_bytes = 64 << 10,
                                .max_sparse_entries = 1024,
                                .max_header_bytes = 256 << 10,
                                .ignore_zeros = size > 0 && (data[0] & 1)};

    // 1. The push parser, fed in odd-sized chunks.
    std::vector<seen_entry> parsed;
    ending parser_end;
    {
        cz::tar::parser p(opt);
        std::size_t pos = 0, chunk = size > 1 ? 1 + data[1] % 700 : 1;
        std::uint64_t data_seen = 0;
        std::error_code ec;
        for (;;) {
            auto n = std::min(chunk, size - pos);
            auto used = p.feed(input.subspan(pos, n), ec);
            if (used > n) disagree();
            pos += used;
            if (p.event() == cz::tar::parse_event::entry) {
                if (!parsed.empty() && data_seen != parsed.back().stored_size)
                    disagree(); // the previous entry's data must have been complete
                check_entry(p.current());
                parsed.push_back(summary(p.current()));
                parsed.back().data_hash = hash_seed;
                data_seen = 0;
            } else if (p.event() == cz::tar::parse_event::data) {
                if (parsed.empty()) disagree();
                data_seen += p.data().size();
                if (data_seen > parsed.back().stored_size) disagree();
                hash(parsed.back().data_hash, p.data());
            }
            if (ec && ec != cz::tar::errc::need_more) break;
            if (p.ended()) break;
            if (pos == size && ec == cz::tar::errc::need_more) {
                p.finish(ec);
                break;
            }
        }
        if (!ec && !parsed.empty() && data_seen != parsed.back().stored_size)
            disagree(); // a clean end comes after the last entry's data
        if (ec) parser_end = {ec, p.error_detail()};
    }

    // 2. The reader over a byte source: the same entries with the same stored data, then the
    // same ending.
    {
        cz::memory_source mem(input);
        cz::tar::reader r(mem, opt);
        std::array<std::byte, 4096> buf;
        std::error_code ec;
        std::vector<seen_entry> read;
        while (const cz::tar::entry* e = r.next(ec)) {
            read.push_back(summary(*e));
            read.back().data_hash = hash_seed;
            auto stored = r.stored_data();
            std::uint64_t total = 0;
            while (auto n = stored.read_some(buf, ec)) {
                total += n;
                hash(read.back().data_hash, cz::bytes_view(buf).first(n));
            }
            if (ec) break;
            if (total != e->stored_size) disagree();
        }
        // (Where the data broke off, both saw the same bytes of it: the hashes agree too.)
        if (read != parsed) disagree();
        if ((ec ? ending{ec, r.error_detail()} : ending{}) != parser_end) disagree();
    }

    // 3. The reader over memory, with views of the logical content (sparse holes included, the
    // first 64 KiB of each entry): the same entries and ending again.
    {
        cz::tar::reader r(input, opt);
        std::error_code ec;
        std::size_t index = 0;
        while (const cz::tar::entry* e = r.next(ec)) {
            if (index >= parsed.size()) disagree();
            auto s = summary(*e);
            s.data_hash = parsed[index].data_hash;
            if (s != parsed[index]) disagree();
            ++index;
            std::uint64_t total = 0;
            for (auto v = r.read_view(4096, ec); !v.empty() && total < (64u << 10);
                 v = r.read_view(4096, ec)) {
                if (!e->is_sparse() &&
                    (v.data() < input.data() || v.data() + v.size() > input.data() + size))
                    disagree(); // views of a reader over memory point into the input
                total += v.size();
                if (total > e->size) disagree();
            }
            if (ec) break;
            if (total < (64u << 10) && total != e->size) disagree(); // all of it, when short
        }
        if (index != parsed.size()) disagree();
        if ((ec ? ending{ec, r.error_detail()} : ending{}) != parser_end) disagree();
    }
    return 0;
}
