// cz/container/run.hpp — `docker run` as a function: from an image in cz's store to a process in a
// VM of its own, with stdio attached, and its exit code.
//
// What a run does, in order (each step a phase in run_result::timings):
//   pull       only when the image is not in the store (or run_options::pull says so): pull it
//              from its registry, building its root filesystem as the layers arrive
//              (cz/container/pull.hpp)
//   image      find the image in the store and resolve it to this platform's manifest and config
//   rootfs     the image's read-only ext4 root filesystem (cz/container/rootfs.hpp: cached)
//   guest      the kernel and cz-init's initramfs (cz/container/guest.hpp: cached)
//   boot       start QEMU (cz/vm) with the rootfs as /dev/vda and the agent on a virtio-serial
//              port; with volumes, a virtiofsd per volume first (cz/container/volume.hpp)
//   agent      cz-init's agent answers (cz/agent) — the guest has booted
// or, from a VM template (run_options::use_template; cz/container/template.hpp):
//   template   find this VM's template, making it on first use (a whole boot, once)
//   qemu       start QEMU with the template's memory and -incoming
//   incoming   the template's state restored: the guest runs on
//   agent      cz-init's agent answers
// and then, in one round of requests:
//   start      (from a template: the clone is told who it is (seed, time, hostname) and mounts
//              its root;) /etc/resolv.conf (QEMU user-mode NAT's DNS, 10.0.2.3) and /etc/hosts in
//              the container's root; the container's process created and started from its OCI
//              spec (cz/container/spec.hpp). The guest's network (10.0.2.15/24, gateway
//              10.0.2.2) is up by then: cz-init sets it up as it boots (its cz.net), so a VM
//              template has it too.
//   exit       the process runs, stdio streaming both ways, until it exits
//   teardown   QEMU is told to quit (with volumes, cz-init first syncs them and powers the VM
//              off); QEMU is gone, and so is the VM's state directory
//
// Signals: while run() runs, SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the container's
// process (before it starts, they end the run with errc::interrupted), and with a terminal
// SIGWINCH resizes the container's. A cz killed outright leaves a VM directory that the next VM
// start removes (cz/vm), and QEMU dies with it (it runs with PR_SET_PDEATHSIG).
//
// Example:
//   cz::container::run_options o;
//   o.root = cz::vm::default_root();
//   o.image = "busybox";
//   o.spec.args = {"echo", "hello from a microVM"};
//   std::error_code ec;
//   std::string why;
//   auto r = cz::container::run(o, ec, &why);
//   if (ec) fmt::print(stderr, "cz run: {}: {}\n", ec.message(), why);
//   return ec ? 125 : r.exit_code;
#pragma once

#include <cz/container/spec.hpp>
#include <cz/container/volume.hpp>
#include <cz/core/config.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/registry/client.hpp>
#include <cz/vm/config.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cz::container {

enum class network_mode {
    user, // QEMU's user-mode NAT: outgoing connections, DNS, published ports; no root needed
    none, // loopback only
};

// When a run pulls its image first (docker's --pull).
enum class pull_policy {
    missing, // when the store has no image of that name
    always,  // every time (the tag may have moved)
    never,   // never: a missing image is an error (cz::oci::errc::not_found)
};

// The container while it runs, for a caller that acts on it (cz/container/live.hpp).
struct live_container;

