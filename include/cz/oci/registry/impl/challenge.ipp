// Out-of-line definitions for cz/oci/registry/challenge.hpp.
#pragma once

#include <cz/oci/registry/challenge.hpp>
#include <cz/oci/registry/detail/syntax.hpp>

#include <fmt/format.h>

namespace cz::oci::registry {
namespace detail {

// A cursor over one field value; every step either advances or reports where it failed.
class challenge_scanner {
public:
    explicit challenge_scanner(std::string_view s) : s_(s) {}

    bool at_end() const noexcept { return pos_ >= s_.size(); }
    char peek(std::size_t ahead = 0) const noexcept {
        return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0';
    }
    std::size_t pos() const noexcept { return pos_; }
    void seek(std::size_t p) noexcept { pos_ = p; }

    void skip_ows() noexcept {
        while (peek() == ' ' || peek() == '\t')
            ++pos_;
    }
    std::string_view token() noexcept {
        auto start = pos_;
        while (!at_end() && is_tchar(s_[pos_]))
            ++pos_;
        return s_.substr(start, pos_ - start);
    }
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    std::string_view token68() noexcept {
        auto start = pos_;
        auto is68 = [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
        };
        while (!at_end() && is68(s_[pos_]))
            ++pos_;
        if (pos_ == start) return {};
        while (peek() == '=')
            ++pos_;
        return s_.substr(start, pos_ - start);
    }
    // quoted-string, unescaped into `out`; false when unterminated or holding a control byte.
    bool quoted_string(std::string& out) {
        ++pos_; // the opening quote
        while (!at_end()) {
            auto c = static_cast<unsigned char>(s_[pos_++]);
            if (c == '"') return true;
            if (c == '\\') {
                if (at_end()) return false;
                c = static_cast<unsigned char>(s_[pos_++]);
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
            out.push_back(static_cast<char>(c));
        }
        return false;
    }
    // Whether an auth-param (`token BWS "="`, then not another "=") starts here.
    bool param_ahead() noexcept {
        auto save = pos_;
        bool yes = !token().empty();
        skip_ows();
        yes = yes && peek() == '=';
        if (yes) {
            ++pos_;
            skip_ows();
            yes = peek() != '=' && peek() != ',' && !at_end();
        }
        pos_ = save;
        return yes;
    }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
};

} // namespace detail

CZ_DECL std::optional<std::string_view> auth_challenge::param(std::string_view name) const {
    for (const auto& [n, v] : params)
        if (n == name) return std::string_view(v);
    return std::nullopt;
}

CZ_DECL std::vector<auth_challenge> parse_challenges(std::string_view value, std::error_code& ec,
                                                     error_info* detail) {
    std::vector<auth_challenge> out;
    detail::challenge_scanner in(value);
    auto fail = [&](std::string what) {
        ec = errc::malformed_challenge;
        if (detail) *detail = {std::move(what), in.pos()};
        return std::vector<auth_challenge>{};
    };
    ec.clear();
    for (;;) {
        // Empty list elements are allowed between challenges.
        while (in.peek() == ',' || in.peek() == ' ' || in.peek() == '\t')
            in.seek(in.pos() + 1);
        if (in.at_end()) break;
        auto scheme = in.token();
        if (scheme.empty()) return fail("expected an auth-scheme");
        if (out.size() == max_challenges)
            return fail(fmt::format("more than {} challenges", max_challenges));
        auto& c = out.emplace_back();
        c.scheme = std::string(scheme);
        if (in.at_end() || in.peek() == ',') continue; // a scheme alone
        if (in.peek() != ' ') return fail("expected a space after the auth-scheme");
        in.skip_ows();
        if (in.at_end() || in.peek() == ',') continue;
        if (!in.param_ahead()) {
            auto t = in.token68();
            if (t.empty()) return fail("expected auth-params or a token68");
            c.token68 = std::string(t);
            in.skip_ows();
            if (!in.at_end() && in.peek() != ',') return fail("unexpected text after a token68");
            continue;
        }
        // #auth-param: parameters of this challenge until a list element that is not one.
        for (;;) {
            auto name = detail::lowercase(in.token());
            in.skip_ows();
            in.seek(in.pos() + 1); // '=', as param_ahead() saw
            in.skip_ows();
            std::string v;
            if (in.peek() == '"') {
                if (!in.quoted_string(v)) return fail("unterminated or invalid quoted-string");
            } else {
                v = std::string(in.token());
                if (v.empty()) return fail(fmt::format("parameter '{}' has no value", name));
            }
            for (const auto& p : c.params)
                if (p.first == name)
                    return fail(fmt::format("parameter '{}' appears twice in one challenge", name));
            if (c.params.size() == max_challenge_params)
                return fail(fmt::format("more than {} parameters", max_challenge_params));
            c.params.emplace_back(std::move(name), std::move(v));
            in.skip_ows();
            if (in.at_end()) break;
            if (in.peek() != ',') return fail("expected ',' between parameters");
            // After the comma: another parameter of this challenge, or the next challenge.
            auto comma = in.pos();
            do
                in.seek(in.pos() + 1);
            while (in.peek() == ',' || in.peek() == ' ' || in.peek() == '\t');
            if (in.at_end()) break;
            if (!in.param_ahead()) {
                in.seek(comma);
                break;
            }
        }
    }
    return out;
}

} // namespace cz::oci::registry
