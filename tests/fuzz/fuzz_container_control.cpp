// Fuzzes what the cz CLI reads from a detached container's supervisor and from its files: the
// control protocol's frames (cz/container/control.hpp) fed in pieces of the input's choosing,
// each frame's payload decoded by its type (exec requests, stats, container paths of cp, path
// information), and the log's records (cz/container/log.hpp). Either
// a frame decodes with a payload within the limit and a type of the side it is read on, or the
// error is bad_frame; error messages come out without control characters, exit codes in 0-255,
// terminal sizes non-zero; a log record's data lies inside the input.
#include <cz/container/control.hpp>
#include <cz/container/log.hpp>

#include <string>
#include <string_view>

namespace {

namespace ct = cz::container;

void check_payload(const ct::control_frame& f) {
    std::error_code ec;
    if (f.payload.size() + 1 > ct::max_control_frame) __builtin_trap();
    switch (f.type) {
    case ct::control_type::error: {
        auto e = ct::decode_control_error(f.payload, ec);
        if (ec) {
            if (ec != ct::errc::bad_frame) __builtin_trap();
            break;
        }
        if (e.exit_code < 0 || e.exit_code > 255 || e.message.size() > ct::max_control_message)
            __builtin_trap();
        for (char c : e.message)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
        break;
    }
    case ct::control_type::exit:
    case ct::control_type::kill:
    case ct::control_type::stop:
        ct::decode_i32(f.payload, ec);
        if (ec && ec != ct::errc::bad_frame) __builtin_trap();
        if (!ec && f.payload.size() != 4) __builtin_trap();
        break;
    case ct::control_type::resize: {
        std::uint16_t rows = 0, cols = 0;
        ct::decode_resize(f.payload, rows, cols, ec);
        if (!ec && (rows == 0 || cols == 0)) __builtin_trap();
        break;
    }
    case ct::control_type::exec: {
        std::string why;
        auto r = ct::exec_request_from_json(cz::as_chars(f.payload), ec, &why);
        if (ec && (ec != ct::errc::bad_frame || why.empty())) __builtin_trap();
        if (!ec && r.args.empty()) __builtin_trap();
        break;
    }
    case ct::control_type::path_stat:
    case ct::control_type::copy_out:
    case ct::control_type::copy_in: {
        auto path = ct::decode_container_path(f.payload, ec);
        if (ec && ec != ct::errc::bad_frame) __builtin_trap();
        if (!ec && (path.empty() || path.front() != '/' || path.size() > 4095 ||
                    path.find('\0') != std::string::npos))
            __builtin_trap();
        break;
    }
    case ct::control_type::path_info: {
        std::string why;
        auto p = ct::path_info_from_json(cz::as_chars(f.payload), ec, &why);
        if (ec && (ec != ct::errc::bad_frame || why.empty())) __builtin_trap();
        if (!ec) { // what decodes encodes back to the same figures
            auto again = ct::path_info_from_json(ct::to_json(p), ec);
            if (ec || again.exists != p.exists || again.mode != p.mode || again.size != p.size ||
                again.mtime != p.mtime)
                __builtin_trap();
        }
        break;
    }
    case ct::control_type::stats_result: {
        std::string why;
        ct::stats_from_json(cz::as_chars(f.payload), ec, &why);
        if (ec && (ec != ct::errc::bad_frame || why.empty())) __builtin_trap();
        break;
    }
    default:
        break;
    }
}

void read_frames(std::string_view data, bool from_supervisor, std::size_t piece) {
    ct::control_reader reader(from_supervisor);
    for (std::size_t at = 0; at < data.size(); at += piece) {
        reader.feed(cz::as_bytes(data.substr(at, piece)));
        for (;;) {
            std::error_code ec;
            std::string why;
            auto f = reader.next(ec, &why);
            if (ec) {
                if (ec != ct::errc::bad_frame || why.find("offset") == std::string::npos)
                    __builtin_trap();
                return;
            }
            if (!f) break;
            auto t = static_cast<int>(f->type);
            if (from_supervisor ? t < 64 : t >= 64) __builtin_trap();
            check_payload(*f);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* bytes, std::size_t size) {
    if (size == 0) return 0;
    std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    std::size_t piece = 1 + bytes[0] % 64;
    read_frames(data, true, piece);
    read_frames(data, false, piece);

    // The same bytes as a log: records one after another until one is cut or bad.
    auto rest = cz::as_bytes(data);
    while (!rest.empty()) {
        ct::log_record r;
        std::error_code ec;
        std::string why;
        auto n = ct::decode_log_record(rest, r, ec, &why);
        if (ec) {
            if (ec != ct::errc::bad_state || why.empty() || n != 0) __builtin_trap();
            break;
        }
        if (n == 0) break;
        if (n > rest.size() || r.data.data() < rest.data() ||
            r.data.data() + r.data.size() > rest.data() + n || (r.stream != 1 && r.stream != 2) ||
            r.time < 0)
            __builtin_trap();
        rest = rest.subspan(n);
    }
    return 0;
}
