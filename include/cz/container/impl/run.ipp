// Out-of-line definitions for cz/container/run.hpp.
#pragma once

#include <cz/container/run.hpp>

#include <cz/agent/client.hpp>
#include <cz/container/error.hpp>
#include <cz/container/guest.hpp>
#include <cz/container/impl/ask.hpp>
#include <cz/container/live.hpp>
#include <cz/container/pull.hpp>
#include <cz/container/rootfs.hpp>
#include <cz/container/template.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/oci/store.hpp>
#include <cz/vm/qemu.hpp>
#include <cz/vm/run.hpp>
#include <cz/vm/template.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

namespace cz::container {

CZ_DECL bool needs_pull(const run_options& opts) {
    if (opts.pull != pull_policy::missing) return opts.pull == pull_policy::always;
    std::error_code ec;
    auto content = oci::content_store::open(opts.root, ec);
    if (ec) return true; // no store yet: the pull makes one
    oci::image_store images(content);
    images.find(opts.image, ec);
    return static_cast<bool>(ec);
}

CZ_DECL bool valid_container_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name.front())) return false;
    for (char c : name)
        if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

namespace detail {

// Inside the runner, failures travel as this exception to run(), which turns it into its
// error_code and detail.
struct run_failure : std::runtime_error {
    run_failure(std::error_code e, std::string what) : std::runtime_error(what), ec(e) {}
    std::error_code ec;
};

[[noreturn]] inline void fail(std::error_code ec, std::string what) {
    throw run_failure(ec, std::move(what));
}

// The name of cz-init's virtio-serial port (its cz.agent=serial:NAME option), and the id of its
// QEMU device (a template waits for the guest to open it).
inline constexpr const char* agent_port = "cz.agent";
inline constexpr const char* agent_port_id = "agentport";

// Stream ids of the container's stdio.
inline constexpr std::uint32_t stdin_stream = 1, stdout_stream = 2, stderr_stream = 3;

// Writes all of `data` to a host fd, waiting while a non-blocking one is full. A reader that went
// away (EPIPE) is not the container's problem: the rest is dropped, as a shell pipeline would.
inline void write_all(int fd, bytes_view data, bool& broken) {
    while (!data.empty() && !broken) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n > 0) {
            data = data.subspan(static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
        } else {
            broken = true;
        }
    }
}

// Restores a terminal's settings and a descriptor's flags when the run ends.
class terminal_guard {
public:
    terminal_guard() = default;
    terminal_guard(const terminal_guard&) = delete;
    terminal_guard& operator=(const terminal_guard&) = delete;
    ~terminal_guard() { restore(); }

    void make_raw(int fd) {
        if (::tcgetattr(fd, &saved_) != 0) return;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(fd, TCSADRAIN, &raw) == 0) raw_fd_ = fd;
    }
    void keep_flags(int fd) {
        flags_ = ::fcntl(fd, F_GETFL);
        if (flags_ >= 0) flags_fd_ = fd;
    }
    void restore() noexcept {
        if (raw_fd_ >= 0) ::tcsetattr(raw_fd_, TCSADRAIN, &saved_);
        if (flags_fd_ >= 0) ::fcntl(flags_fd_, F_SETFL, flags_);
        raw_fd_ = flags_fd_ = -1;
    }

private:
    termios saved_{};
    int raw_fd_ = -1;
    int flags_fd_ = -1;
    int flags_ = 0;
};

// A file removed when the run ends, however it ends.
struct removed_file {
    std::filesystem::path path;
    removed_file() = default;
    removed_file(const removed_file&) = delete;
    removed_file& operator=(const removed_file&) = delete;
    ~removed_file() {
        if (!path.empty()) ::unlink(path.c_str());
    }
};

// One run: the VM, the agent connection, the process. All of it on one thread (io_).
class runner {
public:
    runner(const run_options& o, run_result& r) : opts_(o), result_(r) {}

    void run() {
        auto t = clock::now();
        prepare_volumes();
        if (needs_pull(opts_)) {
            pull();
            phase("pull", t);
        }
        prepare_image();
        phase("image", t);
        prepare_rootfs();
        phase("rootfs", t);
        prepare_guest();
        prepare_scratch();
        phase("guest", t);
        if (prepare_template()) phase("template", t);
        if (interrupted_) fail(errc::interrupted, "interrupted while the VM template was made");
        vm_.emplace(io_, vm_config(), qemu_options());
        std::exception_ptr failure;
        asio::co_spawn(io_, main(), [&](std::exception_ptr e) {
            failure = e;
            io_.stop(); // what still waits (the VM's end, stdin) is not waited for
        });
        io_.run();
        if (failure) std::rethrow_exception(failure);
    }

