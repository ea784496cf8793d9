// guest/runtime/error.hpp — how cz-init's container runtime reports failures.
//
// Every failure is a std::error_code plus a message that names the input and the step, because
// the agent sends both to the host: the code says what kind of failure it was (a system error
// keeps its errno, so "exec: not found" is ENOENT), the message says where ("process.user.uid:
// expected an unsigned integer"). Functions come in pairs as elsewhere in cz: one that fills an
// `error&` and never throws for bad input, and a throwing one on top of it.
#pragma once

#include <string>
#include <system_error>

namespace cz::guest {

// Errors of the runtime itself; system calls report their errno in std::system_category.
enum class errc {
    // config.json is not JSON, a field has the wrong type, or a value is out of range.
    invalid_spec = 1,
    // The spec asks for something this runtime does not implement (a user namespace, ...).
    unsupported,
    // A user name (or a non-numeric user) is not in the container's /etc/passwd.
    unknown_user,
    // A group name (or a non-numeric group) is not in the container's /etc/group.
    unknown_group,
    // A uid or gid outside 0..2^31-1, as runc allows.
    id_out_of_range,
    // A cgroup limit was asked for but the cgroup v2 controller it needs is not available.
    cgroup_unavailable,
    // The container's setup process died or broke the protocol before it reported.
    setup_failed,
};

const std::error_category& guest_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), guest_category()};
}

// A failure: its code and a message naming the input and the step. Empty when code is not set.
struct error {
    std::error_code code;
    std::string message;
    // True when execve of the program itself failed (code is its errno), false when anything
    // before it did: a shell reports the first as exit status 126 or 127, the second as an error.
    bool exec_failed = false;

    explicit operator bool() const noexcept { return static_cast<bool>(code); }
    void set(std::error_code c, std::string m) {
        code = c;
        message = std::move(m);
        exec_failed = false;
    }
    void clear() {
        code.clear();
        message.clear();
        exec_failed = false;
    }
};

// Thrown by the throwing overloads: what() is the message followed by the code's own text.
class runtime_error : public std::system_error {
public:
    explicit runtime_error(const error& e) : std::system_error(e.code, e.message) {}
};

inline void throw_if(const error& e) {
    if (e) throw runtime_error(e);
}

} // namespace cz::guest

template <>
struct std::is_error_code_enum<cz::guest::errc> : std::true_type {};
