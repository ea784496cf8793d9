#include <cz/vm/config.hpp>

#include <cz/vm/accel.hpp>
#include <cz/vm/kernel.hpp>
#include <cz/vm/process.hpp>
#include <cz/vm/qemu.hpp>

#include "support/support.hpp"

#include <linux/kvm.h>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sys/file.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace cz::vm;
using cz_test::temp_dir;

namespace {

spawn_options argv_only(std::vector<std::string> argv) {
    spawn_options o;
    o.argv = std::move(argv);
    return o;
}

bool has_words(const std::vector<std::string>& argv, std::initializer_list<std::string> words) {
    std::vector<std::string> w(words);
    return std::search(argv.begin(), argv.end(), w.begin(), w.end()) != argv.end();
}

} // namespace

TEST_SUITE("vm") {

TEST_CASE("config: memory sizes") {
    std::error_code ec;
    CHECK(parse_memory_mib("512M", ec) == 512);
    CHECK(parse_memory_mib("512", ec) == 512);
    CHECK(parse_memory_mib("2G", ec) == 2048);
    CHECK(parse_memory_mib("1GiB", ec) == 1024);
    CHECK(parse_memory_mib("2048K", ec) == 2);
    CHECK(parse_memory_mib("1.5G", ec) == 1536);
    CHECK(!ec);
    for (auto bad : {"", "M", "12X", "1.25M", "0.5", "1000K", "-1M", "99999999999999999999G", "5 M"}) {
        ec.clear();
        parse_memory_mib(bad, ec);
        CHECK_MESSAGE(ec == errc::bad_syntax, bad);
    }
}

TEST_CASE("config: port forwards") {
    std::error_code ec;
    auto f = parse_port_forward("8080:80", ec);
    REQUIRE(!ec);
    CHECK(f.host_address == "127.0.0.1");
    CHECK(f.host_port == 8080);
    CHECK(f.guest_port == 80);
    f = parse_port_forward("udp:0.0.0.0:5353:53", ec);
    REQUIRE(!ec);
    CHECK(f.proto == port_forward::protocol::udp);
    CHECK(f.host_address == "0.0.0.0");
    CHECK(f.host_port == 5353);
    for (auto bad : {"80", "x:80", "8080:0", "8080:70000", "a,b:1:2", ""}) {
        ec.clear();
        parse_port_forward(bad, ec);
        CHECK_MESSAGE(ec == errc::bad_syntax, bad);
    }
}

TEST_CASE("config: validation names the bad field") {
    temp_dir t;
    std::ofstream(t.path / "k") << "kernel";
    config cfg;
    cz::error_info what;
    std::error_code ec;
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    CHECK(what.message == "no kernel given");
    CHECK(!what.offset);
    cfg.kernel = t.path / "k";
    ec.clear();
    validate(cfg, what, ec);
    CHECK(!ec);
    cfg.cpus = 0;
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    cfg.cpus = 1;
    ec.clear();
    cfg.disks.push_back({t.path / "missing.img"});
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    CHECK(what.message.find("missing.img") != std::string::npos);
    cfg.disks.clear();
    ec.clear();
    // The vsock device is on by default, with CID 3; 0..2 and -1 are not guest CIDs.
    REQUIRE(cfg.vsock);
    CHECK(cfg.vsock->guest_cid == 3);
    cfg.vsock->guest_cid = 2;
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    CHECK(what.message.find("vsock") != std::string::npos);
    ec.clear();
    cfg.vsock->guest_cid = 0xffffffffu;
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    ec.clear();
    cfg.vsock->guest_cid = 42;
    cfg.root = t.path / "x,y";
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
    ec.clear();
    cfg.vsock.reset(); // without the device, the root's name does not reach QEMU's command line
    validate(cfg, what, ec);
    CHECK(!ec);
    cfg.root.clear();
    std::ofstream(t.path / "a,b") << "x";
    cfg.kernel = t.path / "a,b";
    validate(cfg, what, ec);
    CHECK(ec == errc::invalid_config);
}

TEST_CASE("config: the cz root") {
    auto saved = [](const char* name) {
        const char* v = std::getenv(name);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    auto home = saved("HOME"), root = saved("CZ_ROOT"), xdg = saved("XDG_DATA_HOME");
    ::setenv("CZ_ROOT", "/x/cz", 1);
    CHECK(default_root() == "/x/cz");
    ::unsetenv("CZ_ROOT");
    ::setenv("XDG_DATA_HOME", "/x/data", 1);
    CHECK(default_root() == "/x/data/cz");
    ::unsetenv("XDG_DATA_HOME");
    ::setenv("HOME", "/x/home", 1);
    CHECK(default_root() == "/x/home/.local/share/cz");
    auto restore = [](const char* name, const std::optional<std::string>& v) {
        if (v) ::setenv(name, v->c_str(), 1);
        else ::unsetenv(name);
    };
    restore("HOME", home);
    restore("CZ_ROOT", root);
    restore("XDG_DATA_HOME", xdg);
}

TEST_CASE("qemu: the command line") {
    config cfg;
    cfg.kernel = "/k/vmlinuz";
    cfg.initrd = "/k/initrd";
    cfg.append = "cz.test=1";
    cfg.cpus = 2;
    cfg.memory_mib = 512;
    cfg.disks = {{"/d/root.img", true}, {"/d/scratch.img", false}};
    cfg.network = user_network{{{port_forward::protocol::tcp, "127.0.0.1", 8080, 80}}};
    qemu_launch l;
    l.qmp_fd = 7;
    l.accel = accel_mode::tcg;
    l.tsc_khz = 2600000;
    l.extra_args = {"-device", "extra"};
    qemu_options qemu;
    auto a = qemu_command_line(cfg, qemu, l);
    CHECK(a[0] == "qemu-system-x86_64");
    CHECK(has_words(a, {"-M", "microvm,x-option-roms=off,acpi=on,memory-backend=mem"}));
    CHECK(has_words(a, {"-accel", "tcg,thread=multi", "-cpu", "max,erms=off,fsrm=off"}));
    CHECK(has_words(a, {"-smp", "2", "-m", "512M"}));
    CHECK(has_words(a, {"-object", "memory-backend-memfd,id=mem,size=512M,share=on"}));
    CHECK(has_words(a, {"-global", "virtio-mmio.force-legacy=false"}));
    CHECK(has_words(a, {"-no-reboot"}));
    CHECK(has_words(a, {"-nodefaults"}));
    CHECK(has_words(a, {"-chardev", "socket,id=qmp,fd=7,server=on,wait=off"}));
    CHECK(has_words(a, {"-kernel", "/k/vmlinuz", "-initrd", "/k/initrd"}));
    CHECK(has_words(a, {"-drive", "id=disk0,file=/d/root.img,format=raw,if=none,readonly=on",
                        "-device", "virtio-blk-device,drive=disk0"}));
    CHECK(has_words(a, {"-drive", "id=disk1,file=/d/scratch.img,format=raw,if=none,readonly=off"}));
    CHECK(has_words(a, {"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80", "-device",
                        "virtio-net-device,netdev=net0"}));
    CHECK(a[a.size() - 2] == "-device");
    CHECK(a.back() == "extra");
    auto cmdline = *(std::find(a.begin(), a.end(), "-append") + 1);
    CHECK(cmdline.find("console=ttyS0") != std::string::npos);
    CHECK(cmdline.find("panic=-1") != std::string::npos);
    CHECK(cmdline.find("tsc_early_khz=2600000") != std::string::npos);
    CHECK(cmdline.find("acpi=off") == std::string::npos);
    CHECK(cmdline.ends_with(" cz.test=1"));

    l.accel = accel_mode::kvm;
    qemu.acpi = false;
    a = qemu_command_line(cfg, qemu, l);
    CHECK(has_words(a, {"-accel", "kvm", "-cpu", "host"}));
    CHECK(has_words(a, {"-M", "microvm,x-option-roms=off,acpi=off,memory-backend=mem"}));
    cmdline = *(std::find(a.begin(), a.end(), "-append") + 1);
    CHECK(cmdline.find("tsc_early_khz") == std::string::npos);
    // The guest is told, so it does not search for (and complain about) missing tables.
    CHECK(cmdline.find(" acpi=off") != std::string::npos);
}

TEST_CASE("accel: KVM only with /dev/kvm, KVM_CREATE_VM and a hardware module") {
    CHECK(kvm_create_vm_ioctl == KVM_CREATE_VM);
    temp_dir t;
    fs::create_directories(t.path / "module/kvm");
    std::ofstream(t.path / "not-kvm") << "";
    // A regular file opens, but KVM_CREATE_VM on it fails.
    auto p = probe_accel(t.path / "not-kvm", t.path / "module");
    CHECK(p.dev_kvm_opens);
    CHECK_FALSE(p.create_vm_works);
    CHECK_FALSE(p.hardware_module);
    CHECK_FALSE(p.kvm_usable());
    CHECK(p.describe().ends_with("-> tcg"));
    fs::create_directories(t.path / "module/kvm_amd");
    p = probe_accel(t.path / "missing", t.path / "module");
    CHECK_FALSE(p.dev_kvm_opens);
    CHECK(p.hardware_module);
    CHECK_FALSE(p.kvm_usable());
    CHECK(resolve_accel(accel_mode::tcg) == accel_mode::tcg);
    CHECK(resolve_accel(accel_mode::kvm) == accel_mode::kvm);
    ::setenv("CZ_ACCEL", "tcg", 1);
    CHECK(resolve_accel(accel_mode::automatic) == accel_mode::tcg);
    ::unsetenv("CZ_ACCEL");
    CHECK(resolve_accel(accel_mode::automatic) != accel_mode::automatic);
    // The real host: the probe and the decision agree.
    auto host = probe_accel();
    CHECK(resolve_accel(accel_mode::automatic) ==
          (host.kvm_usable() ? accel_mode::kvm : accel_mode::tcg));

    std::ofstream(t.path / "cpuinfo") << "processor\t: 0\ncpu MHz\t\t: 2599.998\n";
    CHECK(host_tsc_khz(t.path / "cpuinfo") == 2599998);
    std::ofstream(t.path / "cpuinfo2") << "processor\t: 0\n";
    CHECK(host_tsc_khz(t.path / "cpuinfo2") == 0);
}

TEST_CASE("kernel: cached kernels and their module order") {
    temp_dir t;
    std::error_code ec;
    find_kernel(t.path, kernel_flavor::debian, ec);
    CHECK(ec == errc::kernel_not_found);
    auto d = kernels_dir(t.path) / "debian";
    fs::create_directories(d / "modules");
    std::ofstream(d / "vmlinuz") << "k";
    std::ofstream(d / "version") << "6.1.0-test\n";
    std::ofstream(d / "modules.order") << "b.ko\na.ko\n";
    std::ofstream(d / "modules/a.ko") << "a";
    std::ofstream(d / "modules/b.ko") << "b";
    ec.clear();
    auto k = find_kernel(t.path, kernel_flavor::debian, ec);
    REQUIRE(!ec);
    CHECK(k.version == "6.1.0-test");
    CHECK(k.image == d / "vmlinuz");
    REQUIRE(k.modules.size() == 2);
    CHECK(k.modules[0].filename() == "b.ko");
    // The unpacked ELF (PVH entry), when there is one, is what VMs boot.
    std::ofstream(d / "vmlinux") << "elf";
    CHECK(find_kernel(t.path, kernel_flavor::debian).image == d / "vmlinux");
    std::ofstream(d / "modules.order", std::ios::app) << "../../escape.ko\n";
    find_kernel(t.path, kernel_flavor::debian, ec);
    CHECK(ec == errc::kernel_not_found);
    ec.clear();
    CHECK(parse_kernel_flavor("minimal", ec) == kernel_flavor::minimal);
    parse_kernel_flavor("other", ec);
    CHECK(ec == errc::bad_syntax);
}

TEST_CASE("state: directories nobody owns are removed; locked, kept and ones being made stay") {
    temp_dir t;
    auto vms = t.path / "vms";
    for (auto name : {"orphan", "running", "kept", ".new-made", ".new-abandoned"})
        fs::create_directories(vms / name);
    std::ofstream(vms / "orphan/console.log") << "left by a killed program";
    std::ofstream(vms / "kept/keep");
    std::ofstream(vms / "a-file") << "not a state directory";
    fs::create_directory_symlink(vms / "orphan", vms / "link");
    // A running VM's lock (another open file description, so it conflicts even in this process).
    cz::unique_fd lock(::open((vms / "running").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(::flock(lock.get(), LOCK_EX | LOCK_NB) == 0);
    // A directory being made (.new-<id>, not yet locked) is left alone until it is old: the
    // program making it locks and renames it within microseconds, or was killed doing so.
    fs::last_write_time(vms / ".new-abandoned", fs::file_time_type::clock::now() - std::chrono::hours(1));
    CHECK(remove_stale_state(t.path) == 2);
    CHECK_FALSE(fs::exists(vms / "orphan"));
    CHECK_FALSE(fs::exists(vms / ".new-abandoned"));
    CHECK(fs::exists(vms / ".new-made"));
    CHECK(fs::exists(vms / "running"));
    CHECK(fs::exists(vms / "kept/keep"));
    CHECK(fs::exists(vms / "a-file"));
    lock.reset();
    CHECK(remove_stale_state(t.path) == 1);
    CHECK_FALSE(fs::exists(vms / "running"));
    // No vms/ at all is fine.
    temp_dir empty;
    CHECK(remove_stale_state(empty.path) == 0);
}

TEST_CASE("process: exit codes, signals, exec failures, inherited fds") {
    std::error_code ec;
    auto p = child_process::spawn(argv_only({"sh", "-c", "exit 3"}), ec);
    REQUIRE(!ec);
    auto e = p.wait(ec);
    CHECK(!e.signaled);
    CHECK(e.code == 3);
    CHECK_FALSE(p.running());

    p = child_process::spawn(argv_only({"sleep", "100"}), ec);
    REQUIRE(!ec);
    CHECK(p.running());
    CHECK_FALSE(p.try_reap(ec));
    p.kill(SIGTERM, ec);
    e = p.wait(ec);
    CHECK(e.signaled);
    CHECK(e.code == SIGTERM);
    p.kill(SIGTERM, ec);
    CHECK(ec == errc::not_running);
    ec.clear();

    child_process::spawn(argv_only({"/nonexistent/program"}), ec);
    CHECK(ec == errc::vmm_not_found);
    ec.clear();
    child_process::spawn(argv_only({"no-such-program-in-path-cz"}), ec);
    CHECK(ec == errc::vmm_not_found);
    ec.clear();

    // Only 0-2 and the kept fd reach the child; a pipe opened O_CLOEXEC does not.
    int keep[2], leak[2], out[2];
    REQUIRE(::pipe2(keep, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(leak, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    spawn_options o;
    o.argv = {"sh", "-c", "ls /proc/self/fd"};
    o.stdout_fd = out[1];
    o.keep_fds = {keep[0]};
    p = child_process::spawn(o, ec);
    REQUIRE(!ec);
    ::close(out[1]);
    std::string listing;
    char buf[256];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) listing.append(buf, static_cast<std::size_t>(n));
    p.wait(ec);
    std::vector<std::string> fds;
    for (std::size_t pos = 0, nl; (nl = listing.find('\n', pos)) != std::string::npos; pos = nl + 1)
        fds.push_back(listing.substr(pos, nl - pos));
    // ls itself opens one fd for the directory it lists.
    CHECK(std::count(fds.begin(), fds.end(), std::to_string(keep[0])) == 1);
    CHECK(std::count(fds.begin(), fds.end(), std::to_string(leak[0])) == 0);
    CHECK(fds.size() <= 5);
    for (int fd : {keep[0], keep[1], leak[0], leak[1], out[0]}) ::close(fd);

    // A child_process destroyed while running kills and reaps its child.
    pid_t pid;
    {
        auto q = child_process::spawn(argv_only({"sleep", "100"}), ec);
        pid = q.pid();
        CHECK(::kill(pid, 0) == 0);
    }
    CHECK(::kill(pid, 0) == -1);
}

TEST_CASE("process: the child dies with the thread that spawned it (PR_SET_PDEATHSIG)") {
    // A helper shell spawns nothing itself; instead an intermediate child of ours spawns sleep
    // through child_process, then exits without cleanup: sleep must die with it.
    int pids[2];
    REQUIRE(::pipe(pids) == 0);
    pid_t middle = ::fork();
    REQUIRE(middle >= 0);
    if (middle == 0) {
        std::error_code ec;
        auto p = child_process::spawn(argv_only({"sleep", "100"}), ec);
        pid_t pid = p.pid();
        ssize_t ignored = ::write(pids[1], &pid, sizeof pid);
        (void)ignored;
        ::_exit(0); // no destructors: only the kernel can kill sleep now
    }
    ::close(pids[1]);
    pid_t grandchild = 0;
    REQUIRE(::read(pids[0], &grandchild, sizeof grandchild) == sizeof grandchild);
    ::close(pids[0]);
    ::waitpid(middle, nullptr, 0);
    // The orphan is reparented and killed; poll briefly for it to disappear.
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
        std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
        std::string line;
        gone = !std::getline(stat, line) || line.find(") Z") != std::string::npos;
        if (!gone) ::usleep(10000);
    }
    CHECK(gone);
}

} // TEST_SUITE