    // Why a root filesystem built for this run could not be kept for later ones (empty if it
    // was, or was not built). Known once the run is over.
    std::string rootfs_warning() {
        if (publisher_.joinable())
            publisher_.join();
        else if (!rootfs_.pending_name.empty()) // the VM never started: publish it now
            publish_rootfs(rootfs_, publish_error_);
        return publish_error_ ? "the root filesystem of " + opts_.image +
                                    " is not kept for later runs: " + publish_error_.message()
                              : std::string();
    }

    // The VM console's last lines (empty before the VM started).
    std::string console_tail() const {
        return vm_ ? vm::console_tail(vm_->console(), 20) : std::string();
    }
    int interrupted() const noexcept { return interrupted_; }

private:
    using clock = std::chrono::steady_clock;
    using tuple_t = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
    static constexpr tuple_t tuple{};

    void phase(const char* name, clock::time_point& since) {
        auto now = clock::now();
        result_.timings.push_back({name, now - since});
        since = now;
    }
    void progress(const std::string& line) {
        if (opts_.on_progress) opts_.on_progress(line);
    }

    // --- before the VM ----------------------------------------------------------------------

    // The image from its registry, its root filesystem built while the layers arrive.
    void pull() {
        progress("pulling " + opts_.image);
        pull_options po;
        po.platform = opts_.platform;
        po.registry = opts_.registry;
        po.on_blob = opts_.on_pull_progress;
        po.on_layer = [this](std::size_t i, std::size_t n) { layer_progress(i, n); };
        std::error_code ec;
        std::string why;
        po.defer_publish = true; // see publish_rootfs_meanwhile
        auto pulled = pull_image(opts_.root, opts_.image, po, ec, &why);
        if (ec) fail(ec, "pulling " + opts_.image + ": " + why);
        rootfs_ = std::move(pulled.rootfs);
    }

    void layer_progress(std::size_t i, std::size_t n) {
        progress("building the root filesystem of " + opts_.image + ": layer " +
                 std::to_string(i + 1) + " of " + std::to_string(n));
    }

