// cz/vm.hpp — lightweight VMs for containers: configuration, kernels, initramfs (cpio), the QEMU
// microvm backend and its QMP client, and the backend concept other VMMs implement.
// Needs cz/core, Asio and nlohmann/json. cz/vm/cpio.hpp and cz/vm/initramfs.hpp need only cz/core.
#pragma once

#include <cz/vm/accel.hpp>
#include <cz/vm/backend.hpp>
#include <cz/vm/config.hpp>
#include <cz/vm/cpio.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/initramfs.hpp>
#include <cz/vm/kernel.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/qemu.hpp>
#include <cz/vm/qmp.hpp>
