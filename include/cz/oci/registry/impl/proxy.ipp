// Out-of-line definitions for cz/oci/registry/proxy.hpp.
#pragma once

#include <cz/oci/registry/credentials.hpp>
#include <cz/oci/registry/detail/syntax.hpp>
#include <cz/oci/registry/http.hpp>
#include <cz/oci/registry/impl/credentials.ipp>
#include <cz/oci/registry/proxy.hpp>

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace cz::oci::registry {
namespace detail {

inline std::string first_env(const char* lower, const char* upper) {
    for (const char* name : {lower, upper})
        if (const char* v = std::getenv(name); v && *v) return v;
    return {};
}

// Percent-decoding of a URL's user or password (RFC 3986 section 2.1); nullopt for a '%' not
// followed by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

} // namespace detail

CZ_DECL proxy_settings proxy_from_environment() {
    return {detail::first_env("https_proxy", "HTTPS_PROXY"),
            detail::first_env("http_proxy", "HTTP_PROXY"),
            detail::first_env("no_proxy", "NO_PROXY")};
}

CZ_DECL proxy_server parse_proxy_url(std::string_view text, std::error_code& ec,
                                     error_info* detail) {
    auto fail = [&](std::string what, std::size_t at) {
        ec = errc::invalid_url;
        if (detail) *detail = {std::move(what), at};
        return proxy_server{};
    };
    ec.clear();
    if (text.empty()) return fail("empty", 0);
    if (text.size() > 8192) return fail("longer than 8192 bytes", 0);
    std::size_t start = 0;
    // A scheme, when the text starts with one (letters, digits, '+', '-', '.'; RFC 3986).
    if (auto sep = text.find("://");
        sep != std::string_view::npos && sep > 0 &&
        text.substr(0, sep).find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789+-.") == std::string_view::npos) {
        auto scheme = detail::lowercase(text.substr(0, sep));
        if (scheme != "http")
            return fail(fmt::format("a {}:// proxy (cz speaks to proxies in plain HTTP only)",
                                    scheme.substr(0, 20)),
                        0);
        start = sep + 3;
    }
    // The authority runs to the path, whose content a proxy URL does not use (nor does Go).
    auto end = text.find_first_of("/?#", start);
    auto authority = text.substr(start, end == std::string_view::npos ? end : end - start);
    proxy_server p;
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        auto userinfo = authority.substr(0, at);
        auto colon = userinfo.find(':');
        auto user = detail::percent_decode(userinfo.substr(0, colon));
        auto password = detail::percent_decode(
            colon == std::string_view::npos ? std::string_view{} : userinfo.substr(colon + 1));
        if (!user || !password) return fail("a '%' escape that is not two hex digits", start);
        p.authorization = "Basic " + detail::base64_encode(*user + ":" + *password);
        authority = authority.substr(at + 1);
        start += at + 1;
    }
    error_info why;
    auto u = parse_url("http://" + std::string(authority) + "/", ec, &why);
    if (ec) {
        // parse_url's positions count the "http://" put in front.
        auto offset = why.offset.value_or(0);
        return fail(why.message, start + (offset >= 7 ? offset - 7 : 0));
    }
    p.host = u.bare_host();
    p.port = u.port;
    p.name = "http://" + u.host + ":" + u.port;
    return p;
}

CZ_DECL std::optional<no_proxy_list::ip_address> no_proxy_list::parse_ip(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::string s(text);
    ip_address a;
    if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 address, as Go takes it.
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), mapped, 12) == 0) {
        std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
        std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
        return a;
    }
    a.v6 = true;
    return a;
}

CZ_DECL no_proxy_list::no_proxy_list(std::string_view text) {
    detail::for_each_list_element(text, [&](std::string_view item) { add(item); });
}

