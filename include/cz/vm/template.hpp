// cz/vm/template.hpp — VM templates: a VM booted once until its guest is ready, saved, and
// restored as clones that start in a fraction of a boot, with or without hardware KVM.
//
// The recipe (QEMU's docs/devel/migration.rst, "ignore-shared"; Kata's VM templating):
//   make     guest RAM is a file (`-object memory-backend-file,mem-path=F,share=on`), on tmpfs;
//            the VM boots with placeholder disks in the slots its clones' disks will take, until
//            the guest opens the virtio-serial port that says it is ready (QMP VSERPORT_CHANGE);
//            then QMP `migrate-set-capabilities x-ignore-shared` and `migrate` to the state
//            file: the device state only (tens of KB), since RAM stays in F; then `quit`.
//   restore  the same machine with `share=off` on F (a private copy-on-write mapping: clones
//            share F's unmodified pages) and its own disks, network and sockets, started with
//            `-incoming defer`; QMP `migrate-set-capabilities x-ignore-shared`, `migrate-incoming`
//            from the state file; the guest runs on once the state is in.
// A disk is swapped under its slot before the guest has opened it; the guest read only the
// placeholder's (zero) partition table, and must drop that cache (BLKFLSBUF) before it mounts the
// real disk. The placeholder is a sparse file larger than any disk (placeholder_disk_bytes): the
// guest keeps the size it probed, and a file system on a smaller disk never reaches past its end.
//
// A template is keyed by what its guest has seen: QEMU (binary identity), kernel and initrd (path,
// size, mtime, inode), the kernel command line, CPUs, memory, accelerator, ACPI, each disk's slot
// and read-only flag, whether there is a network, and the caller's own device layout words. A
// changed part makes a new key, so a changed kernel or initrd is never restored from.
//
// On disk, per user, never shared: <root>/templates/<uid>/<key>/ (0700) with `state` (the device
// state), `info.json` (the key's text, the state's size and hash, the memory file's identity) and
// the memory file itself when the root is on tmpfs; otherwise the memory file is
// /dev/shm/cz-<uid>/<root's hash>/<key>.<random>.mem (0700 directories). A template is made in a
// .new-* directory and renamed into place, so a reader sees a whole template or none (and .new-*
// directories or memory files no template records, older than ten minutes, are swept by the next
// make_template); a clone holds its memory file open, so replacing or removing a template never
// disturbs clones that run.
//
// Example: make once, restore a clone (both synchronous here; restore_clone also awaits).
//
//   cz::vm::template_options t{.ready_port = "agentport"};
//   std::error_code ec;
//   cz::error_info why;
//   auto info = cz::vm::find_template(cfg, q, t, ec, why);
//   if (ec) info = cz::vm::make_template(ctx, cfg, q, t, ec, why);
//   cz::vm::use_template(info, q);
//   cz::vm::qemu_vm vm(ctx, cfg, q);
//   vm.start();
//   cz::vm::restore_clone(vm, info, ec, why);
//
// This is tested under TCG only; under KVM the same path applies (QEMU's migration does not
// depend on the accelerator) but is untested here.
#pragma once

#include <cz/vm/config.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/qemu.hpp>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cz::vm {

// The size of the disks a template is booted with (sparse: they take no space).
inline constexpr std::uint64_t placeholder_disk_bytes = std::uint64_t(1) << 40;

struct template_options {
    // The id of the virtserialport device (`-device virtserialport,id=...`) the guest opens once
    // it is ready to be saved.
    std::string ready_port;
    // The caller's devices (qemu_options::devices) as words that change when their layout does.
    std::string layout;
    // How long the guest may take to become ready.
    std::chrono::milliseconds ready_timeout{60000};
    // Asked while the guest boots (on the io_context's thread); true: give up, with
    // asio::error::operation_aborted (a signal handler on the same io_context can set it).
    std::function<bool()> cancelled;
};

struct template_info {
    std::string key; // 16 hex digits
    std::filesystem::path dir;
    std::filesystem::path state;
    std::filesystem::path memory;
    // What the key was made of, one `name=value` per line.
    std::string key_text;
    std::uint64_t state_size = 0;
    std::uint64_t state_hash = 0; // FNV-1a 64 of the state file
    std::uint64_t memory_size = 0;
    std::uint64_t memory_inode = 0;
    std::int64_t memory_mtime_ns = 0;
    std::int64_t created = 0; // seconds since the epoch
};

// When a clone's restore reached each step (steady_clock), for --timings and benchmarks.
struct restore_timings {
    using time_point = std::chrono::steady_clock::time_point;
    time_point start;    // restore_clone called (QEMU up, QMP ready)
    time_point incoming; // the state is in and the guest runs
};

// <root>/templates/<uid>: this user's templates.
CZ_DECL std::filesystem::path templates_dir(const std::filesystem::path& root);

// The text of the key of a VM made of `cfg` and `q` (see the banner), and its 16-hex-digit hash.
// errc::invalid_config when the VM cannot be a template: config::vsock set (vhost-user needs
// shared RAM), or a memory_file or incoming already in `q`.
CZ_DECL std::string template_key_text(const config& cfg, const qemu_options& q,
                                      const template_options& t, std::error_code& ec,
                                      error_info& detail);
CZ_DECL std::string template_key(std::string_view key_text);

// The template for this VM, checked against its files: errc::template_not_found when there is
// none; errc::template_invalid (with why in `detail`) when its state or memory file does not
// match its record (a caller makes it again).
CZ_DECL template_info find_template(const config& cfg, const qemu_options& q,
                                    const template_options& t, std::error_code& ec,
                                    error_info& detail);

// Boots the VM (its disks replaced by placeholders), waits for the guest to be ready, saves it
// and puts the template in place, replacing one of the same key. Runs `ctx` until done (not to be
// called while another thread runs it). Errors: what start() fails with, errc::timed_out (the
// guest was not ready in time), errc::vmm_start_failed (the VM ended first: its console's tail
// in `detail`), errc::migration_failed, or a file system error.
CZ_DECL template_info make_template(asio::io_context& ctx, const config& cfg, const qemu_options& q,
                                    const template_options& t, std::error_code& ec,
                                    error_info& detail);

// Sets `q` up to start a clone of `t`: its memory file mapped privately, -incoming defer.
CZ_DECL void use_template(const template_info& t, qemu_options& q);

// Restores a clone into `vm`, started with use_template's options: the state goes in and the
// guest runs on. errc::migration_failed (QEMU refused the state; it then exits, and the VM's
// exit status has its words), errc::timed_out after `timeout`.
CZ_DECL asio::awaitable<std::error_code>
async_restore_clone(qemu_vm& vm, const template_info& t, error_info& detail,
                    restore_timings* timings = nullptr,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
// The same, running the VM's io_context until done.
CZ_DECL void restore_clone(qemu_vm& vm, asio::io_context& ctx, const template_info& t,
                           std::error_code& ec, error_info& detail);

// This user's templates under `root`, as recorded (not checked against their files).
CZ_DECL std::vector<template_info> list_templates(const std::filesystem::path& root,
                                                  std::error_code& ec);
// Removes one template (its directory and memory file); errc::template_not_found if none.
CZ_DECL void remove_template(const std::filesystem::path& root, std::string_view key,
                             std::error_code& ec);

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/template.ipp>
#endif
