#include "runtime/user.hpp"

#include <charconv>

namespace cz::guest {

namespace {

// Splits `line` at ':' into at most `n` fields; the last field keeps any further ':'.
std::vector<std::string_view> split_fields(std::string_view line, std::size_t n) {
    std::vector<std::string_view> fields;
    while (fields.size() + 1 < n) {
        auto colon = line.find(':');
        if (colon == std::string_view::npos) break;
        fields.push_back(line.substr(0, colon));
        line.remove_prefix(colon + 1);
    }
    fields.push_back(line);
    return fields;
}

// A decimal id in 0..max_id, nothing else (no sign, no spaces, no empty string).
bool parse_id(std::string_view s, std::uint32_t& out) {
    if (s.empty() || s.size() > 10) return false;
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v > max_id) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// Calls f(line) for each line worth parsing: not blank, not a comment.
template <class F>
void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = trim(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty() || line.front() == '#') continue;
        f(line);
    }
}

std::string_view field(const std::vector<std::string_view>& f, std::size_t i) {
    return i < f.size() ? f[i] : std::string_view();
}

} // namespace

std::vector<passwd_entry> parse_passwd(std::string_view text) {
    std::vector<passwd_entry> out;
    for_each_line(text, [&](std::string_view line) {
        auto f = split_fields(line, 7);
        passwd_entry e;
        if (field(f, 0).empty() || !parse_id(field(f, 2), e.uid) || !parse_id(field(f, 3), e.gid))
            return;
        e.name = field(f, 0);
        e.password = field(f, 1);
        e.gecos = field(f, 4);
        e.home = field(f, 5);
        e.shell = field(f, 6);
        out.push_back(std::move(e));
    });
    return out;
}

std::vector<group_entry> parse_group(std::string_view text) {
    std::vector<group_entry> out;
    for_each_line(text, [&](std::string_view line) {
        auto f = split_fields(line, 4);
        group_entry e;
        if (field(f, 0).empty() || !parse_id(field(f, 2), e.gid)) return;
        e.name = field(f, 0);
        e.password = field(f, 1);
        auto members = field(f, 3);
        while (!members.empty()) {
            auto comma = members.find(',');
            auto m = trim(members.substr(0, comma));
            if (!m.empty()) e.members.emplace_back(m);
            members.remove_prefix(comma == std::string_view::npos ? members.size() : comma + 1);
        }
        out.push_back(std::move(e));
    });
    return out;
}

exec_user resolve_user(std::string_view spec, const exec_user& defaults,
                       const std::vector<passwd_entry>* passwd,
                       const std::vector<group_entry>* group, error& err) {
    err.clear();
    exec_user user = defaults;
    auto colon = spec.find(':');
    std::string_view user_arg = spec.substr(0, colon);
    std::string_view group_arg =
        colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
    std::uint32_t uid_num = 0, gid_num = 0;
    bool user_numeric = parse_id(user_arg, uid_num);
    bool group_numeric = parse_id(group_arg, gid_num);

    // The first passwd entry that matches wins, as in runc and glibc.
    const passwd_entry* matched = nullptr;
    if (passwd) {
        for (const auto& e : *passwd) {
            bool hit = user_arg.empty() ? e.uid == defaults.uid
                       : user_numeric   ? e.uid == uid_num
                                        : e.name == user_arg;
            if (hit) {
                matched = &e;
                break;
            }
        }
    }
    if (matched) {
        user.uid = matched->uid;
        user.gid = matched->gid;
        user.home = matched->home.empty() ? "/" : matched->home;
    } else if (!user_arg.empty()) {
        if (!user_numeric) {
            // A number that does not parse as an id is a range error, not a missing name.
            bool digits = user_arg.find_first_not_of("0123456789") == std::string_view::npos;
            err.set(digits ? errc::id_out_of_range : errc::unknown_user,
                    "user \"" + std::string(user_arg) +
                        "\": " + (digits ? "uid out of range" : "not found in /etc/passwd"));
            return {};
        }
        user.uid = uid_num;
    }

    if (!group_arg.empty()) {
        const group_entry* g = nullptr;
        if (group) {
            for (const auto& e : *group) {
                if (group_numeric ? e.gid == gid_num : e.name == group_arg) {
                    g = &e;
                    break;
                }
            }
        }
        if (g) {
            user.gid = g->gid;
        } else if (group_numeric) {
            user.gid = gid_num;
        } else {
            bool digits = group_arg.find_first_not_of("0123456789") == std::string_view::npos;
            err.set(digits ? errc::id_out_of_range : errc::unknown_group,
                    "group \"" + std::string(group_arg) +
                        "\": " + (digits ? "gid out of range" : "not found in /etc/group"));
            return {};
        }
    } else if (matched && group) {
        // Implicit group: the user's supplementary groups are every group listing its name.
        user.supplementary_gids.clear();
        for (const auto& e : *group)
            for (const auto& m : e.members)
                if (m == matched->name) {
                    user.supplementary_gids.push_back(e.gid);
                    break;
                }
    }
    return user;
}

exec_user resolve_user(std::string_view spec, const exec_user& defaults,
                       const std::vector<passwd_entry>* passwd,
                       const std::vector<group_entry>* group) {
    error err;
    auto u = resolve_user(spec, defaults, passwd, group, err);
    throw_if(err);
    return u;
}

} // namespace cz::guest
