// The HTTP/1.1 response parser: every delimiting of a body, interim responses, the connection's
// fate, and what RFC 9112 says to reject. Each wire text is parsed whole and again fed in
// pieces of every small size (a caller that keeps what the parser did not consume and appends
// what it reads), and both must agree.
#include <cz/oci/registry/http.hpp>

#include "support/support.hpp"

#include <string>

namespace reg = cz::oci::registry;

namespace {

struct outcome {
    int heads = 0;
    int status = 0;
    std::string reason;
    std::vector<reg::http_header> headers;
    std::optional<std::uint64_t> content_length;
    std::string body;
    bool done = false;
    bool keep_alive = false;
    std::error_code ec;
    cz::error_info detail;
    std::size_t leftover = 0; // bytes after the response, not consumed

    bool operator==(const outcome& o) const {
        return heads == o.heads && status == o.status && reason == o.reason &&
               content_length == o.content_length && body == o.body && done == o.done &&
               keep_alive == o.keep_alive && ec == o.ec && detail == o.detail &&
               leftover == o.leftover && headers.size() == o.headers.size();
    }
};

// Feeds `wire` `step` bytes at a time (0: all at once) until the response is done, fails, or the
// input ends; `closes`: the connection ends after the last byte.
outcome parse(std::string_view wire, std::size_t step = 0, bool head_request = false,
              bool closes = true) {
    reg::http_response_parser p;
    p.reset(head_request);
    outcome o;
    std::string buffered;
    std::size_t given = 0;
    for (;;) {
        std::error_code ec;
        auto used = p.feed(cz::as_bytes(buffered), ec);
        if (ec == reg::errc::need_more) {
            buffered.erase(0, used);
            if (given == wire.size()) {
                if (!closes) break;
                p.finish(ec);
                if (ec) {
                    o.ec = ec;
                    o.detail = p.error_detail();
                } else {
                    o.done = p.event() == reg::http_event::done;
                    o.keep_alive = p.keep_alive();
                }
                break;
            }
            auto n = step == 0 ? wire.size() - given : std::min(step, wire.size() - given);
            buffered.append(wire.substr(given, n));
            given += n;
            continue;
        }
        if (ec) {
            o.ec = ec;
            o.detail = p.error_detail();
            break;
        }
        if (p.event() == reg::http_event::head) {
            ++o.heads;
            o.status = p.head().status;
            o.reason = p.head().reason;
            o.headers = p.head().headers;
            o.content_length = p.content_length();
        } else if (p.event() == reg::http_event::body) {
            o.body += cz::to_string(p.body());
        }
        buffered.erase(0, used);
        if (p.event() == reg::http_event::done) {
            o.done = true;
            o.keep_alive = p.keep_alive();
            o.leftover = buffered.size() + (wire.size() - given);
            break;
        }
    }
    return o;
}

// The outcome of parsing `wire` whole, checked to be the same fed 1, 2, 3, 7 and 64 bytes at a
// time.
outcome parse_every_way(std::string_view wire, bool head_request = false, bool closes = true) {
    auto whole = parse(wire, 0, head_request, closes);
    for (std::size_t step : {1, 2, 3, 7, 64}) {
        INFO("fed " << step << " bytes at a time");
        auto pieces = parse(wire, step, head_request, closes);
        CHECK(pieces == whole);
    }
    return whole;
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("http: a Content-Length body, headers as sent, the connection kept") {
        auto o = parse_every_way("HTTP/1.1 200 OK\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Docker-Content-Digest:sha256:abc  \r\n"
                                 "Content-Length: 11\r\n"
                                 "\r\n"
                                 "hello world");
        CHECK(o.heads == 1);
        CHECK(o.status == 200);
        CHECK(o.reason == "OK");
        REQUIRE(o.headers.size() == 3);
        CHECK(o.headers[1].name == "Docker-Content-Digest");
        CHECK(o.headers[1].value == "sha256:abc");
        CHECK(o.content_length == 11u);
        CHECK(o.body == "hello world");
        CHECK(o.done);
        CHECK(o.keep_alive);
        CHECK(!o.ec);

        reg::http_response_head h;
        h.headers = {{"Content-Type", "a"}, {"content-type", "b"}};
        CHECK(h.header("CONTENT-TYPE") == "a");
        CHECK(!h.header("Location"));
    }

    TEST_CASE("http: body_remaining counts down a Content-Length body, and only that") {
        auto remaining_after = [](std::string_view wire, std::size_t body_bytes) {
            reg::http_response_parser p;
            p.reset();
            std::error_code ec;
            auto used = p.feed(cz::as_bytes(wire), ec);
            REQUIRE(!ec);
            REQUIRE(p.event() == reg::http_event::head);
            auto before = p.body_remaining();
            // Body bytes fed from memory of their own, as a reader that received them directly.
            std::string body(wire.substr(used, body_bytes));
            if (!body.empty()) {
                CHECK(p.feed(cz::as_bytes(body), ec) == body.size());
                REQUIRE(!ec);
                CHECK(p.event() == reg::http_event::body);
                CHECK(p.body().data() == cz::as_bytes(body).data());
            }
            return std::pair{before, p.body_remaining()};
        };
        CHECK(remaining_after("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 5) ==
              std::pair<std::uint64_t, std::uint64_t>{11, 6});
        CHECK(remaining_after("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 11) ==
              std::pair<std::uint64_t, std::uint64_t>{11, 0});
        // Chunked, and to the end of the connection: the bytes to come are not all body.
        CHECK(remaining_after("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0) ==
              std::pair<std::uint64_t, std::uint64_t>{0, 0});
        CHECK(remaining_after("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 0) ==
              std::pair<std::uint64_t, std::uint64_t>{0, 0});
        // After HEAD: no body whatever Content-Length says.
        reg::http_response_parser p;
        p.reset(true);
        std::error_code ec;
        p.feed(cz::as_bytes(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")), ec);
        CHECK(p.body_remaining() == 0);
    }

    TEST_CASE("http: chunked bodies with extensions and trailers; bare LF line ends") {
        auto o = parse_every_way("HTTP/1.1 200 OK\r\n"
                                 "Transfer-Encoding: gzip, chunked\r\n"
                                 "\r\n"
                                 "5;name=value\r\nhello\r\n"
                                 "1\r\n \r\n"
                                 "A \r\n0123456789\r\n"
                                 "0\r\n"
                                 "Checksum: 1\r\n"
                                 "\r\n");
        CHECK(o.body == "hello 0123456789");
        CHECK(!o.content_length);
        CHECK(o.done);
        CHECK(o.keep_alive);

        auto lf = parse_every_way("HTTP/1.1 404 Not Found\nContent-Length: 2\n\nno");
        CHECK(lf.status == 404);
        CHECK(lf.body == "no");
    }

    TEST_CASE("http: a body to the end of the connection; HTTP/1.0 and Connection") {
        auto o = parse_every_way("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it, until the close");
        CHECK(o.body == "all of it, until the close");
        CHECK(o.done);
        CHECK(!o.keep_alive);

        CHECK(!parse_every_way("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        CHECK(parse_every_way(
                  "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                  .keep_alive);
        CHECK(!parse_every_way(
                   "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n")
                   .keep_alive);
        // Both Transfer-Encoding and Content-Length: the coding wins, the connection goes.
        auto both = parse_every_way(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
            "2\r\nok\r\n0\r\n\r\n");
        CHECK(both.body == "ok");
        CHECK(both.done);
        CHECK(!both.keep_alive);
        // A coding other than chunked last: the body runs to the close.
        auto gz = parse_every_way("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz");
        CHECK(gz.body == "zz");
        CHECK(!gz.keep_alive);
    }

    TEST_CASE("http: no body after HEAD, 204 and 304; interim 1xx responses skipped") {
        // A HEAD's answer announces the blob's size without sending it.
        auto head =
            parse_every_way("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n", true, false);
        CHECK(head.done);
        CHECK(head.content_length == 1048576u);
        CHECK(head.body.empty());
        CHECK(head.keep_alive);
        CHECK(parse_every_way("HTTP/1.1 204 No Content\r\n\r\n", false, false).done);
        CHECK(
            parse_every_way("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, false)
                .done);

        auto interim = parse_every_way("HTTP/1.1 100 Continue\r\n\r\n"
                                       "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                                       "HTTP/1.1 201 Created\r\nLocation: /v2/x\r\n"
                                       "Content-Length: 0\r\n\r\n");
        CHECK(interim.heads == 1);
        CHECK(interim.status == 201);
        REQUIRE(interim.headers.size() == 2);
        CHECK(interim.headers[0].value == "/v2/x");
    }

    TEST_CASE("http: the next response on the connection starts after this one") {
        std::string two = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                          "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\ntwo";
        auto first = parse(two, 0, false, false);
        CHECK(first.body == "one");
        REQUIRE(first.leftover == two.size() - 41);
        auto second = parse_every_way(std::string_view(two).substr(41));
        CHECK(second.status == 404);
        CHECK(second.body == "two");
    }

    TEST_CASE("http: what RFC 9112 says to reject, with where") {
        auto bad = [](std::string_view wire) { return parse_every_way(wire); };
        auto o = bad("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n");
        CHECK(o.ec == reg::errc::malformed_response);
        CHECK(o.detail.message.find("folded") != std::string::npos);
        CHECK(o.detail.offset == 25u);
        CHECK(bad("HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\n: 1\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nX-A: a\x01\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/2 200 OK\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 2000 OK\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 099 Low\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 600 High\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("ICY 200 OK\r\n\r\n").ec == reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 101 Switching Protocols\r\n\r\n").ec == reg::errc::unexpected_response);
        // Content-Length values that disagree, or are not numbers.
        CHECK(bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello").ec ==
              reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello").ec ==
              reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").ec ==
              reg::errc::malformed_response);
        CHECK(bad("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n").ec ==
              reg::errc::malformed_response);
        auto same = bad("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello");
        CHECK(same.body == "hello");
        // Chunks: a size that is no hex number, data longer than its size, a size too large.
        CHECK(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n").ec ==
              reg::errc::malformed_response);
        CHECK(
            bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n").ec ==
            reg::errc::malformed_response);
        CHECK(
            bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n").ec ==
            reg::errc::malformed_response);
        CHECK(
            bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n").ec ==
            reg::errc::malformed_response);
    }

    TEST_CASE("http: limits on the head, and a connection that closes early") {
        std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n";
        // (Large inputs go in whole and in 4 KiB reads: byte by byte, each feed would search the
        // whole buffered line again.)
        auto large = [](std::string_view wire) {
            auto whole = parse(wire);
            CHECK(parse(wire, 4096) == whole);
            return whole;
        };
        CHECK(large(big).ec == reg::errc::head_too_large);
        std::string many = "HTTP/1.1 200 OK\r\n";
        for (int i = 0; i < 200; ++i)
            many += "X-" + std::to_string(i) + ": v\r\n";
        CHECK(large(many + "\r\n").ec == reg::errc::head_too_large);
        // A status line that never ends is cut at the limit, not buffered forever.
        CHECK(large(std::string(70000, 'H')).ec == reg::errc::head_too_large);
        std::string long_chunk_line = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                                      std::string(5000, 'e') + "\r\n";
        CHECK(large(long_chunk_line).ec == reg::errc::head_too_large);

        auto none = parse_every_way("");
        CHECK(none.ec == reg::errc::truncated_response);
        CHECK(none.detail.message == "the connection closed before a response");
        auto short_body = parse_every_way("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        CHECK(short_body.ec == reg::errc::truncated_response);
        CHECK(short_body.body == "abc");
        CHECK(short_body.detail.offset == 42u);
        CHECK(parse_every_way("HTTP/1.1 200 OK\r\nContent-Len").ec ==
              reg::errc::truncated_response);
        CHECK(parse_every_way("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").ec ==
              reg::errc::truncated_response);

        // After an error, every call fails the same way.
        reg::http_response_parser p;
        std::error_code ec;
        p.feed(cz::as_bytes(std::string_view("HTTP/9 x\r\n")), ec);
        CHECK(ec == reg::errc::malformed_response);
        p.feed(cz::as_bytes(std::string_view("HTTP/1.1 200 OK\r\n")), ec);
        CHECK(ec == reg::errc::malformed_response);
        p.finish(ec);
        CHECK(ec == reg::errc::malformed_response);
        p.reset();
        CHECK(p.feed(cz::as_bytes(std::string_view("HTTP/1.1 200 OK\r\n")), ec) == 17);
        CHECK(ec == reg::errc::need_more);
    }

    TEST_CASE("http: requests are formatted, and cannot be smuggled") {
        std::error_code ec;
        auto r = reg::format_http_request("GET", "/v2/library/busybox/manifests/latest",
                                          "registry.example:5000",
                                          {{"Accept", "application/vnd.oci.image.index.v1+json"},
                                           {"Authorization", "Bearer abc"}},
                                          ec);
        CHECK(!ec);
        CHECK(r == "GET /v2/library/busybox/manifests/latest HTTP/1.1\r\n"
                   "Host: registry.example:5000\r\n"
                   "Accept: application/vnd.oci.image.index.v1+json\r\n"
                   "Authorization: Bearer abc\r\n\r\n");
        reg::format_http_request("GET", "/", "h", {{"X", "a\r\nInjected: 1"}}, ec);
        CHECK(ec == cz::errc::invalid_argument);
        reg::format_http_request("GET", "/ HTTP/1.1\r\nX: y", "h", {}, ec);
        CHECK(ec == cz::errc::invalid_argument);
        reg::format_http_request("GET", "/", "h\r\nX: y", {}, ec);
        CHECK(ec == cz::errc::invalid_argument);
        reg::format_http_request("G T", "/", "h", {}, ec);
        CHECK(ec == cz::errc::invalid_argument);
        reg::format_http_request("GET", "/", "h", {{"Bad Name", "v"}}, ec);
        CHECK(ec == cz::errc::invalid_argument);
    }

    TEST_CASE("http: HTTP-dates in their three forms; Retry-After as seconds or a date") {
        using namespace std::chrono;
        // RFC 9110's own example, in each form: 1994-11-06 08:49:37 UTC.
        sys_seconds example = sys_days(1994y / November / 6) + 8h + 49min + 37s;
        CHECK(reg::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == example);
        CHECK(reg::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == example);
        CHECK(reg::parse_http_date("Sun Nov  6 08:49:37 1994") == example);
        CHECK(reg::parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT") ==
              sys_seconds(sys_days(2000y / January / 1)));
        CHECK(reg::parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT") ==
              sys_seconds(sys_days(2000y / January / 1)));
        CHECK(reg::parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT") ==
              sys_seconds(sys_days(2024y / February / 29)) + 86399s);
        for (auto bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 31 Apr 1994 08:49:37 GMT",
                         "Sun, 29 Feb 2023 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ",
                         "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 0094 08:49:37 GMT",
                         "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 06 08:49:37 94",
                         "Sun Nov  6 08:49:37 1994 ", "Sun, 06 Nov 1994 08-49-37 GMT"}) {
            INFO(bad);
            CHECK(!reg::parse_http_date(bad));
        }

        sys_seconds now = sys_days(2026y / November / 30) + 12h;
        CHECK(reg::parse_retry_after("120", now) == 120s);
        CHECK(reg::parse_retry_after("0", now) == 0s);
        CHECK(reg::parse_retry_after("007", now) == 7s);
        // Absurd numbers saturate (the caller caps them); they are not ignored.
        CHECK(reg::parse_retry_after("99999999999999999999999", now) == reg::max_retry_after_value);
        CHECK(reg::parse_retry_after("Mon, 30 Nov 2026 12:00:42 GMT", now) == 42s);
        CHECK(reg::parse_retry_after("Mon, 30 Nov 2026 11:00:00 GMT", now) == 0s); // passed
        CHECK(reg::parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) ==
              reg::max_retry_after_value);
        for (auto bad : {"", "-1", "1.5", " 5", "5s", "soon", "0x10"}) {
            INFO(bad);
            CHECK(!reg::parse_retry_after(bad, now));
        }
    }
}
