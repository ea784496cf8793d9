// cz/container.hpp — containers in VMs: from an image in cz's store to a process in a microVM of
// its own (cz/container/run.hpp), with what that takes: the OCI runtime spec merged from the
// image's config and the caller's options as docker merges them (spec.hpp), the image's cached
// ext4 root filesystem (rootfs.hpp), an image pulled from its registry while that is built
// (pull.hpp), host folders (volume.hpp), and the guest's kernel and cz-init initramfs (guest.hpp);
// and detached containers (supervisor.hpp): a supervisor process per container with its state
// (state.hpp), its log (log.hpp) and its control socket (control.hpp).
// Needs every other module: cz/oci (the store and the registry client), cz/ext4, cz/vm,
// cz/agent, Asio.
//
// Example: docker run --rm busybox echo hello, in a VM.
//
//   cz::container::run_options o;
//   o.root = cz::vm::default_root();
//   o.image = "busybox";
//   o.spec.args = {"echo", "hello"};
//   std::error_code ec;
//   auto r = cz::container::run(o, ec);
//   return ec ? 125 : r.exit_code;
#pragma once

#include <cz/container/control.hpp>
#include <cz/container/error.hpp>
#include <cz/container/guest.hpp>
#include <cz/container/live.hpp>
#include <cz/container/log.hpp>
#include <cz/container/pull.hpp>
#include <cz/container/rootfs.hpp>
#include <cz/container/run.hpp>
#include <cz/container/spec.hpp>
#include <cz/container/state.hpp>
#include <cz/container/supervisor.hpp>
#include <cz/container/template.hpp>
#include <cz/container/volume.hpp>
