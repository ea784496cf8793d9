// cz vm ... and cz kernel ...: boot a kernel in a microvm, build an initramfs, manage the cached
// guest kernels. cz template ls|rm: this user's VM templates (cz/vm/template.hpp), which cz run
// makes on first use.
#include "cli.hpp"

#include <cz/vm.hpp>

#include <asio/signal_set.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#ifndef CZ_KERNEL_SCRIPT_DIR
#define CZ_KERNEL_SCRIPT_DIR "kernel"
#endif

namespace cz::cli {
namespace {

// The command's own --root, else cz's global one (`cz --root DIR vm boot`), else the default.
std::filesystem::path root_or_default(const std::string& root) {
    return state_root(root);
}

// A kernel given by name ("debian", "minimal") is the cached one; anything else is a path.
vm::kernel_info resolve_kernel(const std::string& kernel, const std::filesystem::path& root) {
    std::error_code ec;
    auto flavor = vm::parse_kernel_flavor(kernel, ec);
    if (ec) {
        vm::kernel_info k;
        k.image = kernel;
        return k;
    }
    return vm::find_kernel(root, flavor);
}

std::filesystem::path kernel_script(const std::string& name) {
    const char* dir = std::getenv("CZ_KERNEL_SCRIPTS");
    return std::filesystem::path(dir && *dir ? dir : CZ_KERNEL_SCRIPT_DIR) / name;
}

// Runs a kernel/ script with the destination directory as its argument; its output is ours.
int run_script(const std::string& script, const std::filesystem::path& dest,
               std::vector<std::string> extra = {}) {
    vm::spawn_options o;
    o.argv = {kernel_script(script).string(), dest.string()};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.stdout_fd = 1;
    o.stderr_fd = 2;
    std::error_code ec;
    auto child = vm::child_process::spawn(o, ec);
    if (ec) throw_error(ec, "{}", o.argv[0]);
    auto e = child.wait(ec);
    if (ec) throw_error(ec, "{}", o.argv[0]);
    if (e.signaled || e.code != 0) {
        fmt::print(stderr, "cz: {} failed\n", script);
        return exit_error;
    }
    return exit_ok;
}

struct boot_options {
    std::string kernel, initrd, append, memory = "256M", root, accel = "auto";
    std::vector<std::string> disks, publish;
    unsigned cpus = 1;
    bool net = false, keep = false, no_acpi = false;
    double timeout = 0;
};

int run_vm_boot(const boot_options& o) {
    auto root = root_or_default(o.root);
    vm::config cfg;
    cfg.kernel = resolve_kernel(o.kernel, root).image;
    cfg.initrd = o.initrd;
    cfg.append = o.append;
    cfg.cpus = o.cpus;
    cfg.root = root;
    cfg.keep_state = o.keep;
    vm::qemu_options qemu;
    qemu.acpi = !o.no_acpi;
    std::error_code ec;
    cfg.memory_mib = vm::parse_memory_mib(o.memory, ec);
    if (ec) throw_error(ec, "--memory {}", o.memory);
    if (o.accel == "kvm")
        cfg.accel = vm::accel_mode::kvm;
    else if (o.accel == "tcg")
        cfg.accel = vm::accel_mode::tcg;
    for (const auto& d : o.disks) {
        vm::disk disk{d, false};
        if (d.ends_with(":ro"))
            disk = {d.substr(0, d.size() - 3), true};
        else if (d.ends_with(":rw"))
            disk = {d.substr(0, d.size() - 3), false};
        cfg.disks.push_back(disk);
    }
    if (o.net || !o.publish.empty()) {
        cfg.network = vm::user_network{};
        for (const auto& p : o.publish) {
            cfg.network->forwards.push_back(vm::parse_port_forward(p, ec));
            if (ec) throw_error(ec, "--publish {}", p);
        }
    }
    cfg.on_console = [](std::string_view chunk) {
        std::fwrite(chunk.data(), 1, chunk.size(), stdout);
        std::fflush(stdout);
    };

    asio::io_context ctx;
    vm::qemu_vm machine(ctx, std::move(cfg), std::move(qemu));
    // Ctrl-C and SIGTERM stop the VM (power button, quit, kill); the state directory goes with it.
    // The handler runs on ctx, which the machine's synchronous calls in run_machine run.
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    bool interrupted = false;
    signals.async_wait([&](std::error_code e, int) {
        if (e) return;
        interrupted = true;
        machine.async_stop({std::chrono::milliseconds(1000), std::chrono::milliseconds(2000)},
                           [](std::error_code, vm::exit_status) {});
    });
    vm::run_options run;
    run.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
    run.console_lines = 0; // the console went to standard output as it came
    auto result = vm::run_machine(machine, run, ec);
    if (ec && !result.started)
        throw_error(ec, "starting VM{}",
                    result.status.message.empty() ? "" : ": " + result.status.message);
    if (ec) throw_error(ec, "VM");
    if (result.timed_out)
        fmt::print(stderr, "cz: VM did not finish within {}s: stopped it\n", o.timeout);
    switch (result.status.reason) {
    case vm::exit_reason::poweroff:
    case vm::exit_reason::reboot:
        return exit_ok;
    case vm::exit_reason::stopped:
        return interrupted ? 130 : exit_error;
    default:
        fmt::print(stderr, "cz: VM ended: {}\n", result.status.describe());
        return exit_error;
    }
}

struct initramfs_options {
    std::string init, output, modules, root;
    std::vector<std::string> files;
};

int run_vm_initramfs(const initramfs_options& o) {
    vm::initramfs_builder b;
    b.init(o.init);
    if (!o.modules.empty()) {
        std::error_code ec;
        auto flavor = vm::parse_kernel_flavor(o.modules, ec);
        if (ec) throw_error(ec, "--modules {}", o.modules);
        b.add_modules(vm::find_kernel(root_or_default(o.root), flavor).modules);
    }
    for (const auto& f : o.files) {
        auto colon = f.rfind(':');
        if (colon == std::string::npos)
            throw_error(make_error_code(vm::errc::bad_syntax), "--file {}", f);
        b.add_file(f.substr(colon + 1), f.substr(0, colon));
    }
    b.write_gzip(o.output);
    return exit_ok;
}

// cz kernel fetch|build|show take only the cz root.
struct kernel_options {
    std::string root;
};

void declare_kernel_root(CLI::App& cmd, kernel_options& o) {
    cmd.add_option("--root", o.root, "cz root");
}

int run_kernel_fetch(const kernel_options& o) {
    return run_script("fetch-debian-kernel.sh",
                      vm::kernels_dir(root_or_default(o.root)) / "debian");
}

int run_kernel_build(const kernel_options& o) {
    return run_script("build-minimal-kernel.sh",
                      vm::kernels_dir(root_or_default(o.root)) / "minimal");
}

int run_kernel_show(const kernel_options& o) {
    auto root = root_or_default(o.root);
    for (auto flavor : {vm::kernel_flavor::debian, vm::kernel_flavor::minimal}) {
        std::error_code ec;
        auto k = vm::find_kernel(root, flavor, ec);
        if (ec)
            fmt::print("{:<8} not cached ({})\n", vm::to_string(flavor), ec.message());
        else
            fmt::print("{:<8} {} {} ({} modules)\n", vm::to_string(flavor), k.version,
                       k.image.string(), k.modules.size());
    }
    fmt::print("{}\n", vm::probe_accel().describe());
    return exit_ok;
}

struct template_options {
    std::string root;
    std::vector<std::string> keys;
};

int run_template_ls(const template_options& o) {
    auto root = state_root(o.root);
    std::error_code ec;
    auto list = vm::list_templates(root, ec);
    if (ec) {
        fmt::print(stderr, "cz: {}: {}\n", vm::templates_dir(root).string(), ec.message());
        return exit_error;
    }
    fmt::print("{:<16}  {:>8}  {:>9}  {:<20}  {}\n", "KEY", "MEMORY", "STATE", "CREATED", "KERNEL");
    for (const auto& t : list) {
        char when[32] = "?";
        std::time_t created = static_cast<std::time_t>(t.created);
        std::tm tm{};
        if (::localtime_r(&created, &tm))
            std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        std::string kernel;
        if (auto at = t.key_text.find("kernel="); at != std::string::npos) {
            kernel = t.key_text.substr(at + 7, t.key_text.find('\n', at) - at - 7);
            kernel = kernel.substr(0, kernel.find(' '));
        }
        fmt::print("{:<16}  {:>6}Mi  {:>7}Ki  {:<20}  {}\n", t.key, t.memory_size >> 20,
                   (t.state_size + 1023) >> 10, when, kernel);
    }
    return exit_ok;
}

int run_template_rm(const template_options& o) {
    auto root = state_root(o.root);
    int rc = exit_ok;
    std::vector<std::string> keys = o.keys;
    if (keys.empty()) {
        fmt::print(stderr, "cz: template rm: name templates (cz template ls), or 'all'\n");
        return exit_error;
    }
    if (keys.size() == 1 && keys[0] == "all") {
        std::error_code ec;
        keys.clear();
        for (const auto& t : vm::list_templates(root, ec))
            keys.push_back(t.key);
    }
    for (const auto& key : keys) {
        std::error_code ec;
        vm::remove_template(root, key, ec);
        if (ec) {
            fmt::print(stderr, "cz: template {}: {}\n", key, ec.message());
            rc = exit_error;
        }
    }
    return rc;
}

} // namespace

void register_vm_commands(context ctx) {
    auto* vm_cmd =
        ctx.app.add_subcommand("vm", "Lightweight VMs: boot a kernel, build an initramfs");
    vm_cmd->require_subcommand(1);

    add_command<boot_options>(
        ctx, *vm_cmd, "boot",
        "Boot a kernel in a QEMU microvm; the console goes to standard output and the "
        "exit code says how the guest ended (0 poweroff/reboot, 1 panic or error, 130 "
        "interrupted)",
        [](CLI::App& cmd, boot_options& o) {
            cmd.add_option("--kernel", o.kernel,
                           "Kernel image, or 'debian'/'minimal' for a cached one")
                ->required();
            cmd.add_option("--initrd", o.initrd, "Initramfs (cpio, optionally compressed)");
            cmd.add_option("--disk", o.disks,
                           "Raw disk image, IMG or IMG:ro (repeatable; vda, vdb...)");
            cmd.add_option("--append", o.append, "Extra kernel arguments");
            cmd.add_option("--cpus", o.cpus, "Virtual CPUs")->check(CLI::Range(1, 255));
            cmd.add_option("--memory", o.memory, "Memory (512M, 2G)");
            cmd.add_flag("--net", o.net, "User-mode networking (guest 10.0.2.15, host 10.0.2.2)");
            cmd.add_option("--publish", o.publish,
                           "Forward a host port: [ADDR:]HOST:GUEST (implies --net)");
            cmd.add_option("--accel", o.accel, "auto, kvm or tcg")
                ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
            cmd.add_flag(
                "--no-acpi", o.no_acpi,
                "No ACPI tables: devices go on the kernel command line (the minimal kernel "
                "boots so; Debian's does not), and the guest ends by rebooting");
            cmd.add_option("--timeout", o.timeout, "Stop the VM after this many seconds");
            cmd.add_flag("--keep-state", o.keep, "Keep <root>/vms/<id>/ (console and QEMU logs)");
            cmd.add_option("--root", o.root, "cz root (default: $CZ_ROOT, $XDG_DATA_HOME/cz)");
        },
        run_vm_boot);

    add_command<initramfs_options>(
        ctx, *vm_cmd, "initramfs", "Write a gzip initramfs: an init, kernel modules, files",
        [](CLI::App& cmd, initramfs_options& o) {
            cmd.add_option("--init", o.init, "The guest's /init (a static binary or a script)")
                ->required();
            cmd.add_option("--modules", o.modules,
                           "Include the modules of a cached kernel ('debian')");
            cmd.add_option("--file", o.files, "HOST_PATH:ARCHIVE_PATH (repeatable)");
            cmd.add_option("--root", o.root, "cz root");
            cmd.add_option("-o,--output", o.output, "Output file")->required();
        },
        run_vm_initramfs);

    auto* kernel_cmd = ctx.app.add_subcommand("kernel", "Guest kernels cached under the cz root");
    kernel_cmd->require_subcommand(1);
    add_command<kernel_options>(ctx, *kernel_cmd, "fetch",
                                "Fetch Debian's cloud kernel and the modules cz needs",
                                declare_kernel_root, run_kernel_fetch);
    add_command<kernel_options>(ctx, *kernel_cmd, "build",
                                "Build the minimal kernel from Debian's linux-source (slow)",
                                declare_kernel_root, run_kernel_build);
    add_command<kernel_options>(ctx, *kernel_cmd, "show",
                                "List cached kernels and the accelerator cz would use",
                                declare_kernel_root, run_kernel_show);

    auto* template_cmd = ctx.app.add_subcommand(
        "template", "VM templates: VMs booted once and saved, from which cz run starts");
    template_cmd->require_subcommand(1);
    add_command<template_options>(
        ctx, *template_cmd, "ls", "List this user's VM templates",
        [](CLI::App& cmd, template_options& o) { cmd.add_option("--root", o.root, "cz root"); },
        run_template_ls);
    add_command<template_options>(
        ctx, *template_cmd, "rm", "Remove VM templates (KEY..., or all); cz run makes them again",
        [](CLI::App& cmd, template_options& o) {
            cmd.add_option("--root", o.root, "cz root");
            cmd.add_option("keys", o.keys, "Template keys, or all")->required();
        },
        run_template_rm);
}

} // namespace cz::cli
