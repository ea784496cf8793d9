// cz/vm/error.hpp — the errors of cz/vm: VM configuration, initramfs writing, QEMU, QMP.
#pragma once

#include <cz/core/error.hpp>

#include <system_error>

namespace cz::vm {

enum class errc {
    // A path in an initramfs is empty, absolute after normalisation, or contains "..".
    bad_archive_path = 1,
    // A file is larger than cpio's newc format can record (4 GiB - 1).
    archive_entry_too_large,
    // A file given to the initramfs builder changed size while it was being read.
    file_changed,
    // The VM configuration is incomplete or contradictory (no kernel, zero CPUs, bad size).
    invalid_config,
    // No kernel of the requested flavour is cached under the cz root (`cz kernel fetch` or
    // `cz kernel build`).
    kernel_not_found,
    // The VMM binary (qemu-system-x86_64) could not be executed.
    vmm_not_found,
    // The VMM exited or closed its control socket before the VM was up.
    vmm_start_failed,
    // A parser needs more bytes to finish the message (not a failure: feed it more).
    need_more,
    // A QMP message is not a JSON object, or is not a greeting, reply or event.
    qmp_bad_message,
    // A QMP message is longer than the client accepts (a line without an end).
    qmp_message_too_long,
    // A QMP peer did not start with the greeting, or answered qmp_capabilities with an error.
    qmp_handshake_failed,
    // QEMU answered a QMP command with {"error": ...}; the text is in the client's error_detail().
    qmp_command_failed,
    // The QMP connection closed (QEMU exited) while a command was waiting for its reply.
    qmp_closed,
    // A VM did not reach the awaited state before its deadline.
    timed_out,
    // An operation needs a running VM, and this one is not (not started, or already exited).
    not_running,
    // start() was called on a VM that has already been started.
    already_started,
    // Parsing a byte size ("512M", "2G") or a port forward ("8080:80") failed.
    bad_syntax,
    // No VM template of this key under the cz root (cz/vm/template.hpp): one is made on first use.
    template_not_found,
    // A VM template's files do not match its record (its state file was truncated or changed,
    // its memory file is gone or was replaced): it cannot be restored, only made again.
    template_invalid,
    // QEMU reported a failed migration while saving a template or restoring a clone from one.
    migration_failed,
};

// The category of cz::vm::errc; a function-local static so the header defines no globals.
CZ_DECL const std::error_category& vm_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), vm_category()};
}

} // namespace cz::vm

template <>
struct std::is_error_code_enum<cz::vm::errc> : std::true_type {};

#if CZ_HEADER_ONLY
#include <cz/vm/impl/error.ipp>
#endif
