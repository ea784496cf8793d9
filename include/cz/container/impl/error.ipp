// Out-of-line definitions for cz/container/error.hpp.
#pragma once

#include <cz/container/error.hpp>

#include <string>

namespace cz::container {

namespace detail {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.container"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::no_command:
            return "no command: the image has no Entrypoint or Cmd, and none was given";
        case errc::bad_option:
            return "bad option";
        case errc::init_not_found:
            return "cz-init not found (give --init, or set CZ_INIT)";
        case errc::agent_timeout:
            return "the guest agent did not answer in time";
        case errc::vm_ended:
            return "the VM ended before the container's process";
        case errc::command_not_found:
            return "executable file not found";
        case errc::command_not_executable:
            return "permission denied: the command cannot be executed";
        case errc::start_failed:
            return "the container could not be started";
        case errc::interrupted:
            return "interrupted";
        case errc::no_such_container:
            return "no such container";
        case errc::ambiguous_container:
            return "more than one container matches";
        case errc::name_in_use:
            return "the name is already in use by another container";
        case errc::not_running:
            return "the container is not running";
        case errc::still_running:
            return "the container is running (stop it first, or force the removal)";
        case errc::bad_state:
            return "a container's state does not parse";
        case errc::bad_frame:
            return "the supervisor broke the control protocol";
        case errc::copy_failed:
            return "cannot copy";
        }
        return "unknown cz.container error " + std::to_string(value);
    }
};

} // namespace detail

CZ_DECL const std::error_category& container_category() noexcept {
    static const detail::category c;
    return c;
}

} // namespace cz::container
