// Out-of-line definitions for cz/container/control.hpp.
#pragma once

#include <cz/container/control.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <iterator>
#include <stdexcept>

namespace cz::container {

namespace detail {

inline std::size_t frame_fail(std::error_code& ec, std::string* detail, std::string what) {
    ec = make_error_code(errc::bad_frame);
    if (detail) *detail = std::move(what);
    return 0;
}

inline std::uint32_t load_le32(const std::byte* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

inline void store_le32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        out += static_cast<char>((v >> (8 * i)) & 0xff);
}

inline bool known_type(std::uint8_t t, bool from_supervisor) {
    if (from_supervisor) return t >= 64 && t <= 71;
    return t >= 1 && t <= 11;
}

} // namespace detail

CZ_DECL std::size_t decode_control_frame(bytes_view in, bool from_supervisor, control_frame& out,
                                         std::error_code& ec, std::string* detail) {
    ec.clear();
    if (in.size() < 4) return 0;
    // SAFETY: in.size() >= 4 checked above.
    std::uint32_t length = detail::load_le32(in.data());
    if (length == 0) return detail::frame_fail(ec, detail, "frame of length 0");
    if (length > max_control_frame)
        return detail::frame_fail(ec, detail,
                                  "frame of " + std::to_string(length) + " bytes (at most " +
                                      std::to_string(max_control_frame) + ")");
    if (in.size() - 4 < length) return 0;
    auto type = static_cast<std::uint8_t>(in[4]);
    if (!detail::known_type(type, from_supervisor))
        return detail::frame_fail(ec, detail, "frame of unknown type " + std::to_string(type));
    out.type = static_cast<control_type>(type);
    // SAFETY: 4 + length <= in.size() checked above, length >= 1.
    out.payload = in.subspan(5, length - 1);
    return 4 + static_cast<std::size_t>(length);
}

CZ_DECL std::string encode_control_frame(control_type type, bytes_view payload) {
    std::string out;
    out.reserve(5 + payload.size());
    detail::store_le32(out, static_cast<std::uint32_t>(payload.size() + 1));
    out += static_cast<char>(type);
    out.append(as_chars(payload));
    return out;
}

CZ_DECL std::string encode_i32(std::int32_t v) {
    std::string out;
    detail::store_le32(out, static_cast<std::uint32_t>(v));
    return out;
}

CZ_DECL std::int32_t decode_i32(bytes_view payload, std::error_code& ec) {
    ec.clear();
    if (payload.size() != 4) {
        ec = make_error_code(errc::bad_frame);
        return 0;
    }
    return static_cast<std::int32_t>(detail::load_le32(payload.data()));
}

CZ_DECL control_error decode_control_error(bytes_view payload, std::error_code& ec) {
    ec.clear();
    control_error e;
    if (payload.size() < 4 || payload.size() - 4 > max_control_message) {
        ec = make_error_code(errc::bad_frame);
        return e;
    }
    auto code = static_cast<std::int32_t>(detail::load_le32(payload.data()));
    if (code < 0 || code > 255) {
        ec = make_error_code(errc::bad_frame);
        return e;
    }
    e.exit_code = code;
    e.message.assign(as_chars(payload.subspan(4)));
    for (char& c : e.message)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return e;
}

CZ_DECL std::string encode_control_error(int exit_code, std::string_view message) {
    auto payload = encode_i32(exit_code);
    payload.append(message.substr(0, max_control_message));
    return encode_control_frame(control_type::error, as_bytes(payload));
}

CZ_DECL void decode_resize(bytes_view payload, std::uint16_t& rows, std::uint16_t& columns,
                           std::error_code& ec) {
    ec.clear();
    if (payload.size() != 4) {
        ec = make_error_code(errc::bad_frame);
        return;
    }
    rows = static_cast<std::uint16_t>(static_cast<unsigned>(payload[0]) |
                                      (static_cast<unsigned>(payload[1]) << 8));
    columns = static_cast<std::uint16_t>(static_cast<unsigned>(payload[2]) |
                                         (static_cast<unsigned>(payload[3]) << 8));
    if (rows == 0 || columns == 0) ec = make_error_code(errc::bad_frame);
}

CZ_DECL std::string encode_resize(std::uint16_t rows, std::uint16_t columns) {
    std::string p;
    p += static_cast<char>(rows & 0xff);
    p += static_cast<char>(rows >> 8);
    p += static_cast<char>(columns & 0xff);
    p += static_cast<char>(columns >> 8);
    return encode_control_frame(control_type::resize, as_bytes(p));
}

CZ_DECL std::string to_json(const exec_request& r) {
    nlohmann::json j = {{"args", r.args}, {"env", r.env},           {"cwd", r.working_dir},
                        {"user", r.user}, {"terminal", r.terminal}, {"interactive", r.interactive},
                        {"rows", r.rows}, {"columns", r.columns}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CZ_DECL exec_request exec_request_from_json(std::string_view text, std::error_code& ec,
                                            std::string* detail) {
    ec.clear();
    exec_request r;
    auto j = nlohmann::json::parse(text, nullptr, false);
    const char* field = "the request";
    try {
        if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not an object");
        field = "args";
        r.args = j.at("args").get<std::vector<std::string>>();
        if (r.args.empty()) throw std::invalid_argument("empty");
        field = "env";
        r.env = j.at("env").get<std::vector<std::string>>();
        field = "cwd";
        r.working_dir = j.at("cwd").get<std::string>();
        field = "user";
        r.user = j.at("user").get<std::string>();
        field = "terminal";
        r.terminal = j.at("terminal").get<bool>();
        field = "interactive";
        r.interactive = j.at("interactive").get<bool>();
        for (auto [name, out] : {std::pair{"rows", &r.rows}, std::pair{"columns", &r.columns}}) {
            field = name;
            auto v = j.at(name).get<std::int64_t>();
            if (v < 0 || v > 65535) throw std::out_of_range("size");
            *out = static_cast<std::uint16_t>(v);
        }
    } catch (const std::exception&) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = std::string("exec request: field \"") + field + "\" is wrong";
        return {};
    }
    return r;
}

namespace detail {

inline constexpr const char* stats_fields[] = {"cpu_usec",     "memory_current", "memory_max",
                                               "pids_current", "pids_max",       "net_rx",
                                               "net_tx",       "block_read",     "block_write"};

inline std::uint64_t* stats_field(container_stats& s, std::size_t i) {
    std::uint64_t* fields[] = {&s.cpu_usec,     &s.memory_current, &s.memory_max,
                               &s.pids_current, &s.pids_max,       &s.net_rx,
                               &s.net_tx,       &s.block_read,     &s.block_write};
    return fields[i];
}

} // namespace detail

CZ_DECL std::string to_json(const container_stats& s) {
    nlohmann::json j = {{"time", s.time}};
    auto copy = s;
    for (std::size_t i = 0; i < std::size(detail::stats_fields); ++i)
        j[detail::stats_fields[i]] = *detail::stats_field(copy, i);
    return j.dump();
}

CZ_DECL container_stats stats_from_json(std::string_view text, std::error_code& ec,
                                        std::string* detail) {
    ec.clear();
    container_stats s;
    auto j = nlohmann::json::parse(text, nullptr, false);
    const char* field = "the figures";
    try {
        if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not an object");
        field = "time";
        s.time = j.at("time").get<std::int64_t>();
        for (std::size_t i = 0; i < std::size(detail::stats_fields); ++i) {
            field = detail::stats_fields[i];
            const auto& v = j.at(field);
            if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
                throw std::invalid_argument("not a count");
            *detail::stats_field(s, i) = v.get<std::uint64_t>();
        }
    } catch (const std::exception&) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = std::string("stats: field \"") + field + "\" is wrong";
        return {};
    }
    return s;
}

CZ_DECL std::string decode_container_path(bytes_view payload, std::error_code& ec) {
    ec.clear();
    auto text = as_chars(payload);
    if (text.empty() || text.size() > 4095 || text.front() != '/' ||
        text.find('\0') != std::string_view::npos) {
        ec = make_error_code(errc::bad_frame);
        return {};
    }
    return std::string(text);
}

CZ_DECL std::string to_json(const path_info& p) {
    nlohmann::json j = {
        {"exists", p.exists}, {"mode", p.mode}, {"size", p.size}, {"mtime", p.mtime}};
    return j.dump();
}

CZ_DECL path_info path_info_from_json(std::string_view text, std::error_code& ec,
                                      std::string* detail) {
    ec.clear();
    path_info p;
    auto j = nlohmann::json::parse(text, nullptr, false);
    const char* field = "the path's information";
    try {
        if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not an object");
        field = "exists";
        p.exists = j.at("exists").get<bool>();
        field = "mode";
        const auto& mode = j.at("mode");
        if (!mode.is_number_unsigned() || mode.get<std::uint64_t>() > 0xffffffffu)
            throw std::invalid_argument("not a mode");
        p.mode = mode.get<std::uint32_t>();
        field = "size";
        const auto& size = j.at("size");
        if (!size.is_number_unsigned()) throw std::invalid_argument("not a size");
        p.size = size.get<std::uint64_t>();
        field = "mtime";
        const auto& mtime = j.at("mtime");
        if (!mtime.is_number_integer()) throw std::invalid_argument("not a time");
        p.mtime = mtime.get<std::int64_t>();
    } catch (const std::exception&) {
        ec = make_error_code(errc::bad_frame);
        if (detail) *detail = std::string("path information: field \"") + field + "\" is wrong";
        return {};
    }
    return p;
}

CZ_DECL std::optional<control_frame> control_reader::next(std::error_code& ec,
                                                          std::string* detail) {
    ec.clear();
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > (1u << 16) && pos_ * 2 > buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    control_frame f;
    std::string why;
    auto n = decode_control_frame(as_bytes(std::string_view(buf_).substr(pos_)), from_supervisor_,
                                  f, ec, &why);
    if (ec) {
        if (detail) *detail = "control frame at offset " + std::to_string(offset_) + ": " + why;
        return std::nullopt;
    }
    if (n == 0) return std::nullopt;
    pos_ += n;
    offset_ += n;
    return f;
}

} // namespace cz::container