    void prepare_image() {
        std::error_code ec;
        std::string why;
        content_ = oci::content_store::open(opts_.root, ec, &why);
        if (ec) fail(ec, "the store under " + opts_.root.string() + ": " + why);
        oci::image_store images(content_);
        auto entry = images.find(opts_.image, ec, &why);
        if (ec) fail(ec, "image " + opts_.image + (why.empty() ? "" : ": " + why));
        auto target = images.resolve(entry.target, opts_.platform, ec, &why);
        if (ec) fail(ec, "image " + opts_.image + ": " + why);
        manifest_digest_ = target.digest;
        auto what = "image " + opts_.image + ": manifest " + target.digest.str();
        auto bytes = content_.read(target, oci::max_document_size, ec, &why);
        if (!ec) manifest_ = oci::parse_manifest(std::move(bytes), ec, &why);
        if (ec) fail(ec, what + ": " + why);
        what = "image " + opts_.image + ": config " + manifest_.config.digest.str();
        bytes = content_.read(manifest_.config, oci::max_document_size, ec, &why);
        if (!ec) config_ = oci::parse_image_config(std::move(bytes), ec, &why);
        if (ec) fail(ec, what + ": " + why);

        name_ = opts_.name;
        if (name_.empty()) {
            std::random_device random;
            constexpr char hex[] = "0123456789abcdef";
            for (int i = 0; i < 12; ++i)
                name_ += hex[random() % 16];
        } else if (!valid_container_name(name_)) {
            fail(errc::bad_option, "container name \"" + name_ +
                                       "\": 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or "
                                       "digit");
        }
        auto spec = opts_.spec;
        if (spec.hostname.empty()) spec.hostname = name_;
        if (spec.terminal && opts_.stdout_fd >= 0) {
            winsize ws{};
            if (::ioctl(opts_.stdout_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
                spec.rows = ws.ws_row;
                spec.columns = ws.ws_col;
            }
        }
        auto mounts = volume_mounts(volumes_, volume_transport_);
        spec.mounts.insert(spec.mounts.end(), mounts.begin(), mounts.end());
        hostname_ = spec.hostname;
        spec_json_ = make_runtime_spec(config_.config, spec, ec, &why);
        if (ec) fail(ec, why);
    }

    void prepare_rootfs() {
        if (!rootfs_.path.empty()) return; // the pull built it
        rootfs_options ro;
        ro.defer_publish = true;
        ro.on_layer = [this](std::size_t i, std::size_t n) { layer_progress(i, n); };
        std::error_code ec;
        std::string why;
        auto r = ensure_rootfs(content_, manifest_, manifest_digest_, ro, ec, &why);
        if (ec) fail(ec, "the root filesystem of " + opts_.image + ": " + why);
        rootfs_ = std::move(r);
    }

    // A root filesystem just built goes to disk and into the cache on a thread of its own while
    // the VM boots from it: the flush is the disk's work and the boot the CPU's, so they
    // overlap. QEMU has opened the file by then and keeps it under whichever name it has.
    void publish_rootfs_meanwhile() {
        if (rootfs_.pending_name.empty()) return;
        published_ = std::exchange(rootfs_, {}); // the thread's own
        publisher_ = std::jthread([this] { publish_rootfs(published_, publish_error_); });
    }

    void prepare_guest() {
        std::error_code ec;
        std::string why;
        kernel_ = find_container_kernel(opts_.root, opts_.kernel, ec);
        if (ec)
            fail(ec, "kernel " + (opts_.kernel.empty() ? std::string("debian") : opts_.kernel) +
                         " under " + opts_.root.string() + " (get one with `cz kernel fetch`)");
        auto init = find_init(opts_.init, ec);
        if (ec) fail(ec, opts_.init.empty() ? "cz-init" : opts_.init.string());
        // The agent talks over virtio-serial: loading the vsock drivers would only cost boot
        // time (each module is a few tens of milliseconds under TCG).
        auto guest_kernel = kernel_;
        // Nor those of volumes the run does not have, nor the network's without a network.
        const bool network = opts_.network != network_mode::none;
        std::erase_if(guest_kernel.modules, [&](const std::filesystem::path& m) {
            auto name = m.filename().string();
            return name.find("vsock") != std::string::npos ||
                   (!network && (name.starts_with("virtio_net.") ||
                                 name.find("failover.") != std::string::npos)) ||
                   (is_volume_module(m) &&
                    (volumes_.empty() || !is_transport_module(m, volume_transport_)));
        });
        if (!volumes_.empty()) {
            check_kernel_supports(kernel_, volume_transport_, ec, &why);
            if (ec) fail(ec, why);
        }
        initramfs_ = ensure_initramfs(opts_.root, init, guest_kernel, ec, &why);
        if (ec) fail(ec, "initramfs: " + why);
    }

    // The volumes, checked against the host, and how they reach the guest.
    void prepare_volumes() {
        if (opts_.volumes.empty()) return;
        std::error_code ec;
        std::string why;
        volumes_ = check_volumes(opts_.volumes, ec, &why);
        if (ec) fail(ec, why);
        virtiofsd_ = vm::find_virtiofsd();
        volume_transport_ = resolve_volume_transport(opts_.volume_mode, virtiofsd_);
        if (volume_transport_ == vm::shared_dir_transport::virtiofs && virtiofsd_.empty())
            fail(errc::bad_option, std::string("volumes through virtio-fs: no virtiofsd (") +
                                       vm::debian_virtiofsd + ", $CZ_VIRTIOFSD)");
    }

    // The scratch disk, when the run asks for one: an empty ext4 image of that size, named by
    // this process so that one a killed run left is removed by the next
    // (remove_abandoned_files).
    void prepare_scratch() {
        if (opts_.scratch_bytes == 0) return;
        auto dir = opts_.root / "scratch";
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) fail(ec, dir.string());
        remove_abandoned_files(dir);
        scratch_.path = dir / (name_ + ".ext4.tmp-" + std::to_string(::getpid()) + "-0");
        unique_fd fd(::open(scratch_.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd) fail(last_system_error(), scratch_.path.string());
        ext4::format_options format;
        format.size = opts_.scratch_bytes;
        ext4::formatter image(std::move(fd), format);
        image.finish(ec);
        if (ec) fail(ec, "scratch disk " + scratch_.path.string());
    }

    vm::config vm_config() const {
        vm::config c;
        c.kernel = kernel_.image;
        c.initrd = initramfs_;
        c.root = opts_.root;
        c.cpus = opts_.cpus;
        c.memory_mib = opts_.memory_mib;
        c.accel = opts_.accel;
        c.keep_state = opts_.keep_state;
        c.disks = {{rootfs_.path, true}};
        // The agent talks over virtio-serial: no vsock device needed.
        c.vsock.reset();
        c.append = std::string("cz.rootfs=/dev/vda cz.log=warn cz.agent=serial:") + agent_port;
        if (!scratch_.path.empty()) {
            c.disks.push_back({scratch_.path, false});
            c.append += " cz.scratch=/dev/vdb";
        }
        if (opts_.network == network_mode::user) {
            c.network = vm::user_network{opts_.ports};
            c.append += network_cmdline();
        }
        // A clone's QEMU is the template's: the same kernel command line (its guest has booted).
        if (template_) c.append = template_append();
        return c;
    }

    std::string template_append() const {
        return std::string("cz.log=warn cz.agent=serial:") + agent_port + " " + template_cmdline +
               network_cmdline();
    }

    // QEMU's user-mode network, the same in every VM: the guest is 10.0.2.15/24, the host
    // 10.0.2.2. cz-init sets it up as it boots, before it is ready (so a template has it).
    std::string network_cmdline() const {
        return opts_.network == network_mode::user ? " cz.net=eth0,10.0.2.15/24,10.0.2.2" : "";
    }

    vm::template_options template_options() const {
        vm::template_options t;
        t.ready_port = agent_port_id;
        t.layout = std::string("virtio-serial:") + agent_port_id;
        t.ready_timeout = opts_.boot_timeout;
        return t;
    }

    // This run's template, made when there is none (or a damaged one): whether the run is to
    // start from it. Runs with volumes boot cold (virtio-fs shares guest RAM with virtiofsd).
    bool prepare_template() {
        if (!opts_.use_template || !volumes_.empty()) return false;
        // The template's form of this run's VM (template_ is still empty: vm_config's is cold).
        auto cfg = template_vm_config(vm_config(), template_append());
        auto q = qemu_options();
        auto t = template_options();
        // A signal while the template's guest boots ends the run, as one during a boot does.
        std::optional<asio::signal_set> signals;
        if (opts_.forward_signals) {
            signals.emplace(io_, SIGINT, SIGTERM, SIGHUP);
            signals->add(SIGQUIT);
            signals->async_wait([this](std::error_code e, int sig) {
                if (!e) interrupted_ = sig;
            });
            t.cancelled = [this] { return interrupted_ != 0; };
        }
        std::error_code ec;
        error_info why;
        auto info = vm::find_template(cfg, q, t, ec, why);
        if (ec == vm::errc::template_invalid) {
            warn("VM template damaged, making it again: " + to_string(why));
        }
        if (ec) {
            progress("making a VM template (once for this kernel, cz-init and VM size)");
            why = {};
            info = vm::make_template(io_, cfg, q, t, ec, why);
            if (interrupted_) return false;
            if (ec) {
                warn("cannot make a VM template (" + ec.message() + ": " + to_string(why) +
                     "); booting cold");
                return false;
            }
        }
        template_ = info;
        return true;
    }

    void warn(const std::string& line) {
        if (opts_.on_warning) opts_.on_warning(line);
    }

    vm::qemu_options qemu_options() const {
        vm::qemu_options q;
        if (template_) vm::use_template(*template_, q);
        for (std::size_t i = 0; i < volumes_.size(); ++i)
            q.devices.push_back(
                vm::qemu_shared_dir_device({volumes_[i].host, volume_tag(i), volumes_[i].read_only},
                                           volume_transport_, i, virtiofsd_));
        q.devices.push_back([](vm::device_context& d) -> std::vector<std::string> {
            auto socket = (d.state_dir() / (std::string(agent_port) + ".sock")).string();
            return {"-device",
                    "virtio-serial-device",
                    "-chardev",
                    "socket,id=agent,server=on,wait=off,path=" + socket,
                    "-device",
                    std::string("virtserialport,id=") + agent_port_id +
                        ",chardev=agent,name=" + agent_port};
        });
        return q;
    }

    // --- the VM's life ------------------------------------------------------------------------

    asio::awaitable<void> main() {
        auto t = clock::now();
        signals_.emplace(io_);
        if (opts_.forward_signals) {
            for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
                signals_->add(s);
            if (opts_.spec.terminal) signals_->add(SIGWINCH);
            asio::co_spawn(io_, forward_signals(), asio::detached);
        }
        if (template_) co_await restore_from_template(t);
        if (!template_) {
            auto [start_ec] = co_await vm_->async_start(tuple);
            if (start_ec) fail(start_ec, "starting the VM: " + to_string(vm_->error_detail()));
            phase("boot", t);
        }
        publish_rootfs_meanwhile(); // QEMU has the image open now, whatever its name becomes
        asio::co_spawn(io_, watch_vm(), asio::detached);

        co_await connect_agent();
        phase("agent", t);
        // The guest's setup and the process's start in one round of requests (after a clone's
        // Awaken and MountRootfs): cz-init takes them in the order they arrive, so the process
        // starts in a finished setup, and a step that fails is the error told (its answer comes
        // first).
        {
            using namespace asio::experimental::awaitable_operators;
            if (template_)
                co_await (awaken() && setup_guest() && start_process());
            else
                co_await (setup_guest() && start_process());
        }
        phase("start", t);
        if (opts_.on_started) {
            live_.emplace(live_container{io_, *client_, *vm_, name_, spec_json_,
                                         config_.config.stop_signal, nullptr});
            opts_.on_started(*live_);
        }
        co_await run_process();
        phase("exit", t);
        co_await teardown();
        phase("teardown", t);
        signals_->cancel();
    }

    // A clone of the run's template: QEMU started with its memory, the state restored. A clone
    // that cannot be restored (a state QEMU refuses) ends, and the run boots cold instead.
    asio::awaitable<void> restore_from_template(clock::time_point& t) {
        auto [start_ec] = co_await vm_->async_start(tuple);
        // Stopped by a signal (forward_signals): no cold boot instead.
        if (interrupted_)
            fail(start_ec ? start_ec : make_error_code(errc::interrupted), "starting the VM");
        if (!start_ec) {
            phase("qemu", t);
            error_info why;
            auto ec = co_await vm::async_restore_clone(*vm_, *template_, why);
            if (interrupted_) fail(ec ? ec : make_error_code(errc::interrupted), "starting the VM");
            if (!ec) {
                phase("incoming", t);
                result_.from_template = true;
                co_return;
            }
            warn("VM template " + template_->key + ": " + ec.message() + ": " + to_string(why) +
                 "; booting cold");
        } else {
            warn("VM template " + template_->key +
                 ": starting QEMU: " + to_string(vm_->error_detail()) + "; booting cold");
        }
        template_.reset();
        vm_.reset();
        vm_.emplace(io_, vm_config(), qemu_options());
    }

    // The clone learns who it is before anything else, then mounts its root file system.
    asio::awaitable<void> awaken() {
        std::error_code ec;
        auto who = make_awaken(hostname_, ec);
        if (ec) fail(ec, "a seed for the guest's random number generator");
        auto mount = make_mount_rootfs(!scratch_.path.empty());
        using namespace asio::experimental::awaitable_operators;
        auto awaking = call(who, "telling the VM who it is");
        auto mounting = call(mount, "mounting the root file system");
        co_await (std::move(awaking) && std::move(mounting));
    }

    // Waits for the VM's end; a VM that ends on its own before the process does fails the run.
    asio::awaitable<void> watch_vm() {
        auto [ec, status] = co_await vm_->async_wait(tuple);
        vm_status_ = status;
        vm_ended_ = true;
        if (client_) client_->close(); // every pending call fails now
        vm_gone_.cancel();
    }

    asio::awaitable<void> connect_agent() {
        // QEMU listens on the port's socket from its start; cz-init answers once the guest has
        // booted. Until then our Hello waits in the socket.
        asio::local::stream_protocol::socket socket(io_);
        auto path = vm_->state_dir() / (std::string(agent_port) + ".sock");
        auto [ec] = co_await socket.async_connect(
            asio::local::stream_protocol::endpoint(path.string()), tuple);
        if (ec) fail(ec, "connecting to the agent's port " + path.string());
        make_client(std::move(socket));
        auto [hec, session] = co_await client_->async_handshake(tuple);
        agent_ready_ = true;
        boot_deadline_.cancel();
        (void)session;
        if (hec) check_vm_alive(hec, "the guest agent");
        if (timed_out_)
            fail(errc::agent_timeout,
                 "no answer within " + std::to_string(opts_.boot_timeout.count()) + " ms");
        asio::co_spawn(io_, client_->async_run(asio::use_awaitable), asio::detached);
    }

    // The agent's client, with its events handled, and a deadline for its first answer.
    void make_client(asio::local::stream_protocol::socket socket) {
        client_.emplace(std::move(socket));
        client_->on_event([this](const agent::event& e) {
            if (e.which_kind == cz_agent_Event_oom_killed_tag) result_.oom_killed = true;
        });
        boot_deadline_.expires_after(opts_.boot_timeout);
        boot_deadline_.async_wait([this](std::error_code e) {
            if (!e && !agent_ready_) {
                timed_out_ = true;
                client_->close();
            }
        });
    }

    // An RPC failed with `ec`: because the VM ended, or for its own reason.
    void check_vm_alive(std::error_code ec, const std::string& what) {
        if (vm_ended_)
            fail(errc::vm_ended, what + ": the VM ended (" + vm_status_.describe() + ")");
        if (timed_out_) fail(errc::agent_timeout, what);
        fail(ec, what);
    }

    template <class Rpc>
    asio::awaitable<agent::response> call(const Rpc& rpc, std::string what) {
        auto [ec, r] = co_await client_->async_call(rpc, tuple);
        if (ec && r.which_result == cz_agent_Response_error_tag)
            fail(ec, what + ": " + std::string(agent::get_string(r.result.error.message)));
        if (ec) check_vm_alive(ec, what);
        co_return r;
    }

    template <std::size_t N>
    static void put(char (&field)[N], std::string_view value) {
        std::error_code ec;
        agent::set_string(field, value, ec);
        if (ec) fail(errc::bad_option, "\"" + std::string(value) + "\" is too long for the agent");
    }

    // The guest's name files. The guest's network is set up by cz-init as it boots
    // (network_cmdline): in a template's clone, it is there already.
    asio::awaitable<void> setup_guest() {
        cz_agent_ConfigureHosts hosts{};
        put(hosts.root, guest_rootfs_path);
        put(hosts.entries[0].address,
            opts_.network == network_mode::user ? "10.0.2.15" : "127.0.1.1");
        put(hosts.entries[0].names[0], hostname_);
        hosts.entries[0].names_count = 1;
        hosts.entries_count = 1;
        if (opts_.network != network_mode::user) {
            co_await call(hosts, "writing /etc/hosts");
            co_return;
        }
        // QEMU's user-mode network: DNS at 10.0.2.3.
        cz_agent_ConfigureDns dns{};
        put(dns.root, guest_rootfs_path);
        put(dns.nameservers[0], "10.0.2.3");
        dns.nameservers_count = 1;
        // In one round trip: cz-init answers them in order.
        using namespace asio::experimental::awaitable_operators;
        auto resolv_conf = call(dns, "writing /etc/resolv.conf");
        auto hosts_file = call(hosts, "writing /etc/hosts");
        co_await (std::move(resolv_conf) && std::move(hosts_file));
    }

    asio::awaitable<void> start_process() {
        std::error_code ec;
        const bool tty = opts_.spec.terminal;
        const bool input = opts_.stdin_fd >= 0;
        cz_agent_CreateProcess create{};
        put(create.container_id, name_);
        put(create.process_id, name_);
        create.config.data = reinterpret_cast<const std::byte*>(spec_json_.data());
        create.config.size = static_cast<pb_size_t>(spec_json_.size());
        create.terminal = tty;
        client_->open_stream(stdout_stream, ec);
        create.stdout_stream = stdout_stream;
        if (tty) {
            create.stdin_stream = input ? stdout_stream : 0;
        } else {
            client_->open_stream(stderr_stream, ec);
            create.stderr_stream = stderr_stream;
            if (input) {
                client_->open_stream(stdin_stream, ec);
                create.stdin_stream = stdin_stream;
            }
        }
        if (ec) fail(ec, "opening the stdio streams");
        cz_agent_StartProcess start{};
        put(start.container_id, name_);
        put(start.process_id, name_);
        // Both in one round trip: cz-init takes requests in the order they arrive, so Start finds
        // the process Create made (or fails after it, and Create's error is the one told).
        using namespace asio::experimental::awaitable_operators;
        auto creating = detail::ask(*client_, create);
        auto starting = detail::ask(*client_, start);
        auto [created, started] = co_await (std::move(creating) && std::move(starting));
        if (created.ec) {
            if (created.r.which_result == cz_agent_Response_error_tag)
                fail(created.ec, "creating the container: " + std::string(agent::get_string(
                                                                  created.r.result.error.message)));
            check_vm_alive(created.ec, "creating the container");
        }
        const auto& sec = started.ec;
        const auto& r = started.r;
        if (sec && r.which_result == cz_agent_Response_error_tag) {
            std::string message(agent::get_string(r.result.error.message));
            if (r.result.error.code == cz_agent_ErrorCode_ERROR_NOT_FOUND)
                fail(errc::command_not_found, message);
            if (r.result.error.code == cz_agent_ErrorCode_ERROR_FAILED_PRECONDITION)
                fail(errc::command_not_executable, message);
            fail(errc::start_failed, message);
        }
        if (sec) check_vm_alive(sec, "starting the container");
        started_ = true;
    }

    asio::awaitable<void> run_process() {
        using namespace asio::experimental::awaitable_operators;
        if (opts_.stdin_fd >= 0)
            asio::co_spawn(io_, pump_stdin(opts_.spec.terminal ? stdout_stream : stdin_stream),
                           asio::detached);
        // Asked now and answered when the process exits, so that the exit code needs no round
        // trip of its own once the output has ended.
        cz_agent_WaitProcess wait{};
        put(wait.container_id, name_);
        put(wait.process_id, name_);
        auto waiting = detail::ask(*client_, wait);
        detail::rpc_answer waited;
        if (opts_.spec.terminal) {
            waited =
                co_await (pump_output(stdout_stream, opts_.stdout_fd, 1) && std::move(waiting));
        } else {
            waited =
                co_await (pump_output(stdout_stream, opts_.stdout_fd, 1) &&
                          pump_output(stderr_stream, opts_.stderr_fd, 2) && std::move(waiting));
        }
        const auto& r = waited.r;
        if (waited.ec && r.which_result == cz_agent_Response_error_tag)
            fail(waited.ec, "waiting for the container's process: " +
                                std::string(agent::get_string(r.result.error.message)));
        if (waited.ec) check_vm_alive(waited.ec, "waiting for the container's process");
        result_.exit_code = r.result.wait_process.status;
        // The answer says so since cz-init reports OOM kills; the OomKilled event covers a kill
        // of another process of the container.
        if (r.result.wait_process.oom_killed) result_.oom_killed = true;
        exited_ = true;
        if (stdin_reader_) stdin_reader_->cancel();
        // No DeleteProcess: the VM ends next, and everything of the container with it.
    }

    // Guest -> host: one stream to one host fd (or to on_output as `which`), until the guest
    // ends the stream.
    asio::awaitable<void> pump_output(std::uint32_t stream, int fd, int which) {
        std::vector<std::byte> buf(64 * 1024);
        bool broken = fd < 0 && !opts_.on_output;
        for (;;) {
            auto [ec, n] = co_await client_->async_read_stream(stream, buf, tuple);
            if (n > 0 && opts_.on_output)
                opts_.on_output(which, bytes_view(buf.data(), n));
            else if (n > 0 && !broken)
                write_all(fd, bytes_view(buf.data(), n), broken);
            if (ec == asio::error::eof) co_return;
            if (ec) check_vm_alive(ec, "reading the container's output");
        }
    }

    // Host -> guest: the host's stdin to the container, then its end. A pipe, socket or terminal
    // is read asynchronously; a regular file (which epoll cannot watch) with plain reads, which
    // do not wait.
    asio::awaitable<void> pump_stdin(std::uint32_t stream) {
        int fd = ::dup(opts_.stdin_fd);
        if (fd < 0) co_return;
        stdin_guard_.keep_flags(opts_.stdin_fd); // Asio makes the shared description non-blocking
        stdin_reader_.emplace(io_);
        std::error_code ec;
        stdin_reader_->assign(fd, ec);
        const bool pollable = !ec;
        if (!pollable) stdin_reader_.reset();
        unique_fd plain(pollable ? -1 : fd);
        std::vector<std::byte> buf(64 * 1024);
        for (;;) {
            std::size_t n = 0;
            if (pollable) {
                auto [rec, got] = co_await stdin_reader_->async_read_some(asio::buffer(buf), tuple);
                if (rec) break; // the end, an error, or the process exited (cancelled)
                n = got;
            } else {
                ssize_t got = ::read(plain.get(), buf.data(), buf.size());
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0) break;
                n = static_cast<std::size_t>(got);
            }
            auto [wec, sent] = co_await client_->async_write_stream(
                stream, bytes_view(buf.data(), n), false, tuple);
            (void)sent;
            if (wec) co_return; // the process is gone or closed its stdin
        }
        if (!exited_) co_await client_->async_write_stream(stream, {}, true, tuple);
    }

