// cz/vm/accel.hpp — choosing between KVM and TCG.
//
// /dev/kvm existing is not enough: under some nested hypervisors it opens, creates VMs, and then
// standard Linux guests hang. cz uses KVM only when all three hold:
//   1. /dev/kvm opens read-write,
//   2. the KVM_CREATE_VM ioctl succeeds,
//   3. a hardware KVM module is loaded (/sys/module/kvm_intel or /sys/module/kvm_amd exists);
// otherwise it uses TCG, QEMU's emulator, multi-threaded (one host thread per vCPU).
#pragma once

#include <cz/vm/config.hpp>

#include <filesystem>
#include <string>

namespace cz::vm {

// _IO(KVMIO, 0x01) from <linux/kvm.h>; public headers do not include <linux/*.h> (checked
// against the kernel header in the tests).
inline constexpr unsigned long kvm_create_vm_ioctl = 0xAE01;

struct accel_probe {
    bool dev_kvm_opens = false;
    bool create_vm_works = false;
    bool hardware_module = false; // kvm_intel or kvm_amd loaded
    bool kvm_usable() const noexcept { return dev_kvm_opens && create_vm_works && hardware_module; }
    // One line for logs: "kvm: /dev/kvm opens, KVM_CREATE_VM works, no kvm_intel/kvm_amd -> tcg".
    CZ_DECL std::string describe() const;
};

// Probes the host. `dev_kvm` and `sys_module` are parameters so tests can point them elsewhere.
CZ_DECL accel_probe probe_accel(const std::filesystem::path& dev_kvm = "/dev/kvm",
                                const std::filesystem::path& sys_module = "/sys/module");

// The accelerator for a requested mode: `automatic` resolves through probe_accel(); `kvm` and
// `tcg` are taken as asked. Never returns `automatic`. The environment variable CZ_ACCEL
// ("kvm"/"tcg") overrides `automatic`.
CZ_DECL accel_mode resolve_accel(accel_mode requested);

// The host's TSC frequency in kHz, from /proc/cpuinfo, or 0 when unknown. Under TCG the guest's
// TSC runs at the host's rate, but the guest cannot calibrate it against the emulated PIT when
// the host is busy (boots hang at "tsc: Marking TSC unstable"); telling it the rate
// (tsc_early_khz=) avoids the calibration.
CZ_DECL unsigned long host_tsc_khz(const std::filesystem::path& cpuinfo = "/proc/cpuinfo");

} // namespace cz::vm

#if CZ_HEADER_ONLY
#include <cz/vm/impl/accel.ipp>
#endif
