// Fuzzes the HTTP/1.1 response parser: the input (a response as a server might send it, with the
// first byte choosing the read size and whether the request was HEAD) is parsed whole and in
// reads of that size, as a client with a buffer feeds it. Both must agree on the status, the body
// and the outcome; bodies never hold more bytes than the input; errors point inside the input.
// The input's first 64 bytes are also parsed as a Retry-After value and an HTTP-date.
#include <cz/oci/registry/http.hpp>

#include <string>

namespace {

struct result {
    int status = -1;
    std::string body;
    bool done = false;
    bool keep_alive = false;
    std::error_code ec;
    std::uint64_t offset = 0;
};

result run(std::string_view wire, std::size_t step, bool head_request) {
    namespace reg = cz::oci::registry;
    reg::http_response_parser p;
    p.reset(head_request);
    result r;
    std::string buffered;
    std::size_t given = 0;
    for (;;) {
        std::error_code ec;
        auto used = p.feed(cz::as_bytes(buffered), ec);
        if (used > buffered.size()) __builtin_trap();
        if (ec == reg::errc::need_more) {
            buffered.erase(0, used);
            if (given == wire.size()) {
                p.finish(ec);
                r.done = !ec && p.event() == reg::http_event::done;
                r.ec = ec;
                break;
            }
            auto n = std::min(step, wire.size() - given);
            buffered.append(wire.substr(given, n));
            given += n;
            continue;
        }
        if (ec) {
            r.ec = ec;
            if (p.error_detail().offset.value_or(0) > wire.size()) __builtin_trap();
            break;
        }
        if (p.event() == reg::http_event::head) r.status = p.head().status;
        if (p.event() == reg::http_event::body) r.body += cz::to_string(p.body());
        buffered.erase(0, used);
        if (p.event() == reg::http_event::done) {
            r.done = true;
            break;
        }
    }
    r.keep_alive = r.done && p.keep_alive();
    r.offset = p.offset();
    if (r.body.size() > wire.size() || r.offset > wire.size()) __builtin_trap();
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t step = 1 + (data[0] & 0x3f);
    bool head_request = data[0] & 0x40;
    std::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto whole = run(wire, wire.size() + 1, head_request);
    auto pieces = run(wire, step, head_request);
    if (whole.status != pieces.status || whole.body != pieces.body || whole.done != pieces.done ||
        whole.keep_alive != pieces.keep_alive || whole.ec != pieces.ec ||
        whole.offset != pieces.offset)
        __builtin_trap();
    if (whole.done && whole.status < 200) __builtin_trap();

    // The same bytes as a Retry-After value: a wait within bounds, or a date within the years
    // the parser takes.
    using namespace std::chrono;
    namespace reg = cz::oci::registry;
    auto value = wire.substr(0, 64);
    sys_seconds now(seconds(1'800'000'000));
    if (auto wait = reg::parse_retry_after(value, now))
        if (*wait < seconds(0) || *wait > reg::max_retry_after_value) __builtin_trap();
    if (auto date = reg::parse_http_date(value))
        if (*date < sys_days(year(1900) / 1 / 1) || *date > sys_days(year(10000) / 1 / 1))
            __builtin_trap();
    return 0;
}