CZ_DECL void no_proxy_list::add(std::string_view item) {
    auto p = detail::lowercase(item);
    if (p == "*") {
        all_ = true;
        return;
    }
    entry e;
    // A CIDR range: address/bits.
    if (auto slash = p.find('/'); slash != std::string::npos) {
        auto ip = parse_ip(std::string_view(p).substr(0, slash));
        auto bits = std::string_view(p).substr(slash + 1);
        if (!ip || bits.empty() || bits.size() > 3 ||
            bits.find_first_not_of("0123456789") != std::string_view::npos)
            return;
        int n = std::atoi(std::string(bits).c_str());
        if (n > (ip->v6 ? 128 : 32)) return;
        e.what = entry::kind::cidr;
        e.ip = *ip;
        e.prefix_bits = n;
        entries_.push_back(e);
        return;
    }
    // host, host:port, [v6], [v6]:port, or an address without a port (IPv6 bare).
    std::string host = p;
    if (p.front() == '[') {
        auto close = p.find(']');
        if (close == std::string::npos) return;
        host = p.substr(0, close + 1);
        auto rest = std::string_view(p).substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return;
            e.port = std::string(rest.substr(1));
        }
    } else if (auto ip = parse_ip(p)) {
        e.what = entry::kind::ip;
        e.ip = *ip;
        entries_.push_back(e);
        return;
    } else if (auto colon = p.rfind(':'); colon != std::string::npos) {
        if (p.find(':') != colon) return; // colons, yet no IPv6 address
        host = p.substr(0, colon);
        e.port = p.substr(colon + 1);
    }
    if (!e.port.empty() || p.back() == ':')
        if (e.port.empty() || e.port.size() > 5 ||
            e.port.find_first_not_of("0123456789") != std::string::npos)
            return;
    if (host.empty()) return;
    if (auto ip = parse_ip(host)) {
        e.what = entry::kind::ip;
        e.ip = *ip;
        entries_.push_back(e);
        return;
    }
    if (host.starts_with("*.")) host.erase(0, 1);
    if (host == ".") return;
    e.exact = host.front() != '.';
    e.domain = e.exact ? "." + host : host;
    entries_.push_back(e);
}

CZ_DECL bool no_proxy_list::bypasses(std::string_view host, std::string_view port) const {
    if (all_) return true;
    auto ip = parse_ip(host);
    auto name = detail::lowercase(host);
    for (const auto& e : entries_) {
        bool port_ok = e.port.empty() || e.port == port;
        switch (e.what) {
        case entry::kind::domain:
            if (ip) break; // names match names; an address only by ip or cidr entries
            if ((name.size() > e.domain.size() && name.ends_with(e.domain)) ||
                (e.exact && name == std::string_view(e.domain).substr(1)))
                if (port_ok) return true;
            break;
        case entry::kind::ip:
            if (ip && ip->v6 == e.ip.v6 && ip->bytes == e.ip.bytes && port_ok) return true;
            break;
        case entry::kind::cidr: {
            if (!ip || ip->v6 != e.ip.v6) break;
            int bits = e.prefix_bits;
            bool inside = true;
            for (int i = 0; bits > 0 && inside; ++i, bits -= 8) {
                auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
                inside = (ip->bytes[i] & mask) == (e.ip.bytes[i] & mask);
            }
            if (inside) return true;
            break;
        }
        }
    }
    return false;
}

CZ_DECL proxy_selector::proxy_selector(const proxy_settings& settings)
    : no_proxy_(settings.no_proxy) {
    auto parse = [](const char* what, const std::string& text) -> std::optional<proxy_server> {
        if (text.empty()) return std::nullopt;
        std::error_code ec;
        error_info why;
        auto p = parse_proxy_url(text, ec, &why);
        if (ec) {
            // The text may hold a password: name the setting, and the position, not the value.
            throw_error(ec, "{}: {}", what, to_string(why));
        }
        return p;
    };
    https_ = parse("the https proxy (HTTPS_PROXY)", settings.https_proxy);
    http_ = parse("the http proxy (HTTP_PROXY)", settings.http_proxy);
}

CZ_DECL const proxy_server* proxy_selector::select(const url& u) const {
    const auto& proxy = u.https ? https_ : http_;
    if (!proxy) return nullptr;
    auto host = detail::lowercase(u.bare_host());
    // Go's rule: never through a proxy to localhost or a loopback address (127.0.0.0/8, ::1).
    if (host == "localhost") return nullptr;
    if (no_proxy_list("127.0.0.0/8,::1").bypasses(host, u.port)) return nullptr;
    if (no_proxy_.bypasses(host, u.port)) return nullptr;
    return &*proxy;
}

} // namespace cz::oci::registry
