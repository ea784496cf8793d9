// Out-of-line definitions for cz/oci/reference.hpp.
#pragma once

#include <cz/oci/detail/report.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/types.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace cz::oci {
namespace detail {

inline bool ref_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
inline bool ref_alnum(char c) {
    return ref_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
inline bool ref_word(char c) {
    return ref_alnum(c) || c == '_';
}

inline std::string ref_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return fmt::format("byte 0x{:02x}", u);
    return fmt::format("'{}'", c);
}

// Reports a failure at `offset` of the reference text.
class ref_errors {
public:
    ref_errors(std::error_code& ec, std::string* detail) : ec_(ec), detail_(detail) {}
    bool fail(std::size_t offset, std::string why) {
        return set_error(ec_, detail_, errc::invalid_reference,
                         fmt::format("at offset {}: {}", offset, why));
    }

private:
    std::error_code& ec_;
    std::string* detail_;
};

// host [":" port], `at` = offset of `domain` in the text.
inline bool check_domain(std::string_view domain, std::size_t at, ref_errors& err) {
    std::size_t i = 0;
    if (!domain.empty() && domain[0] == '[') {
        auto close = domain.find(']');
        if (close == std::string_view::npos)
            return err.fail(at, "IPv6 address without a closing ']'");
        if (close == 1) return err.fail(at + 1, "empty IPv6 address");
        for (std::size_t k = 1; k < close; ++k) {
            char c = domain[k];
            if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':'))
                return err.fail(at + k, fmt::format("{} in an IPv6 address", ref_char(c)));
        }
        i = close + 1;
    } else {
        // domain-name: components of [a-zA-Z0-9-], not starting or ending with '-'.
        std::size_t start = 0;
        while (true) {
            std::size_t k = start;
            while (k < domain.size() && (ref_alnum(domain[k]) || domain[k] == '-'))
                ++k;
            if (k == start) {
                if (k < domain.size() && domain[k] != '.')
                    return err.fail(at + k, fmt::format("{} in the domain", ref_char(domain[k])));
                return err.fail(at + k, "empty domain component");
            }
            if (domain[start] == '-')
                return err.fail(at + start, "a domain component starts with '-'");
            if (domain[k - 1] == '-')
                return err.fail(at + k - 1, "a domain component ends with '-'");
            if (k < domain.size() && domain[k] == '.') {
                start = k + 1;
                continue;
            }
            i = k;
            break;
        }
    }
    if (i == domain.size()) return true;
    if (domain[i] != ':')
        return err.fail(at + i, fmt::format("{} in the domain", ref_char(domain[i])));
    if (i + 1 == domain.size()) return err.fail(at + i + 1, "empty port");
    for (std::size_t k = i + 1; k < domain.size(); ++k)
        if (domain[k] < '0' || domain[k] > '9')
            return err.fail(at + k,
                            fmt::format("{} in the port (digits only)", ref_char(domain[k])));
    return true;
}

// path-component ("/" path-component)*, `at` = offset of `path` in the text.
inline bool check_path(std::string_view path, std::size_t at, ref_errors& err) {
    if (path.empty()) return err.fail(at, "empty repository path");
    for (std::size_t k = 0; k < path.size(); ++k)
        if (path[k] >= 'A' && path[k] <= 'Z')
            return err.fail(at + k, fmt::format("uppercase {} in the repository name (it must be "
                                                "lowercase)",
                                                ref_char(path[k])));
    std::size_t k = 0;
    while (true) {
        // One component: alnum+ (sep alnum+)*.
        if (k == path.size() || !ref_lower_alnum(path[k])) {
            if (k == path.size() || path[k] == '/') return err.fail(at + k, "empty path component");
            return err.fail(at + k,
                            fmt::format("a path component starts with {}", ref_char(path[k])));
        }
        while (k < path.size() && ref_lower_alnum(path[k]))
            ++k;
        if (k == path.size()) return true;
        char c = path[k];
        if (c == '/') {
            ++k;
            continue;
        }
        std::size_t sep = k;
        if (c == '.') {
            ++k;
        } else if (c == '_') {
            ++k;
            if (k < path.size() && path[k] == '_') ++k;
        } else if (c == '-') {
            while (k < path.size() && path[k] == '-')
                ++k;
        } else {
            return err.fail(at + k, fmt::format("{} in the repository name", ref_char(c)));
        }
        if (k == path.size() || !ref_lower_alnum(path[k])) {
            if (k < path.size() && (path[k] == '.' || path[k] == '_' || path[k] == '-'))
                return err.fail(at + sep, fmt::format("separator \"{}\" is not one of '.', '_', "
                                                      "'__', '-'...",
                                                      path.substr(sep, k + 1 - sep)));
            return err.fail(at + sep, "a separator must be followed by a letter or digit");
        }
    }
}

