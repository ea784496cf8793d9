// cz-init: PID 1 of every cz VM. It readies the VM (early mounts, the kernel's modules, cgroup
// controllers, the container's root file system when the host names its disk), then serves the
// host over the agent channel, one connection after another, until the host asks for Shutdown.
//
// Kernel command line (written by the host):
//   cz.agent=vsock[:PORT] | serial:NAME   the channel (guest/agent/channel.hpp); vsock by default
//   cz.rootfs=DEVICE                      mount DEVICE read-only under an overlay at
//                                         /run/cz/rootfs/merged (guest/init/rootfs.hpp)
//   cz.scratch=DEVICE                     the overlay's writable layer on DEVICE (ext4), not
//                                         on tmpfs
//   cz.net=IFACE,ADDRESS/PREFIX,GATEWAY   IFACE up with ADDRESS and a default route through
//                                         GATEWAY, before "ready" (lo is always brought up)
//   cz.log=error|warn|info|debug          what reaches the console; info by default
//   cz.template=1                         a VM template's guest (cz/vm/template.hpp): no
//                                         cz.rootfs; after the restore the host sends Awaken
//                                         (RNG seed, time, hostname, machine id), then
//                                         MountRootfs. Nothing here reads the RNG or boot_id
//                                         before that, so clones share neither.
//
// PID 1 must never exit (the kernel panics): every failure is logged, and one that leaves nothing
// to do powers the VM off, which the host sees as the VM ending.
#include "agent/channel.hpp"
#include "agent/event_loop.hpp"
#include "agent/net.hpp"
#include "agent/session.hpp"
#include "init/boot.hpp"
#include "init/cmdline.hpp"
#include "init/log.hpp"
#include "init/reaper.hpp"
#include "init/rootfs.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

using namespace cz::guest;

namespace {

kernel_cmdline read_cmdline() {
    std::ifstream in("/proc/cmdline");
    std::stringstream text;
    text << in.rdbuf();
    return kernel_cmdline::parse(text.str());
}

// Orphans of the whole VM end up as our children: reap them whenever SIGCHLD says so.
cz::unique_fd watch_children(event_loop& loop, process_table& processes) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    cz::unique_fd fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) throw std::system_error(errno, std::generic_category(), "signalfd");
    loop.watch(fd.get(), EPOLLIN, [raw = fd.get(), &processes](std::uint32_t) {
        signalfd_siginfo info;
        while (::read(raw, &info, sizeof info) == sizeof info) {
        }
        for (auto e : reap_exited_children()) {
            log(log_level::debug, "reaped process {} (wait status {:#x})", e.pid, e.wait_status);
            processes.on_child_exit(e.pid, e.wait_status);
        }
    });
    return fd;
}

// Where the containers' cgroups go: one directory under it per container (process_table).
const char* const containers_cgroup = "/sys/fs/cgroup/cz";

// lo, and the interface `cz.net` names. The host could ask for the same through the agent, but
// set up here, before "ready", it is part of a VM template (QEMU's user-mode network is the same
// in every VM), so that its clones start with a network instead of building one. A failure is
// logged and leaves the VM without that part of its network, as a failed RPC would.
void configure_network(const std::optional<std::string>& spec) {
    auto apply = [](net_error e) {
        if (e) log(log_level::error, "network: {}", e.message);
        return !e;
    };
    std::error_code ec;
    cz_agent_IpLinkSet lo{};
    cz::agent::set_string(lo.interface, "lo", ec);
    lo.up = true;
    apply(ip_link_set(lo));
    if (!spec || spec->empty()) return;
    net_setting net;
    if (!parse_net_setting(*spec, net)) {
        log(log_level::error, "cz.net={}: not IFACE,ADDRESS/PREFIX,GATEWAY", *spec);
        return;
    }
    cz_agent_IpLinkSet link{};
    cz_agent_IpAddrAdd addr{};
    cz_agent_IpRouteAddDefault route{};
    cz::agent::set_string(link.interface, net.interface, ec);
    if (!ec) cz::agent::set_string(addr.interface, net.interface, ec);
    if (!ec) cz::agent::set_string(addr.address, net.address, ec);
    if (!ec) cz::agent::set_string(route.interface, net.interface, ec);
    if (!ec) cz::agent::set_string(route.gateway, net.gateway, ec);
    if (ec) {
        log(log_level::error, "cz.net={}: a part too long for the agent's fields", *spec);
        return;
    }
    link.up = true;
    route.ipv6 = net.gateway.find(':') != std::string::npos;
    if (apply(ip_link_set(link)) && apply(ip_addr_add(addr))) apply(ip_route_add_default(route));
}

void boot(const kernel_cmdline& cmdline) {
    mount_early_filesystems();
    for (const auto& failure : load_kernel_modules())
        log(log_level::warn, "kernel module {}", failure);
    leave_initramfs();
    // Every controller for the containers' cgroups, whether or not their spec sets a limit: the
    // memory controller's memory.events is how OOM kills are seen, and Statistics reads them all.
    try {
        auto controllers = enable_cgroup_controllers();
        if (::mkdir(containers_cgroup, 0755) != 0 && errno != EEXIST)
            throw std::system_error(errno, std::generic_category(),
                                    std::string("mkdir ") + containers_cgroup);
        enable_cgroup_controllers(containers_cgroup);
        log(log_level::debug, "cgroup controllers: {}", controllers.size());
    } catch (const std::exception& e) {
        log(log_level::warn, "cgroup controllers: {}", e.what());
    }
    configure_network(cmdline.get("cz.net"));
    if (auto device = cmdline.get("cz.rootfs"); device && !device->empty()) {
        rootfs_options opts;
        opts.image_device = *device;
        if (auto scratch = cmdline.get("cz.scratch"); scratch && !scratch->empty())
            opts.scratch_device = *scratch;
        mount_rootfs(opts);
    }
}

} // namespace

int main() {
    if (::getpid() != 1) {
        std::fprintf(stderr, "cz-init: runs only as PID 1 of a cz VM\n");
        return 1;
    }
    try {
        // /proc first: the command line says how much to log.
        mount_early_filesystems();
        auto cmdline = read_cmdline();
        if (auto level = cmdline.get("cz.log"); level && !parse_log_level(*level, log_threshold()))
            log(log_level::warn, "cz.log={}: not a level (error, warn, info, debug)", *level);
        boot(cmdline);

        std::error_code ec;
        auto spec = parse_channel_spec(cmdline.get("cz.agent").value_or("vsock"), ec);
        if (ec) throw std::system_error(ec, "cz.agent=" + *cmdline.get("cz.agent"));
        event_loop loop;
        process_table processes(loop, containers_cgroup);
        auto children = watch_children(loop, processes);
        channel host(spec);
        log(log_level::info, "ready");
        for (;;) {
            session s(loop, processes, host.next_connection());
            auto outcome = s.run();
            if (outcome == session::outcome::shutdown) break;
            log(log_level::info, "host connection ended; waiting for the next");
        }
        log(log_level::info, "shutting down");
    } catch (const std::exception& e) {
        log(log_level::error, "{}", e.what());
    }
    power_off();
}
