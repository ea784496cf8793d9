// Out-of-line definitions for cz/vm/error.hpp.
#pragma once

#include <cz/vm/error.hpp>

#include <string>

namespace cz::vm {
namespace detail {

class vm_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.vm"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::bad_archive_path: return "bad path for an archive entry";
        case errc::archive_entry_too_large: return "file too large for a cpio newc archive";
        case errc::file_changed: return "file changed size while being read";
        case errc::invalid_config: return "invalid VM configuration";
        case errc::kernel_not_found: return "kernel not cached (`cz kernel fetch` for debian, `cz kernel build` for minimal)";
        case errc::vmm_not_found: return "VMM binary not found or not executable";
        case errc::vmm_start_failed: return "VMM exited before the VM was up";
        case errc::need_more: return "need more input";
        case errc::qmp_bad_message: return "malformed QMP message";
        case errc::qmp_message_too_long: return "QMP message too long";
        case errc::qmp_handshake_failed: return "QMP handshake failed";
        case errc::qmp_command_failed: return "QMP command failed";
        case errc::qmp_closed: return "QMP connection closed";
        case errc::timed_out: return "timed out";
        case errc::not_running: return "VM is not running";
        case errc::already_started: return "VM already started";
        case errc::bad_syntax: return "bad syntax";
        case errc::template_not_found: return "no VM template";
        case errc::template_invalid: return "VM template damaged";
        case errc::migration_failed: return "VM state migration failed";
        }
        return "unknown cz.vm error";
    }
};

} // namespace detail

CZ_DECL const std::error_category& vm_category() noexcept {
    static const detail::vm_category_impl instance;
    return instance;
}

} // namespace cz::vm
