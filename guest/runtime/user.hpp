// guest/runtime/user.hpp — /etc/passwd and /etc/group, and who a container process runs as.
//
// cz-init is a static binary: glibc's getpwnam() needs NSS modules that a static program cannot
// load, and it would read the VM's files rather than the container's anyway. So cz parses the
// container's own files, after pivot_root, the way runc does (libcontainer/user):
//
//   passwd: name:password:uid:gid:gecos:home:shell     group: name:password:gid:member,member
//
// A user is given as `user`, `user:group`, where each part is a name or a number. A number that
// has no entry still works (a container may run as any uid); a name that has no entry is an
// error. Supplementary groups come from /etc/group only when the group is not given explicitly
// (runc's rule: `alice` gets alice's groups, `alice:staff` gets just staff). HOME is the passwd
// entry's home, "/" when there is none.
//
// Parsing does no I/O: the caller reads the files and hands over their text.
#pragma once

#include "runtime/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cz::guest {

struct passwd_entry {
    std::string name;
    std::string password;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::string gecos;
    std::string home;
    std::string shell;
};

struct group_entry {
    std::string name;
    std::string password;
    std::uint32_t gid = 0;
    std::vector<std::string> members;
};

// The largest uid or gid accepted: runc's range, which keeps ids clear of (uid_t)-1.
inline constexpr std::uint32_t max_id = 0x7fffffff;

// Parses /etc/passwd text. Blank lines and `#` comments are skipped; so are lines without a name
// or with a uid or gid that is not a decimal number in range: a broken line must never resolve
// to uid 0 (runc would read a bad number as 0).
std::vector<passwd_entry> parse_passwd(std::string_view text);

// Parses /etc/group text, with the same rules for bad lines.
std::vector<group_entry> parse_group(std::string_view text);

// Who a process runs as.
struct exec_user {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> supplementary_gids;
    std::string home = "/";
};

// Resolves `spec` ("", "name", "uid", "name:group", "uid:gid", ...) against the entries, starting
// from `defaults` (used when `spec` is empty: then the user is looked up by defaults.uid). A null
// table means the file does not exist: names cannot resolve, numbers still do.
exec_user resolve_user(std::string_view spec, const exec_user& defaults,
                       const std::vector<passwd_entry>* passwd,
                       const std::vector<group_entry>* group, error& err);
exec_user resolve_user(std::string_view spec, const exec_user& defaults,
                       const std::vector<passwd_entry>* passwd,
                       const std::vector<group_entry>* group);

} // namespace cz::guest
