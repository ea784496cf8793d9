// Out-of-line definitions for cz/tar/parser.hpp.
#pragma once

#include <cz/tar/parser.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

namespace cz::tar {

// Pax records collected from `x` (per entry) or `g` (global) headers. Unset means "not given";
// an empty value for a string or number unsets it, as POSIX says.
struct parser::pax_state {
    std::optional<std::string> path, linkpath, uname, gname;
    std::optional<std::uint64_t> size, uid, gid;
    std::optional<std::int64_t> mtime, atime, ctime;
    std::optional<std::uint32_t> devmajor, devminor;
    std::vector<xattr> xattrs;
    std::size_t xattr_bytes = 0;
    // GNU sparse records.
    std::optional<std::string> sparse_name;
    std::optional<std::uint64_t> sparse_size;
    std::optional<std::uint64_t> sparse_major, sparse_minor;
    sparse_format map_format = sparse_format::none;
    std::vector<sparse_segment> sparse_map;
    std::optional<std::uint64_t> sparse_offset; // 0.0: an offset waiting for its numbytes
};

namespace detail {

inline std::string_view cut_at_nul(std::string_view s) noexcept {
    auto n = s.find('\0');
    return n == std::string_view::npos ? s : s.substr(0, n);
}

// Strict unsigned decimal, as GNU tar's decode_num: digits only, within `max`.
inline std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) noexcept {
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        auto d = std::uint64_t(c - '0');
        if (v > (max - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

// "[-]seconds[.fraction]" to nanoseconds, saturating out-of-range values. Like GNU tar's
// decode_time, characters after the number are ignored, but there must be digits.
inline std::optional<std::int64_t> parse_pax_time(std::string_view s) noexcept {
    std::size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
    std::uint64_t sec = 0;
    bool overflow = false, digits = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        digits = true;
        if (sec > 10'000'000'000ull)
            overflow = true;
        else
            sec = sec * 10 + std::uint64_t(s[i] - '0');
    }
    std::uint64_t frac = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        int n = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++n) {
            digits = true;
            if (n < 9) frac = frac * 10 + std::uint64_t(s[i] - '0');
        }
        for (; n < 9; ++n)
            frac *= 10;
    }
    if (!digits) return std::nullopt;
    constexpr std::uint64_t limit =
        std::uint64_t(std::numeric_limits<std::int64_t>::max()) / 1'000'000'000ull;
    if (overflow || sec >= limit)
        return negative ? std::numeric_limits<std::int64_t>::min()
                        : std::numeric_limits<std::int64_t>::max();
    auto ns = std::int64_t(sec * 1'000'000'000ull + frac);
    return negative ? -ns : ns;
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX decoding of LIBARCHIVE.xattr names.
inline std::optional<std::string> url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += char(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// Standard base64, padding optional (libarchive writes it without '=').
inline std::optional<std::string> base64_decode(std::string_view s) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (!s.empty() && s.back() == '=')
        s.remove_suffix(1);
    std::string out;
    out.reserve(s.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | std::uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6) return std::nullopt; // a lone trailing character carries no byte
    return out;
}

inline void set_xattr(std::vector<xattr>& list, std::size_t& bytes, std::string name,
                      std::string value, const parser_options& opt, std::error_code& ec) {
    for (auto& x : list)
        if (x.name == name) {
            bytes = bytes - x.value.size() + value.size();
            x.value = std::move(value);
            if (bytes > opt.max_xattr_bytes) ec = errc::too_many_xattrs;
            return;
        }
    bytes += name.size() + value.size();
    if (list.size() >= opt.max_xattrs || bytes > opt.max_xattr_bytes) {
        ec = errc::too_many_xattrs;
        return;
    }
    list.push_back({std::move(name), std::move(value)});
}

// The pax keys cz uses. The value of any other key is skipped unread.
enum class pax_key : std::uint8_t {
    unused,
    path,
    linkpath,
    uname,
    gname,
    size,
    uid,
    gid,
    mtime,
    atime,
    ctime,
    devmajor,
    devminor,
    schily_xattr,     // SCHILY.xattr.<name>=<raw value>
    libarchive_xattr, // LIBARCHIVE.xattr.<url-encoded name>=<base64 value>
    sparse_name,
    sparse_size, // GNU.sparse.size and GNU.sparse.realsize
    sparse_major,
    sparse_minor,
    sparse_offset,
    sparse_numbytes,
    sparse_map, // read number by number, never stored whole
};

inline constexpr std::string_view schily_xattr_prefix = "SCHILY.xattr.";
inline constexpr std::string_view libarchive_xattr_prefix = "LIBARCHIVE.xattr.";
// The longest key kept: an xattr name (Linux XATTR_NAME_MAX is 255) URL-encoded after
// "LIBARCHIVE.xattr." fits many times over. A longer key is one cz does not use, unless it starts
// with an xattr prefix (then it is an error).
inline constexpr std::size_t max_pax_key = 4096;
// The longest value kept for a numeric key: a time with a sign, 19 digits, a point and a
// fraction fits many times over.
inline constexpr std::size_t max_pax_number = 128;

inline pax_key classify_pax_key(std::string_view key) noexcept {
    static constexpr std::pair<std::string_view, pax_key> exact[] = {
        {"path", pax_key::path},
        {"linkpath", pax_key::linkpath},
        {"uname", pax_key::uname},
        {"gname", pax_key::gname},
        {"size", pax_key::size},
        {"uid", pax_key::uid},
        {"gid", pax_key::gid},
        {"mtime", pax_key::mtime},
        {"atime", pax_key::atime},
        {"ctime", pax_key::ctime},
        {"SCHILY.devmajor", pax_key::devmajor},
        {"SCHILY.devminor", pax_key::devminor},
        {"GNU.sparse.name", pax_key::sparse_name},
        {"GNU.sparse.size", pax_key::sparse_size},
        {"GNU.sparse.realsize", pax_key::sparse_size},
        {"GNU.sparse.major", pax_key::sparse_major},
        {"GNU.sparse.minor", pax_key::sparse_minor},
        {"GNU.sparse.offset", pax_key::sparse_offset},
        {"GNU.sparse.numbytes", pax_key::sparse_numbytes},
        {"GNU.sparse.map", pax_key::sparse_map},
    };
    for (auto& [name, k] : exact)
        if (key == name) return k;
    if (key.starts_with(schily_xattr_prefix)) return pax_key::schily_xattr;
    if (key.starts_with(libarchive_xattr_prefix)) return pax_key::libarchive_xattr;
    // Anything else (comment, hdrcharset, SCHILY.acl.*, vendor keys) is ignored, as GNU tar does.
    return pax_key::unused;
}

// How long a kept value may be, and the error when it is longer. Unused keys and the streamed
// sparse map have no cap (nothing of them is stored).
struct pax_value_cap {
    std::uint64_t max;
    errc error;
};

inline pax_value_cap value_cap(pax_key k, const parser_options& opt) noexcept {
    switch (k) {
    case pax_key::unused:
    case pax_key::sparse_map:
        return {std::numeric_limits<std::uint64_t>::max(), errc::header_too_large};
    case pax_key::path:
    case pax_key::linkpath:
    case pax_key::uname:
    case pax_key::gname:
    case pax_key::sparse_name:
        return {opt.max_name, errc::name_too_long};
    case pax_key::schily_xattr:
        return {opt.max_xattr_bytes, errc::too_many_xattrs};
    case pax_key::libarchive_xattr: // base64: four characters for three bytes
        return {std::uint64_t(opt.max_xattr_bytes) / 3 * 4 + 4, errc::too_many_xattrs};
    default:
        return {max_pax_number, errc::header_too_large};
    }
}

// Applies one record whose value was kept. An empty value for a string or number unsets it, as
// POSIX says.
template <class Pax>
void apply_pax_record(Pax& st, pax_key k, std::string_view key, std::string_view value,
                      const parser_options& opt, std::error_code& ec) {
    constexpr auto u64max = std::uint64_t(std::numeric_limits<std::int64_t>::max());
    constexpr auto u32max = std::uint64_t(std::numeric_limits<std::uint32_t>::max());
    auto string_value = [&](std::optional<std::string>& field) {
        auto v = cut_at_nul(value);
        if (v.empty())
            field.reset();
        else
            field.emplace(v);
    };
    auto number = [&](auto& field, std::uint64_t max) {
        if (value.empty()) {
            field.reset();
            return;
        }
        auto v = parse_decimal(value, max);
        if (!v) {
            ec = errc::bad_pax_record;
            return;
        }
        field = static_cast<typename std::remove_reference_t<decltype(field)>::value_type>(*v);
    };
    auto time = [&](std::optional<std::int64_t>& field) {
        if (value.empty()) {
            field.reset();
            return;
        }
        auto v = parse_pax_time(value);
        if (!v) {
            ec = errc::bad_pax_record;
            return;
        }
        field = *v;
    };
    // GNU.sparse.offset and GNU.sparse.numbytes (sparse 0.0) come in pairs.
    auto add_segment_number = [&](bool is_offset) {
        auto v = parse_decimal(value, u64max);
        if (!v) {
            ec = errc::bad_sparse_map;
            return;
        }
        if (st.map_format == sparse_format::pax_0_1) st.sparse_map.clear();
        st.map_format = sparse_format::pax_0_0;
        if (is_offset) {
            if (st.sparse_offset) {
                ec = errc::bad_sparse_map;
                return;
            }
            st.sparse_offset = *v;
            return;
        }
        if (!st.sparse_offset) {
            ec = errc::bad_sparse_map;
            return;
        }
        if (st.sparse_map.size() >= opt.max_sparse_entries) {
            ec = errc::sparse_map_too_large;
            return;
        }
        st.sparse_map.push_back({*st.sparse_offset, *v});
        st.sparse_offset.reset();
    };

    switch (k) {
    case pax_key::unused:
    case pax_key::sparse_map: // streamed by parser::pax_stream
        return;
    case pax_key::path:
        return string_value(st.path);
    case pax_key::linkpath:
        return string_value(st.linkpath);
    case pax_key::uname:
        return string_value(st.uname);
    case pax_key::gname:
        return string_value(st.gname);
    case pax_key::size:
        return number(st.size, u64max);
    case pax_key::uid:
        return number(st.uid, u64max);
    case pax_key::gid:
        return number(st.gid, u64max);
    case pax_key::mtime:
        return time(st.mtime);
    case pax_key::atime:
        return time(st.atime);
    case pax_key::ctime:
        return time(st.ctime);
    case pax_key::devmajor:
        return number(st.devmajor, u32max);
    case pax_key::devminor:
        return number(st.devminor, u32max);
    case pax_key::schily_xattr:
        return set_xattr(st.xattrs, st.xattr_bytes,
                         std::string(key.substr(schily_xattr_prefix.size())), std::string(value),
                         opt, ec);
    case pax_key::libarchive_xattr: {
        auto name = url_decode(key.substr(libarchive_xattr_prefix.size()));
        auto decoded = base64_decode(value);
        if (!name || !decoded) {
            ec = errc::bad_pax_record;
            return;
        }
        return set_xattr(st.xattrs, st.xattr_bytes, std::move(*name), std::move(*decoded), opt, ec);
    }
    case pax_key::sparse_name:
        return string_value(st.sparse_name);
    case pax_key::sparse_size:
        return number(st.sparse_size, u64max);
    case pax_key::sparse_major:
        return number(st.sparse_major, u64max);
    case pax_key::sparse_minor:
        return number(st.sparse_minor, u64max);
    case pax_key::sparse_offset:
        return add_segment_number(true);
    case pax_key::sparse_numbytes:
        return add_segment_number(false);
    }
}

inline entry_type type_of(char typeflag) noexcept {
    switch (typeflag) {
    case '1':
        return entry_type::hard_link;
    case '2':
        return entry_type::symlink;
    case '3':
        return entry_type::char_device;
    case '4':
        return entry_type::block_device;
    case '5':
        return entry_type::directory;
    case '6':
        return entry_type::fifo;
    case '7':
        return entry_type::contiguous;
    case 'D':
        return entry_type::gnu_dumpdir;
    case 'V':
        return entry_type::gnu_volume;
    case 'M':
        return entry_type::gnu_multivol;
    default:
        return entry_type::regular;
    }
}

// Reads up to `count` old-GNU map entries; stops at the first empty offset field.
inline void read_gnu_sparse(const gnu_sparse_wire* wire, std::size_t count,
                            std::vector<sparse_segment>& map, const parser_options& opt,
                            std::error_code& ec) {
    for (std::size_t i = 0; i < count; ++i) {
        if (wire[i].offset[0] == '\0') return;
        auto off = parse_number({wire[i].offset, sizeof wire[i].offset});
        auto len = parse_number({wire[i].numbytes, sizeof wire[i].numbytes});
        if (!off || !len || *off < 0 || *len < 0) {
            ec = errc::bad_sparse_map;
            return;
        }
        if (map.size() >= opt.max_sparse_entries) {
            ec = errc::sparse_map_too_large;
            return;
        }
        map.push_back({std::uint64_t(*off), std::uint64_t(*len)});
    }
}

} // namespace detail

// Reads the records of one pax `x` or `g` header as its bytes arrive, whatever their number and
// size: "<length> <key>=<value>\n" (POSIX.1-2017 pax, "pax Extended Header"), the length counting
// the whole record in decimal, NULs after the last record being padding. The value of a key cz
// uses is kept up to that key's cap and applied when its record ends; GNU.sparse.map is read
// number by number; any other value is skipped as it goes by. Memory stays within the caps
// however large the header is (GNU tar and libarchive 3.7.5+ read headers of many MB).
struct parser::pax_stream {
    enum class phase : std::uint8_t { length, key, value, newline, padding };

    pax_state* target = nullptr;
    std::uint64_t payload_left = 0; // bytes of the header not fed yet
    phase at = phase::length;
    std::uint64_t length = 0; // the current record's length field
    unsigned digits = 0;
    std::uint64_t record_left = 0; // bytes of the current record not fed yet
    std::string key;
    bool key_whole = true; // false when the key was longer than max_pax_key (then cut there)
    detail::pax_key kind = detail::pax_key::unused;
    std::string value;
    // GNU.sparse.map: the number being read and the offset waiting for its length.
    bool map_empty = true;
    bool in_number = false;
    std::uint64_t number = 0;
    std::optional<std::uint64_t> map_offset;

    void start(pax_state& st, std::uint64_t size) {
        target = &st;
        payload_left = size;
        next_record();
    }

    void next_record() {
        at = phase::length;
        length = 0;
        digits = 0;
        key.clear();
        value.clear();
        // Do not keep a large buffer past the record that needed it.
        if (value.capacity() > (64u << 10)) value.shrink_to_fit();
    }

    // Feeds the next n bytes of the header. `kept` grows by the length of each record whose
    // value was kept (parser_options::max_header_bytes counts those).
    void feed(const char* p, std::size_t n, const parser_options& opt, std::uint64_t& kept,
              std::error_code& ec) {
        while (n > 0 && !ec) {
            std::size_t used = 1;
            switch (at) {
            case phase::padding:
                // SAFETY: p points at n readable bytes.
                if (std::any_of(p, p + n, [](char c) { return c != '\0'; }))
                    ec = errc::bad_pax_record;
                used = n;
                break;
            case phase::length:
                on_length_char(*p, ec);
                break;
            case phase::key: {
                // The '=' comes before the record's last byte, its newline: record_left >= 2.
                auto span = std::size_t(std::min<std::uint64_t>(n, record_left - 1));
                // SAFETY: span <= n readable bytes at p.
                auto* eq = static_cast<const char*>(std::memchr(p, '=', span));
                auto part = eq ? std::size_t(eq - p) : span;
                // Past max_pax_key only the start is kept: enough to see an xattr prefix.
                auto room = detail::max_pax_key - key.size();
                key.append(p, std::min(part, room));
                if (part > room) key_whole = false;
                used = part + (eq ? 1 : 0);
                record_left -= used;
                if (eq)
                    begin_value(opt, ec);
                else if (record_left == 1)
                    ec = errc::bad_pax_record; // no '='
                break;
            }
            case phase::value:
                used = std::size_t(std::min<std::uint64_t>(n, record_left - 1));
                if (kind == detail::pax_key::sparse_map) {
                    for (std::size_t i = 0; i < used && !ec; ++i)
                        on_map_char(p[i], opt, ec);
                } else if (kind != detail::pax_key::unused) {
                    value.append(p, used);
                }
                record_left -= used;
                if (record_left == 1) at = phase::newline;
                break;
            case phase::newline:
                if (*p != '\n')
                    ec = errc::bad_pax_record;
                else
                    end_record(opt, kept, ec);
                break;
            }
            payload_left -= used;
            p += used;
            n -= used;
        }
    }

    // The header's payload has ended: it must end between records.
    void finish(std::error_code& ec) const {
        if (!(at == phase::length && digits == 0) && at != phase::padding)
            ec = errc::bad_pax_record;
    }

private:
    void on_length_char(char c, std::error_code& ec) {
        if (c == '\0' && digits == 0) {
            at = phase::padding;
            return;
        }
        if (c >= '0' && c <= '9') {
            auto d = std::uint64_t(c - '0');
            if (digits == 20 || length > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
                ec = errc::bad_pax_record;
                return;
            }
            length = length * 10 + d;
            ++digits;
            return;
        }
        // The space: then at least "=\n" (an empty key and value), all inside the header;
        // payload_left still counts the space.
        if (c != ' ' || digits == 0 || length < digits + 3 ||
            length - digits - 1 > payload_left - 1) {
            ec = errc::bad_pax_record;
            return;
        }
        record_left = length - digits - 1; // the bytes after the space
        key_whole = true;
        at = phase::key;
    }

    void begin_value(const parser_options& opt, std::error_code& ec) {
        using detail::pax_key;
        if (key_whole) {
            kind = detail::classify_pax_key(key);
        } else {
            // Longer than any key cz uses, unless it names an xattr.
            kind = pax_key::unused;
            if (key.starts_with(detail::schily_xattr_prefix) ||
                key.starts_with(detail::libarchive_xattr_prefix)) {
                ec = errc::header_too_large;
                return;
            }
        }
        auto cap = detail::value_cap(kind, opt);
        if (record_left - 1 > cap.max) {
            ec = cap.error; // refused before any of it is read
            return;
        }
        value.clear();
        if (kind == pax_key::sparse_map) {
            // "offset,length,offset,length,...": a new map replaces any earlier one.
            target->sparse_map.clear();
            target->sparse_offset.reset();
            target->map_format = sparse_format::pax_0_1;
            map_empty = record_left == 1;
            in_number = false;
            number = 0;
            map_offset.reset();
        }
        at = record_left == 1 ? phase::newline : phase::value;
    }

    void on_map_char(char c, const parser_options& opt, std::error_code& ec) {
        if (c >= '0' && c <= '9') {
            auto d = std::uint64_t(c - '0');
            if (number > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) - d) / 10) {
                ec = errc::bad_sparse_map;
                return;
            }
            number = number * 10 + d;
            in_number = true;
            return;
        }
        if (c != ',') {
            ec = errc::bad_sparse_map;
            return;
        }
        end_map_number(opt, ec);
    }

    void end_map_number(const parser_options& opt, std::error_code& ec) {
        if (!in_number) {
            ec = errc::bad_sparse_map; // an empty item
            return;
        }
        in_number = false;
        auto v = std::exchange(number, 0);
        if (!map_offset) {
            map_offset = v;
            return;
        }
        if (target->sparse_map.size() >= opt.max_sparse_entries) {
            ec = errc::sparse_map_too_large;
            return;
        }
        target->sparse_map.push_back({*map_offset, v});
        map_offset.reset();
    }

    void end_record(const parser_options& opt, std::uint64_t& kept, std::error_code& ec) {
        using detail::pax_key;
        if (kind == pax_key::sparse_map) {
            if (!map_empty) {
                end_map_number(opt, ec);
                if (!ec && map_offset) ec = errc::bad_sparse_map; // an offset without a length
            }
        } else if (kind != pax_key::unused) {
            detail::apply_pax_record(*target, kind, key, value, opt, ec);
        }
        if (kind != pax_key::unused) kept += length;
        next_record();
    }
};

CZ_DECL parser::parser(parser_options options)
    : opt_(options), block_(std::make_unique<header_block>()) {}
CZ_DECL parser::~parser() = default;
CZ_DECL parser::parser(parser&&) noexcept = default;
CZ_DECL parser& parser::operator=(parser&&) noexcept = default;

CZ_DECL std::size_t parser::fail(std::error_code& ec, std::error_code what, std::size_t used) {
    state_ = state::failed;
    error_detail_ = {"tar header", current_header_offset_};
    error_ = what;
    ec = what;
    return used;
}

CZ_DECL const header_block* parser::take_block(bytes_view input, std::size_t& used) {
    static_assert(alignof(header_block) == 1);
    auto avail = input.size() - used;
    if (block_fill_ == 0 && avail >= block_size) {
        // SAFETY: avail >= block_size bytes start at input[used]; header_block is 512 chars with
        // alignment 1, so any address holds one.
        auto* h = reinterpret_cast<const header_block*>(input.data() + used);
        used += block_size;
        offset_ += block_size;
        return h;
    }
    auto n = std::min(block_size - block_fill_, avail);
    // SAFETY: block_fill_ + n <= block_size, and n <= avail bytes remain at input[used].
    std::memcpy(reinterpret_cast<std::byte*>(block_.get()) + block_fill_, input.data() + used, n);
    used += n;
    offset_ += n;
    block_fill_ += n;
    if (block_fill_ < block_size) return nullptr;
    block_fill_ = 0;
    return block_.get();
}

CZ_DECL void parser::add_meta_bytes(std::uint64_t n, std::error_code& ec) {
    entry_meta_bytes_ += n;
    if (entry_meta_bytes_ > opt_.max_header_bytes) ec = errc::entry_headers_too_large;
}

CZ_DECL void parser::reset_pending() {
    pending_.reset();
    long_name_.reset();
    long_link_.reset();
    entry_meta_bytes_ = 0;
    entry_start_.reset();
}

CZ_DECL std::size_t parser::feed(bytes_view input, std::error_code& ec) {
    ec.clear();
    event_ = parse_event::none;
    data_ = {};
    if (state_ == state::failed) {
        ec = error_;
        return 0;
    }
    std::size_t used = 0;
    for (;;) {
        auto avail = input.size() - used;
        switch (state_) {
        case state::failed:
            return used;
        case state::ended:
            event_ = parse_event::end;
            return used;
        case state::data: {
            if (avail == 0) break;
            auto n = std::size_t(std::min<std::uint64_t>(data_remaining_, avail));
            data_ = input.subspan(used, n);
            used += n;
            offset_ += n;
            data_remaining_ -= n;
            if (data_remaining_ == 0) state_ = skip_ ? state::skip : state::header;
            event_ = parse_event::data;
            return used;
        }
        case state::skip: {
            if (avail == 0) break;
            auto n = std::size_t(std::min<std::uint64_t>(skip_, avail));
            used += n;
            offset_ += n;
            skip_ -= n;
            if (skip_ == 0) state_ = state::header;
            continue;
        }
        case state::meta: {
            if (avail == 0) break;
            auto n = std::size_t(std::min<std::uint64_t>(meta_remaining_, avail));
            // SAFETY: n <= avail bytes remain at input[used].
            auto* bytes = reinterpret_cast<const char*>(input.data() + used);
            std::error_code err;
            if (meta_type_ == 'L' || meta_type_ == 'K') {
                meta_.append(bytes, n);
            } else {
                std::uint64_t kept = 0;
                pax_->feed(bytes, n, opt_, kept, err);
                if (!err) add_meta_bytes(kept, err);
            }
            used += n;
            offset_ += n;
            meta_remaining_ -= n;
            if (!err && meta_remaining_ == 0) on_meta_complete(err);
            if (err) return fail(ec, err, used);
            continue;
        }
        case state::header:
        case state::sparse_ext:
        case state::sparse_map: {
            auto block_offset = offset_ - block_fill_;
            auto* block = take_block(input, used);
            if (!block) break;
            std::error_code err;
            // SAFETY: take_block returned a whole 512-byte block.
            if (state_ == state::header) {
                current_header_offset_ = block_offset;
                on_header(*block, err);
            } else if (state_ == state::sparse_ext) {
                on_sparse_extension(reinterpret_cast<const std::byte*>(block), err);
            } else {
                on_sparse_map_block(reinterpret_cast<const std::byte*>(block), err);
            }
            if (err) return fail(ec, err, used);
            if (event_ != parse_event::none) return used;
            continue;
        }
        }
        ec = errc::need_more;
        return used;
    }
}

CZ_DECL void parser::on_header(const header_block& h, std::error_code& ec) {
    if (h.is_zero()) {
        // GNU tar (without -i) stops at the first zero block; the second one it reads only to
        // warn about a "lone zero block", never to decide whether the archive goes on.
        if (opt_.ignore_zeros) return;
        reset_pending();
        state_ = state::ended;
        event_ = parse_event::end;
        return;
    }
    if (!h.checksum_ok()) {
        ec = errc::bad_checksum;
        return;
    }
    if (!entry_start_) entry_start_ = current_header_offset_;
    switch (h.typeflag) {
    case 'x':
    case 'X': // Solaris' name for the same thing
    case 'g':
    case 'L':
    case 'K': {
        auto size = parse_number({h.size, sizeof h.size});
        if (!size || *size < 0) {
            ec = errc::bad_number;
            return;
        }
        auto payload = std::uint64_t(*size);
        meta_type_ = h.typeflag;
        meta_remaining_ = payload;
        skip_ = padded(payload) - payload;
        state_ = state::meta;
        if (h.typeflag == 'L' || h.typeflag == 'K') {
            // Collected whole: a name is capped anyway.
            if (payload > opt_.max_name + 1) {
                ec = errc::name_too_long;
                return;
            }
            add_meta_bytes(block_size + padded(payload), ec);
            meta_.clear();
        } else {
            // Streamed: any size, only the values kept count (see add_meta_bytes in feed).
            add_meta_bytes(block_size, ec);
            auto& target = h.typeflag == 'g' ? global_ : pending_;
            if (!target) target = std::make_unique<pax_state>();
            if (!pax_) pax_ = std::make_unique<pax_stream>();
            pax_->start(*target, payload);
        }
        if (ec) return;
        if (meta_remaining_ == 0) on_meta_complete(ec);
        return;
    }
    default:
        start_entry(h, ec);
        return;
    }
}

CZ_DECL void parser::on_meta_complete(std::error_code& ec) {
    state_ = skip_ ? state::skip : state::header;
    switch (meta_type_) {
    case 'L':
        long_name_.emplace(detail::cut_at_nul(meta_));
        break;
    case 'K':
        long_link_.emplace(detail::cut_at_nul(meta_));
        break;
    default: // 'x', 'X', 'g': the records were applied as they streamed by
        pax_->finish(ec);
        break;
    }
    meta_.clear();
    if (meta_.capacity() > (64u << 10)) meta_.shrink_to_fit();
}

CZ_DECL void parser::start_entry(const header_block& h, std::error_code& ec) {
    entry& e = entry_;
    e.offset = *entry_start_;
    e.header_offset = current_header_offset_;
    e.typeflag = h.typeflag;
    e.type = detail::type_of(h.typeflag);
    auto layout = h.kind();

    auto mode = parse_number({h.mode, sizeof h.mode});
    auto uid = parse_number({h.uid, sizeof h.uid});
    auto gid = parse_number({h.gid, sizeof h.gid});
    auto size = parse_number({h.size, sizeof h.size});
    auto mtime = parse_number({h.mtime, sizeof h.mtime});
    if (!mode || !uid || !gid || !size || !mtime || *size < 0 || *uid < 0 || *gid < 0) {
        ec = errc::bad_number;
        return;
    }
    e.mode = std::uint32_t(*mode & 07777);
    e.uid = std::uint64_t(*uid);
    e.gid = std::uint64_t(*gid);
    e.size = std::uint64_t(*size);
    constexpr std::int64_t max_seconds = std::numeric_limits<std::int64_t>::max() / 1'000'000'000;
    e.mtime_ns = std::clamp(*mtime, -max_seconds, max_seconds) * 1'000'000'000;
    e.atime_ns.reset();
    e.ctime_ns.reset();
    e.devmajor = e.devminor = 0;
    e.xattrs.clear();
    e.sparse = sparse_format::none;
    e.sparse_map.clear();

    if (long_name_) {
        e.name = std::move(*long_name_);
    } else if (layout == header_block::layout::ustar && h.prefix[0] != '\0') {
        e.name.assign(field_string(h.prefix, sizeof h.prefix));
        e.name += '/';
        e.name += field_string(h.name, sizeof h.name);
    } else {
        e.name.assign(field_string(h.name, sizeof h.name));
    }
    if (long_link_)
        e.linkname = std::move(*long_link_);
    else
        e.linkname.assign(field_string(h.linkname, sizeof h.linkname));

    if (layout != header_block::layout::v7) {
        e.uname.assign(field_string(h.uname, sizeof h.uname));
        e.gname.assign(field_string(h.gname, sizeof h.gname));
        if (e.type == entry_type::char_device || e.type == entry_type::block_device) {
            auto major = parse_number({h.devmajor, sizeof h.devmajor});
            auto minor = parse_number({h.devminor, sizeof h.devminor});
            if (!major || !minor || *major < 0 || *minor < 0 || *major > 0xffffffff ||
                *minor > 0xffffffff) {
                ec = errc::bad_number;
                return;
            }
            e.devmajor = std::uint32_t(*major);
            e.devminor = std::uint32_t(*minor);
        }
    } else {
        e.uname.clear();
        e.gname.clear();
    }
    if (layout == header_block::layout::gnu) {
        // Written only by `tar --incremental`; garbage here is ignored, as GNU tar does outside
        // incremental mode.
        auto time_field = [&](const char* f, std::optional<std::int64_t>& out) {
            if (f[0] == '\0') return;
            if (auto t = parse_number({f, 12}); t && *t > -max_seconds && *t < max_seconds)
                out = *t * 1'000'000'000;
        };
        time_field(h.gnu.atime, e.atime_ns);
        time_field(h.gnu.ctime, e.ctime_ns);
    }

    // Pax records: global ones first, then this entry's; each given value replaces the header's.
    std::optional<std::uint64_t> sparse_major, sparse_minor, sparse_size;
    std::optional<std::string> sparse_name;
    sparse_format map_format = sparse_format::none;
    std::vector<sparse_segment> pax_map;
    for (auto* st : {global_.get(), pending_.get()}) {
        if (!st) continue;
        if (st->path) e.name = *st->path;
        if (st->linkpath) e.linkname = *st->linkpath;
        if (st->uname) e.uname = *st->uname;
        if (st->gname) e.gname = *st->gname;
        if (st->size) e.size = *st->size;
        if (st->uid) e.uid = *st->uid;
        if (st->gid) e.gid = *st->gid;
        if (st->mtime) e.mtime_ns = *st->mtime;
        if (st->atime) e.atime_ns = st->atime;
        if (st->ctime) e.ctime_ns = st->ctime;
        if (st->devmajor) e.devmajor = *st->devmajor;
        if (st->devminor) e.devminor = *st->devminor;
        std::size_t bytes = 0;
        for (auto& x : e.xattrs)
            bytes += x.name.size() + x.value.size();
        for (auto& x : st->xattrs) {
            detail::set_xattr(e.xattrs, bytes, x.name, x.value, opt_, ec);
            if (ec) return;
        }
        if (st->sparse_major) sparse_major = st->sparse_major;
        if (st->sparse_minor) sparse_minor = st->sparse_minor;
        if (st->sparse_size) sparse_size = st->sparse_size;
        if (st->sparse_name) sparse_name = st->sparse_name;
        if (st->map_format != sparse_format::none) {
            map_format = st->map_format;
            pax_map = st->sparse_map;
        }
    }
    if (e.name.size() > opt_.max_name || e.linkname.size() > opt_.max_name) {
        ec = errc::name_too_long;
        return;
    }

    // Old tars wrote a directory as a regular file whose name ends in '/'. GNU tar (for
    // '0', NUL and '7') and libarchive (for every regular type) extract such an entry as a
    // directory; cz does where both do.
    if ((h.typeflag == '0' || h.typeflag == '\0' || h.typeflag == '7') && e.name.ends_with('/'))
        e.type = entry_type::directory;
    // GNU tar and libarchive extract these without reading any data, whatever the header's or a
    // pax size says; what follows their header is the next header. (GNU tar's -t and -O skip the
    // size, so its listing can disagree with its own extraction; cz reads as both extract.)
    switch (e.type) {
    case entry_type::directory:
    case entry_type::symlink:
    case entry_type::char_device:
    case entry_type::block_device:
    case entry_type::fifo:
        e.size = 0;
        break;
    default:
        break;
    }
    if (e.type == entry_type::hard_link && !(pending_ && pending_->size) &&
        !(global_ && global_->size))
        e.size = 0; // "links 0 size on tape": only a pax size gives a hard link data
    e.stored_size = e.size;

    if (h.typeflag == 'S') {
        auto real = parse_number({h.gnu.realsize, sizeof h.gnu.realsize});
        if (!real || *real < 0) {
            ec = errc::bad_number;
            return;
        }
        e.sparse = sparse_format::gnu_old;
        e.size = std::uint64_t(*real);
        detail::read_gnu_sparse(h.gnu.sparse, 4, e.sparse_map, opt_, ec);
        if (ec) return;
        if (h.gnu.isextended) {
            state_ = state::sparse_ext;
            return;
        }
    } else if (e.is_file() && sparse_major && *sparse_major == 1 && sparse_minor &&
               *sparse_minor == 0) {
        if (!sparse_size) {
            ec = errc::bad_sparse_map;
            return;
        }
        e.sparse = sparse_format::pax_1_0;
        if (sparse_name) e.name = std::move(*sparse_name);
        e.size = *sparse_size;
        sparse_map_count_.reset();
        sparse_map_offset_.reset();
        sparse_text_.clear();
        state_ = state::sparse_map;
        return;
    } else if (e.is_file() && map_format != sparse_format::none) {
        e.sparse = map_format;
        if (sparse_name) e.name = std::move(*sparse_name);
        if (sparse_size) e.size = *sparse_size;
        e.sparse_map = std::move(pax_map);
    }
    enter_data(ec);
}

CZ_DECL void parser::on_sparse_extension(const std::byte* block, std::error_code& ec) {
    add_meta_bytes(block_size, ec);
    if (ec) return;
    // SAFETY: block points at a whole 512-byte block; the extension struct is 512 chars.
    auto* ext = reinterpret_cast<const gnu_sparse_extension*>(block);
    detail::read_gnu_sparse(ext->sparse, 21, entry_.sparse_map, opt_, ec);
    if (ec) return;
    if (!ext->isextended) enter_data(ec);
}

CZ_DECL void parser::on_sparse_map_block(const std::byte* block, std::error_code& ec) {
    // The pax 1.0 map: decimal numbers, one per line: the count, then offset and length pairs,
    // padded with NULs to a block boundary. It is part of the entry's stored data.
    add_meta_bytes(block_size, ec);
    if (ec) return;
    if (entry_.stored_size < block_size) {
        ec = errc::bad_sparse_map;
        return;
    }
    entry_.stored_size -= block_size;
    // SAFETY: block points at a whole 512-byte block.
    sparse_text_.append(reinterpret_cast<const char*>(block), block_size);
    std::size_t pos = 0;
    bool complete = false;
    for (;;) {
        auto nl = sparse_text_.find('\n', pos);
        if (nl == std::string::npos) break;
        auto v = detail::parse_decimal(std::string_view(sparse_text_).substr(pos, nl - pos),
                                       std::uint64_t(std::numeric_limits<std::int64_t>::max()));
        pos = nl + 1;
        if (!v) {
            ec = errc::bad_sparse_map;
            return;
        }
        if (!sparse_map_count_) {
            if (*v > opt_.max_sparse_entries) {
                ec = errc::sparse_map_too_large;
                return;
            }
            sparse_map_count_ = *v;
        } else if (sparse_map_offset_) {
            entry_.sparse_map.push_back({*sparse_map_offset_, *v});
            sparse_map_offset_.reset();
        } else {
            sparse_map_offset_ = *v;
        }
        if (entry_.sparse_map.size() == *sparse_map_count_ && !sparse_map_offset_) {
            complete = true;
            break;
        }
    }
    if (complete) {
        sparse_text_.clear();
        enter_data(ec);
        return;
    }
    sparse_text_.erase(0, pos);
    // What is left is part of one number: at most 19 digits and no NUL.
    if (sparse_text_.size() > 20 || sparse_text_.find('\0') != std::string::npos)
        ec = errc::bad_sparse_map;
}

CZ_DECL void parser::enter_data(std::error_code& ec) {
    entry& e = entry_;
    if (e.is_sparse()) {
        std::uint64_t end = 0, total = 0;
        for (auto& s : e.sparse_map) {
            if (s.offset < end || s.length > e.size || s.offset > e.size - s.length) {
                ec = errc::bad_sparse_map;
                return;
            }
            end = s.offset + s.length;
            total += s.length;
        }
        if (total > e.stored_size) {
            ec = errc::bad_sparse_map;
            return;
        }
        // GNU tar extracts a sparse file up to the end of its last map entry (writers end the
        // map with an empty entry at the real size); the declared real size is only a bound.
        e.size = end;
    }
    reset_pending();
    data_remaining_ = e.stored_size;
    skip_ = padded(e.stored_size) - e.stored_size;
    state_ = data_remaining_ ? state::data : state::header;
    event_ = parse_event::entry;
}

CZ_DECL void parser::finish(std::error_code& ec) {
    ec.clear();
    if (state_ == state::failed) {
        ec = error_;
        return;
    }
    if (state_ == state::ended) return;
    if (state_ == state::header && !entry_start_) {
        // A clean end between entries, without zero blocks, or with a short last block of
        // zeros: GNU tar takes both silently.
        // SAFETY: block_fill_ < block_size bytes of block_ have been written.
        auto* partial = reinterpret_cast<const unsigned char*>(block_.get());
        bool zeros =
            std::all_of(partial, partial + block_fill_, [](unsigned char c) { return c == 0; });
        if (zeros && !opt_.require_end_marker) {
            state_ = state::ended;
            return;
        }
        current_header_offset_ = offset_ - block_fill_;
    }
    if (state_ == state::data || state_ == state::skip || state_ == state::sparse_map ||
        state_ == state::sparse_ext)
        current_header_offset_ = entry_.header_offset;
    fail(ec, errc::truncated, 0);
}

} // namespace cz::tar
