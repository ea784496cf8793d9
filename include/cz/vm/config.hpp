// cz/vm/config.hpp — what a VM is made of, whatever VMM runs it: kernel, initrd, disks, network,
// CPUs, memory, kernel arguments, cz's vsock device, and what becomes of the console.
//
// The configuration is plain data shared by every machine (cz/vm/machine.hpp); each VMM turns it
// into its own command line or API calls, and what only one VMM understands is in that VMM's own
// options (cz::vm::qemu_options: the binary, ACPI tables, extra QEMU devices). Also here: where
// cz keeps its state (the cz root).
#pragma once

#include <cz/vm/error.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cz::vm {

// A raw disk image attached as a virtio-blk device. Disks appear in the guest as /dev/vda,
// /dev/vdb, ... in the order given.
struct disk {
    std::filesystem::path path;
    bool read_only = false;
};

// A host port forwarded into the guest by user-mode networking.
struct port_forward {
    enum class protocol { tcp, udp };
    protocol proto = protocol::tcp;
    // The host address to listen on. Loopback unless the caller asks for more.
    std::string host_address = "127.0.0.1";
    std::uint16_t host_port = 0;
    std::uint16_t guest_port = 0;
};

// User-mode networking (QEMU's slirp): the guest is 10.0.2.15/24, the host is reachable as
// 10.0.2.2, DNS at 10.0.2.3. No root needed.
struct user_network {
    std::vector<port_forward> forwards;
};

// cz's vsock device: the guest reaches the host as CID 2, the host reaches the guest through the
// hybrid socket <state dir>/vsock.sock (qemu_vm::vsock_host()). Its sockets live in the VM's state
// directory, so they go with it. Under QEMU, cz serves the device itself (cz/vsock's vhost-user
// backend, on the VM's io_context; see qemu_vsock_device in cz/vm/qemu.hpp).
struct vsock_device {
    // The guest's CID; the guest sees it in its vsock driver. 3 is the first free one (0..2 are
    // reserved), and each VM has its own device, so every VM can have CID 3.
    std::uint32_t guest_cid = 3;
};

// Which accelerator runs the guest.
enum class accel_mode {
    automatic, // KVM when usable (see cz/vm/accel.hpp), else TCG
    kvm,
    tcg,
};

struct config {
    // The kernel image (bzImage, or an uncompressed vmlinux with a PVH note).
    std::filesystem::path kernel;
    // An initramfs (cpio, possibly compressed); empty for none.
    std::filesystem::path initrd;
    // Appended to cz's default kernel command line (console, reboot and panic behaviour).
    std::string append;
    std::vector<disk> disks;
    std::optional<user_network> network;
    unsigned cpus = 1;
    std::uint64_t memory_mib = 256;
    accel_mode accel = accel_mode::automatic;
    // The cz root, under which vms/<id>/ is created. Empty: cz::vm::default_root().
    std::filesystem::path root;
    // Keep vms/<id>/ (console log, VMM log) after the VM exits, for debugging.
    bool keep_state = false;
    // The vsock device; on by default, as cz's guest agent talks to the host through it. The guest
    // needs the virtio_mmio and vmw_vsock_virtio_transport drivers to see it.
    std::optional<vsock_device> vsock = vsock_device{};
    // Called with each chunk of console output as it arrives (on the executor's thread).
    std::function<void(std::string_view)> on_console;
    // Console bytes kept in memory for console() (the newest are kept when it overflows).
    std::size_t console_capture_limit = 1 << 20;
    // How long the VMM may take to accept its control connection.
    std::chrono::milliseconds start_timeout{15000};
};

// Checks a configuration: a kernel that exists, 1..255 CPUs, 16 MiB..1 TiB of memory, disks that
// exist. Fails with errc::invalid_config; `detail` says which field and why.
CZ_DECL void validate(const config& cfg, error_info& detail, std::error_code& ec);

// A memory size to MiB, by cz's one size grammar (cz/core/size.hpp: "512M", "1.5G", "2GiB"), where
// a number without a unit counts MiB as QEMU's -m does ("1024"). errc::bad_syntax on anything
// else or a size that is not a whole number of MiB.
CZ_DECL std::uint64_t parse_memory_mib(std::string_view text, std::error_code& ec);

// "8080:80", "127.0.0.1:8080:80", "udp:5353:53" to a port_forward; errc::bad_syntax otherwise.
CZ_DECL port_forward parse_port_forward(std::string_view text, std::error_code& ec);

// The cz root: `CZ_ROOT`, else `$XDG_DATA_HOME/cz`, else `$HOME/.local/share/cz`.
CZ_DECL std::filesystem::path default_root();

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/config.ipp>
#endif
