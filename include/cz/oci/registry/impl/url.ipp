// Out-of-line definitions for cz/oci/registry/url.hpp.
#pragma once

#include <cz/oci/registry/detail/syntax.hpp>
#include <cz/oci/registry/http.hpp>
#include <cz/oci/registry/url.hpp>

#include <fmt/format.h>

namespace cz::oci::registry {

CZ_DECL std::string url::authority() const {
    bool default_port = (https && port == "443") || (!https && port == "80");
    return default_port ? host : host + ":" + port;
}

CZ_DECL std::string url::bare_host() const {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return host.substr(1, host.size() - 2);
    return host;
}

CZ_DECL url parse_url(std::string_view text, std::error_code& ec, error_info* detail) {
    url u;
    std::size_t pos = 0;
    auto fail = [&](std::string what) {
        ec = errc::invalid_url;
        if (detail) *detail = {std::move(what), pos};
        return url{};
    };
    ec.clear();
    if (text.size() > 8192) return fail("longer than 8192 bytes");
    for (char c : text)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail("a space or control character");
    auto lower_prefix = [&](std::string_view p) {
        return text.size() >= p.size() && iequals(text.substr(0, p.size()), p);
    };
    if (lower_prefix("https://")) {
        pos = 8;
    } else if (lower_prefix("http://")) {
        u.https = false;
        pos = 7;
    } else {
        return fail("not an http:// or https:// URL");
    }
    auto end = text.find_first_of("/?#", pos);
    auto authority = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (authority.find('@') != std::string_view::npos) return fail("credentials in a URL");
    std::string_view host = authority, port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return fail("an unclosed '[' in the host");
        host = authority.substr(0, close + 1);
        auto inside = host.substr(1, host.size() - 2);
        if (inside.empty() ||
            inside.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
            return fail("not an IPv6 address in brackets");
        auto rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return fail("text after the IPv6 address");
            port = rest.substr(1);
            if (port.empty()) return fail("an empty port");
        }
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port.empty()) return fail("an empty port");
    }
    if (host.empty()) return fail("no host");
    if (host.front() != '[')
        for (char c : host)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_'))
                return fail(fmt::format("'{}' in the host", c));
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
            return fail("a port that is not 1 to 65535");
    }
    u.host = std::string(host);
    u.port = port.empty() ? (u.https ? "443" : "80") : std::string(port);
    if (end == std::string_view::npos) {
        u.target = "/";
    } else {
        auto target = text.substr(end);
        target = target.substr(0, target.find('#'));
        u.target = target.empty() || target.front() != '/' ? "/" + std::string(target)
                                                           : std::string(target);
    }
    return u;
}

CZ_DECL url resolve_location(const url& base, std::string_view location, std::error_code& ec,
                             error_info* detail) {
    if (!location.empty() && location.front() == '/' &&
        (location.size() < 2 || location[1] != '/')) {
        for (char c : location)
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
                ec = errc::invalid_url;
                if (detail) *detail = {"a space or control character in the Location", 0};
                return {};
            }
        ec.clear();
        url u = base;
        u.target = std::string(location.substr(0, location.find('#')));
        return u;
    }
    return parse_url(location, ec, detail);
}

CZ_DECL std::string query_escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

} // namespace cz::oci::registry