struct run_options {
    // The cz root: the store, caches, VM state.
    std::filesystem::path root;
    // A name in the store ("busybox", "docker.io/library/alpine:3.19").
    std::string image;
    // The platform an index resolves to; default: this machine's.
    oci::platform platform = oci::host_platform();
    // Pulling: when, and how (proxies, insecure registries, credentials); the bytes of each blob
    // as they arrive (called from the pull's own thread).
    pull_policy pull = pull_policy::missing;
    oci::registry::registry_options registry;
    std::function<void(const oci::registry::blob_progress&)> on_pull_progress;
    // The container's process, over the image's config. spec.hostname defaults to `name`.
    spec_options spec;
    // The container's name (its id in the guest, its hostname by default): at most 64 of
    // [A-Za-z0-9_.-], starting with a letter or digit. Empty: 12 random hex digits.
    std::string name;
    // The VM: CPUs, memory (MiB), network, published ports, kernel, cz-init.
    unsigned cpus = 1;
    std::uint64_t memory_mib = 512;
    network_mode network = network_mode::user;
    std::vector<vm::port_forward> ports;
    // The container's writable layer: on tmpfs in the VM's memory (0), or on a scratch ext4 disk
    // of this many bytes, made for the run under <root>/scratch/ and removed after it.
    std::uint64_t scratch_bytes = 0;
    // Host directories mounted in the container (cz/container/volume.hpp), and how they reach
    // the guest. The run checks them (check_volumes) before anything else.
    std::vector<volume> volumes;
    volume_transport volume_mode = volume_transport::automatic;
    std::string kernel;         // a file, or a cached flavour ("debian", "minimal"); see guest.hpp
    std::filesystem::path init; // empty: find_init()'s search
    vm::accel_mode accel = vm::accel_mode::automatic;
    bool keep_state = false; // keep the VM's directory (console log) after the run
    // stdio: the host's file descriptors (not taken over; -1 for stdin: the container's is
    // /dev/null). With spec.terminal, stdin and stdout are the terminal's two directions.
    int stdin_fd = -1;
    int stdout_fd = 1;
    int stderr_fd = 2;
    // Put a terminal stdin_fd into raw mode while the container has a terminal (as docker -t).
    bool raw_terminal = true;
    // Start from a VM template when one fits (cz/container/template.hpp): made on first use
    // under the root, restored in a fraction of a boot. A run with volumes, or whose template
    // cannot be made or restored, boots cold (on_warning says why for the latter).
    bool use_template = true;
    // Warnings, one line each: a template that could not be used.
    std::function<void(std::string_view)> on_warning;
    // How long the guest may take to boot until its agent answers.
    std::chrono::milliseconds boot_timeout{60000};
    // Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT (and SIGWINCH) as described above.
    bool forward_signals = true;
    // Progress of long steps, one line each ("building the root filesystem: layer 2 of 5").
    std::function<void(std::string_view)> on_progress;
    // Once the container's process has started, on the run's thread: the agent, the VM and the
    // run's io_context, to act on the container while it runs (a supervisor's exec, kill, stop).
    // What it is given lives until run() returns.
    std::function<void(live_container&)> on_started;
    // The container's output, instead of stdout_fd and stderr_fd when set: stream 1 is stdout
    // (the terminal's output with spec.terminal), 2 stderr. Called on the run's thread.
    std::function<void(int stream, std::span<const std::byte> data)> on_output;
};

struct phase_timing {
    std::string phase; // as listed at the top of this header
    std::chrono::nanoseconds duration{};
};

struct run_result {
    // The process's exit code, or 128 + the signal that ended it.
    int exit_code = 0;
    // The kernel OOM-killed a process of the container (exit_code is then usually 137).
    bool oom_killed = false;
    std::vector<phase_timing> timings;
    // The VM was a template's clone (else it booted cold).
    bool from_template = false;
    // The VM console's last lines, when the run failed in the guest (empty otherwise).
    std::string console_tail;
    // What went wrong without failing the run (a root filesystem that could not be cached).
    std::vector<std::string> warnings;
};

// Whether `name` can name a container (see run_options::name).
CZ_DECL bool valid_container_name(std::string_view name) noexcept;

// Whether a run with `opts` pulls its image first: always, never, or (pull_policy::missing) when
// the store under opts.root has no image named opts.image.
CZ_DECL bool needs_pull(const run_options& opts);

// Runs the container to its end. ec: why there is no exit code (the image is not in the store,
// the guest failed, errc::command_not_found, ...), with `*detail` saying what and where; the
// result's timings and console tail are filled as far as the run got.
CZ_DECL run_result run(const run_options& opts, std::error_code& ec, std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/run.ipp>
#endif
