// cz/vm.hpp — lightweight VMs for containers: configuration, kernels, initramfs (cpio), the
// machine concept (cz/vm/machine.hpp) with code written against it (cz/vm/run.hpp), and cz's
// machine, QEMU microvm (cz/vm/qemu.hpp) with its QMP client.
// Needs cz/core with its compression piece (gzip initramfs), cz/vsock, Asio and nlohmann/json.
// cz/vm/cpio.hpp needs only cz/core, cz/vm/initramfs.hpp cz/core and its compression piece.
//
// Example: boot a kernel and an initramfs, at most a minute.
//
//   cz::vm::config cfg;
//   cfg.kernel = cz::vm::find_kernel(cz::vm::default_root(), cz::vm::kernel_flavor::debian).image;
//   cfg.initrd = "initramfs.cpio.gz";
//   asio::io_context ctx;
//   cz::vm::qemu_vm vm(ctx, cfg); // QEMU's own settings: qemu_vm(ctx, cfg, qemu_options{...})
//   std::error_code ec;
//   auto r = cz::vm::run_machine(vm, {.timeout = std::chrono::minutes(1)}, ec);
//   // ec: it did not start (r.status.message says why); else r.status says how it ended.
//
// Talking to the guest: cz's vsock device is on by default (config::vsock). Between start() and
// the VM's end, vm.vsock_host().dial(port) connects to a guest listener, from a thread other than
// the one running `ctx` (the device is served there). examples/vm_vsock_hello.cpp does this in 70
// lines, with a guest program of 60 (examples/vm_vsock_guest.cpp).
#pragma once

#include <cz/vm/accel.hpp>
#include <cz/vm/config.hpp>
#include <cz/vm/cpio.hpp>
#include <cz/vm/error.hpp>
#include <cz/vm/initramfs.hpp>
#include <cz/vm/kernel.hpp>
#include <cz/vm/machine.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/qemu.hpp>
#include <cz/vm/qmp.hpp>
#include <cz/vm/run.hpp>
#include <cz/vm/shared_dir.hpp>
#include <cz/vm/template.hpp>