inline bool check_tag(std::string_view tag, std::size_t at, ref_errors& err) {
    if (tag.empty()) return err.fail(at, "empty tag");
    if (!ref_word(tag[0]))
        return err.fail(at, fmt::format("a tag starts with {} (a letter, digit or '_' needed)",
                                        ref_char(tag[0])));
    for (std::size_t k = 1; k < tag.size(); ++k)
        if (!ref_word(tag[k]) && tag[k] != '.' && tag[k] != '-')
            return err.fail(at + k, fmt::format("{} in the tag", ref_char(tag[k])));
    if (tag.size() > max_tag_length)
        return err.fail(at + max_tag_length, fmt::format("tag of {} characters, more than {}",
                                                         tag.size(), max_tag_length));
    return true;
}

} // namespace detail

CZ_DECL std::string reference::str() const {
    std::string s = name();
    if (!tag.empty()) s += ":" + tag;
    if (digest) s += "@" + digest->str();
    return s;
}

CZ_DECL std::string reference::familiar() const {
    std::string s;
    if (domain == default_domain) {
        s = path.starts_with("library/") && path.find('/', 8) == std::string::npos ? path.substr(8)
                                                                                   : path;
        // "docker.io/ex.io/app" must keep its domain: without it "ex.io" would read as one.
        auto slash = s.find('/');
        if (slash != std::string::npos) {
            auto first = std::string_view(s).substr(0, slash);
            if (first.find_first_of(".:") != std::string_view::npos || first == "localhost")
                s = name();
        }
    } else {
        s = name();
    }
    if (!tag.empty()) s += ":" + tag;
    if (digest) s += "@" + digest->str();
    return s;
}

CZ_DECL reference parse_reference(std::string_view text, std::error_code& ec, std::string* detail) {
    ec.clear();
    detail::ref_errors err(ec, detail);
    reference r;
    if (text.empty()) {
        err.fail(0, "empty reference");
        return {};
    }
    // Digest: everything after the first '@'.
    std::string_view named = text;
    if (auto at = text.find('@'); at != std::string_view::npos) {
        named = text.substr(0, at);
        auto digest_text = text.substr(at + 1);
        // The reference grammar's digest: alg ([-_+.] alg)* ":" hex{32,}, alg =
        // [A-Za-z][A-Za-z0-9]*.
        auto colon = digest_text.find(':');
        if (colon == std::string_view::npos) {
            err.fail(at + 1, "a digest is <algorithm>:<hex>");
            return {};
        }
        std::string why;
        r.digest = parse_digest(digest_text, ec, &why);
        if (ec) {
            // A malformed digest makes the reference invalid; a good digest of another
            // algorithm keeps its own error, so callers can say "unsupported", not "invalid".
            if (ec == errc::invalid_digest) ec = errc::invalid_reference;
            if (detail) *detail = fmt::format("at offset {}: digest {}", at + 1, why);
            return {};
        }
    }
    if (named.empty()) {
        err.fail(0, "no repository name before '@'");
        return {};
    }
    // A bare 64-hex string is an image ID, not a name (distribution/reference refuses it too).
    if (named.size() == 64 && std::all_of(named.begin(), named.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        })) {
        err.fail(0, "64 hexadecimal digits are an image ID, not a repository name");
        return {};
    }
    // Domain: the first component, when it looks like one.
    std::size_t path_at = 0;
    auto slash = named.find('/');
    if (slash != std::string_view::npos) {
        auto first = named.substr(0, slash);
        bool is_domain =
            first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
            std::any_of(first.begin(), first.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
        if (is_domain) {
            if (!detail::check_domain(first, 0, err)) return {};
            r.domain = std::string(first);
            path_at = slash + 1;
        }
    }
    if (r.domain.empty()) r.domain = std::string(default_domain);
    if (r.domain == "index.docker.io") r.domain = std::string(default_domain);
    // Tag: after the ':' in the path part (paths have no ':').
    auto rest = named.substr(path_at);
    auto colon = rest.find(':');
    auto path = rest.substr(0, colon);
    if (!detail::check_path(path, path_at, err)) return {};
    if (colon != std::string_view::npos) {
        auto tag = rest.substr(colon + 1);
        if (!detail::check_tag(tag, path_at + colon + 1, err)) return {};
        r.tag = std::string(tag);
    }
    r.path = std::string(path);
    if (r.domain == default_domain && r.path.find('/') == std::string::npos)
        r.path = "library/" + r.path;
    if (r.name().size() > max_name_length) {
        err.fail(0, fmt::format("the repository name ({}) is {} characters long, more than {}",
                                r.domain, r.name().size(), max_name_length));
        return {};
    }
    if (r.tag.empty() && !r.digest) r.tag = std::string(default_tag);
    return r;
}

CZ_DECL reference parse_reference(std::string_view text) {
    std::error_code ec;
    std::string detail;
    auto r = parse_reference(text, ec, &detail);
    if (ec)
        throw cz::system_error(ec,
                               fmt::format("reference {}: {}", detail::quote_input(text), detail));
    return r;
}

} // namespace cz::oci
