// Fuzzes /etc/passwd and /etc/group parsing and user resolution: both files come from the
// container image, which is untrusted. The input is split into passwd text, group text and a
// user string at the first two 0xff bytes.
#include "runtime/user.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto cut1 = in.find('\xff');
    std::string_view passwd_text = in.substr(0, cut1);
    std::string_view rest = cut1 == std::string_view::npos ? "" : in.substr(cut1 + 1);
    auto cut2 = rest.find('\xff');
    std::string_view group_text = rest.substr(0, cut2);
    std::string_view user = cut2 == std::string_view::npos ? "" : rest.substr(cut2 + 1);

    auto passwd = cz::guest::parse_passwd(passwd_text);
    auto group = cz::guest::parse_group(group_text);
    for (const auto& p : passwd)
        if (p.name.empty() || p.uid > cz::guest::max_id || p.gid > cz::guest::max_id)
            __builtin_trap();
    for (const auto& g : group)
        if (g.name.empty() || g.gid > cz::guest::max_id) __builtin_trap();

    cz::guest::error err;
    auto u = cz::guest::resolve_user(user, cz::guest::exec_user{}, &passwd, &group, err);
    if (err) {
        if (err.message.empty()) __builtin_trap();
        return 0;
    }
    if (u.uid > cz::guest::max_id || u.gid > cz::guest::max_id || u.home.empty()) __builtin_trap();
    return 0;
}
