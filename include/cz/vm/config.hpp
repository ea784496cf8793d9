// cz/vm/config.hpp — what a VM is made of: kernel, initrd, disks, network, CPUs, memory, kernel
// arguments, and a hook through which other modules add devices (the vsock device of cz/vsock).
//
// The configuration is plain data shared by every backend; each backend (cz/vm/qemu.hpp) turns it
// into its own command line or API calls. Also here: where cz keeps its state (the cz root).
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

// What a device hook gets: the VM's state directory (for sockets), and a way to hand the VMM an
// open fd. pass_fd() returns the number the fd has in the VMM process (the same number: the fd is
// inherited, not renumbered); the caller keeps ownership and may close its copy after start().
class device_context {
public:
    explicit device_context(std::filesystem::path state_dir) : state_dir_(std::move(state_dir)) {}
    const std::filesystem::path& state_dir() const noexcept { return state_dir_; }
    int pass_fd(int fd) {
        fds_.push_back(fd);
        return fd;
    }
    const std::vector<int>& passed_fds() const noexcept { return fds_; }

private:
    std::filesystem::path state_dir_;
    std::vector<int> fds_;
};

// A device another module adds to a VM: called once, at start, after the state directory exists
// and before the VMM starts. Returns backend-specific arguments; for QEMU, command-line words such
// as {"-chardev", "socket,id=vu0,path=...", "-device", "vhost-user-vsock-device,chardev=vu0"}.
using device_hook = std::function<std::vector<std::string>(device_context&)>;

// cz's vsock device (cz/vsock's vhost-user backend, served by the qemu_vm itself on its
// io_context): the guest reaches the host as CID 2, the host reaches the guest through
// qemu_vm::vsock_host(). Its sockets (vhost-user.sock, vsock.sock, vsock.sock_<port>) live in the
// VM's state directory, so they go with it.
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
    // microvm's ACPI tables: Debian's kernel needs them to find virtio-mmio devices; a kernel with
    // CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES boots faster without (virtio_mmio.device= on the cmdline).
    bool acpi = true;
    // The cz root, under which vms/<id>/ is created. Empty: cz::vm::default_root().
    std::filesystem::path root;
    // Keep vms/<id>/ (console log, VMM log) after the VM exits, for debugging.
    bool keep_state = false;
    // The VMM binary; looked up in PATH when it has no slash.
    std::string vmm_binary = "qemu-system-x86_64";
    // The vsock device; on by default, as cz's guest agent talks to the host through it. The guest
    // needs the virtio_mmio and vmw_vsock_virtio_transport drivers to see it.
    std::optional<vsock_device> vsock = vsock_device{};
    // Devices added by other modules (see device_hook).
    std::vector<device_hook> devices;
    // Called with each chunk of console output as it arrives (on the executor's thread).
    std::function<void(std::string_view)> on_console;
    // Console bytes kept in memory for console() (the newest are kept when it overflows).
    std::size_t console_capture_limit = 1 << 20;
    // How long the VMM may take to accept its control connection.
    std::chrono::milliseconds start_timeout{15000};
};

// Checks a configuration: a kernel that exists, 1..255 CPUs, 16 MiB..1 TiB of memory, disks that
// exist. Fails with errc::invalid_config; `what` says which field.
CZ_DECL void validate(const config& cfg, std::string& what, std::error_code& ec);

// "512M", "2G", "1024" (MiB when unitless), "64K"... to MiB. errc::bad_syntax on anything else or
// a size that is not a whole number of MiB.
CZ_DECL std::uint64_t parse_memory_mib(std::string_view text, std::error_code& ec);

// "8080:80", "127.0.0.1:8080:80", "udp:5353:53" to a port_forward; errc::bad_syntax otherwise.
CZ_DECL port_forward parse_port_forward(std::string_view text, std::error_code& ec);

// The cz root: `CZ_ROOT`, else `$XDG_DATA_HOME/cz`, else `$HOME/.local/share/cz`.
CZ_DECL std::filesystem::path default_root();

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/config.ipp>
#endif
