// Out-of-line definitions for cz/vm/accel.hpp.
#pragma once

#include <cz/core/unique_fd.hpp>
#include <cz/vm/accel.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sys/ioctl.h>

namespace cz::vm {

CZ_DECL std::string accel_probe::describe() const {
    std::string s = "kvm: ";
    s += dev_kvm_opens ? "/dev/kvm opens" : "/dev/kvm does not open";
    if (dev_kvm_opens) s += create_vm_works ? ", KVM_CREATE_VM works" : ", KVM_CREATE_VM fails";
    s += hardware_module ? ", hardware module loaded" : ", no kvm_intel/kvm_amd";
    s += kvm_usable() ? " -> kvm" : " -> tcg";
    return s;
}

CZ_DECL accel_probe probe_accel(const std::filesystem::path& dev_kvm,
                                const std::filesystem::path& sys_module) {
    accel_probe p;
    unique_fd kvm(::open(dev_kvm.c_str(), O_RDWR | O_CLOEXEC));
    p.dev_kvm_opens = kvm.valid();
    if (kvm) {
        unique_fd vm(::ioctl(kvm.get(), kvm_create_vm_ioctl, 0UL));
        p.create_vm_works = vm.valid();
    }
    std::error_code ec;
    p.hardware_module = std::filesystem::exists(sys_module / "kvm_intel", ec) ||
                        std::filesystem::exists(sys_module / "kvm_amd", ec);
    return p;
}

CZ_DECL accel_mode resolve_accel(accel_mode requested) {
    if (requested != accel_mode::automatic) return requested;
    if (const char* env = std::getenv("CZ_ACCEL")) {
        std::string_view e(env);
        if (e == "kvm") return accel_mode::kvm;
        if (e == "tcg") return accel_mode::tcg;
    }
    return probe_accel().kvm_usable() ? accel_mode::kvm : accel_mode::tcg;
}

CZ_DECL unsigned long host_tsc_khz(const std::filesystem::path& cpuinfo) {
    std::ifstream in(cpuinfo);
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with("cpu MHz")) continue;
        auto colon = line.find(':');
        if (colon == std::string::npos) return 0;
        char* end = nullptr;
        double mhz = std::strtod(line.c_str() + colon + 1, &end);
        if (end == line.c_str() + colon + 1 || mhz <= 0 || mhz > 100000) return 0;
        return static_cast<unsigned long>(mhz * 1000.0 + 0.5);
    }
    return 0;
}

} // namespace cz::vm