    asio::awaitable<void> forward_signals() {
        for (;;) {
            auto [ec, sig] = co_await signals_->async_wait(tuple);
            if (ec) co_return;
            if (sig == SIGWINCH) {
                co_await resize();
                continue;
            }
            if (!started_) {
                interrupted_ = sig;
                // Nothing runs yet: end the VM; main() fails on what it was waiting for.
                if (client_) client_->close();
                if (vm_->running())
                    co_await vm_->async_stop(vm::stop_options{std::chrono::milliseconds(0)}, tuple);
                continue;
            }
            if (exited_) continue;
            cz_agent_KillProcess kill{};
            put(kill.container_id, name_);
            put(kill.process_id, name_);
            kill.signal = sig;
            co_await client_->async_call(kill, tuple); // a process that just exited: no matter
        }
    }

    asio::awaitable<void> resize() {
        winsize ws{};
        if (!started_ || exited_ || ::ioctl(opts_.stdout_fd, TIOCGWINSZ, &ws) != 0 ||
            ws.ws_row == 0)
            co_return;
        cz_agent_ResizeProcess r{};
        put(r.container_id, name_);
        put(r.process_id, name_);
        r.rows = ws.ws_row;
        r.columns = ws.ws_col;
        co_await client_->async_call(r, tuple);
    }

    // With volumes, what the container wrote to them may still be in the guest's caches:
    // cz-init syncs and powers off after Shutdown (a guest that does not within 10 s is
    // stopped). Without, nothing of the guest outlives the VM (the root filesystem is read-only,
    // the writable layer goes with it), so QEMU is simply told to quit: the guest's power-off
    // would only cost time.
    asio::awaitable<void> teardown() {
        if (volumes_.empty()) {
            client_->close();
            co_await vm_->async_stop(vm::stop_options{std::chrono::milliseconds(0)}, tuple);
            if (signals_) signals_->cancel();
            co_return;
        }
        cz_agent_Shutdown shutdown{};
        co_await client_->async_call(shutdown, tuple);
        if (!vm_ended_) {
            vm_gone_.expires_after(std::chrono::seconds(10));
            co_await vm_gone_.async_wait(tuple);
        }
        if (!vm_ended_) co_await vm_->async_stop(vm::stop_options{}, tuple);
        if (signals_) signals_->cancel();
    }

    const run_options& opts_;
    run_result& result_;
    asio::io_context io_;
    oci::content_store content_;
    digest manifest_digest_;
    oci::manifest manifest_;
    oci::image_config config_;
    std::string name_, hostname_, spec_json_;
    rootfs_result rootfs_;
    rootfs_result published_;
    std::error_code publish_error_;
    std::jthread publisher_; // declared after what it uses: joined before they go
    std::filesystem::path initramfs_;
    vm::kernel_info kernel_;
    std::vector<volume> volumes_; // checked: canonical host directories
    vm::shared_dir_transport volume_transport_ = vm::shared_dir_transport::virtiofs;
    std::string virtiofsd_;
    removed_file scratch_; // declared before vm_: outlives the VM that uses it
    std::optional<vm::qemu_vm> vm_;
    std::optional<vm::template_info> template_; // set: the VM is (to be) this template's clone
    std::optional<agent::client> client_;
    std::optional<asio::signal_set> signals_;
    std::optional<asio::posix::stream_descriptor> stdin_reader_;
    std::optional<live_container> live_;
    asio::steady_timer vm_gone_{io_, asio::steady_timer::time_point::max()};
    asio::steady_timer boot_deadline_{io_};
    terminal_guard stdin_guard_;
    vm::exit_status vm_status_;
    bool vm_ended_ = false, agent_ready_ = false, timed_out_ = false, started_ = false,
         exited_ = false;
    int interrupted_ = 0;
};

} // namespace detail

CZ_DECL run_result run(const run_options& opts, std::error_code& ec, std::string* detail) {
    ec.clear();
    run_result result;
    detail::terminal_guard terminal;
    if (opts.spec.terminal && opts.raw_terminal && opts.stdin_fd >= 0 && ::isatty(opts.stdin_fd))
        terminal.make_raw(opts.stdin_fd);
    detail::runner r(opts, result);
    try {
        r.run();
    } catch (const detail::run_failure& f) {
        ec = r.interrupted() ? make_error_code(errc::interrupted) : f.ec;
        if (detail)
            *detail = r.interrupted() ? fmt::format("stopped by signal {} ({}) before the "
                                                    "container started",
                                                    r.interrupted(), ::strsignal(r.interrupted()))
                                      : f.what();
        // What the guest said last, when the guest is where it went wrong.
        if (ec == errc::vm_ended || ec == errc::agent_timeout || ec == errc::start_failed)
            result.console_tail = r.console_tail();
    } catch (const std::system_error& e) {
        ec = e.code();
        if (detail) *detail = e.what();
    }
    if (auto warning = r.rootfs_warning(); !warning.empty()) result.warnings.push_back(warning);
    return result;
}

} // namespace cz::container
