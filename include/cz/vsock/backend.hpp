// cz/vsock/backend.hpp — one VM's vsock device served by cz: vhost-user server, device, and the
// hybrid host end, all on one Asio io_context.
//
//   QEMU --vhost-user socket--> backend --(guest memory, rx/tx rings)--> guest driver
//                                  |
//                                  +-- <vm dir>/vsock.sock, <vm dir>/vsock.sock_<port> (host)
//
// QEMU connects to the vhost-user socket once, at startup (no retry), so `start()` must run
// before QEMU is spawned (cz/vm/qemu.hpp has the command-line arguments). When QEMU
// disconnects (exit, crash, kill) every connection is reset, guest memory is unmapped and the
// backend waits for the next frontend, so a VM restart with the same paths works.
//
// Single-threaded: every handler runs on the io_context given to the constructor.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/vsock/device.hpp>
#include <cz/vsock/error.hpp>
#include <cz/vsock/hybrid.hpp>
#include <cz/vsock/vhost_user.hpp>

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace cz::vsock {

struct backend_config {
    device_config device;
    // Where the backend listens for QEMU's vhost-user connection.
    std::filesystem::path vhost_user_socket;
    // The hybrid vsock socket (`<vm dir>/vsock.sock`); guest->host ports are `<this>_<port>`.
    std::filesystem::path uds_path;
};

class backend {
public:
    CZ_DECL backend(asio::io_context& io, backend_config cfg);
    CZ_DECL ~backend();
    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;

    // Listens on the vhost-user socket and the hybrid socket (stale files are replaced).
    CZ_DECL void start(std::error_code& ec);
    CZ_DECL void start();
    // Serves a frontend on an already-connected socket (a socketpair end given to QEMU as
    // `-chardev socket,fd=N`) instead of listening; the hybrid socket is opened as by start().
    CZ_DECL void serve(unique_fd connected, std::error_code& ec);
    // Closes everything; pending handlers finish with operation_aborted.
    CZ_DECL void stop();

    class device& device() noexcept { return device_; }
    // The io_context's executor: every member is used on it (post there to read stats()).
    asio::io_context::executor_type get_executor() noexcept { return io_.get_executor(); }
    const backend_config& config() const noexcept { return cfg_; }
    bool frontend_connected() const noexcept { return frontend_.is_open(); }
    std::size_t host_streams() const noexcept { return hybrid_.stream_count(); }

    struct statistics {
        std::uint64_t frontends = 0;         // vhost-user connections accepted
        std::uint64_t messages = 0;          // vhost-user messages handled
        std::uint64_t kicks = 0;             // guest notifications (kick eventfd reads)
        std::uint64_t interrupts = 0;        // used-buffer notifications (call eventfd writes)
        std::error_code last_frontend_error; // why the last frontend was dropped
    };
    const statistics& stats() const noexcept { return stats_; }

private:
    CZ_DECL void accept_frontend();
    CZ_DECL void attach(asio::local::stream_protocol::socket sock);
    CZ_DECL void read_frontend();
    CZ_DECL bool read_available(std::error_code& ec);
    CZ_DECL void drop_frontend(std::error_code why);
    CZ_DECL void sync_kick_watchers();
    CZ_DECL void watch_kick(std::uint32_t ring, std::uint64_t generation);
    CZ_DECL void service();
    CZ_DECL void schedule_service();
    CZ_DECL void drain_events();
    CZ_DECL void signal(std::uint32_t ring);
    CZ_DECL void flush_tx_signal();
    CZ_DECL void arm_ticker();

    asio::io_context& io_;
    backend_config cfg_;
    class device device_;
    vhost_user::session session_;
    hybrid_host_end hybrid_;
    asio::local::stream_protocol::acceptor acceptor_;
    asio::local::stream_protocol::socket frontend_;
    std::array<std::optional<asio::posix::stream_descriptor>, vhost_user::ring_count> kicks_;
    std::uint64_t watched_generation_ = ~0ull;
    asio::steady_timer ticker_;
    // TX completions the guest asked to hear about but was not told yet (see service()), how many
    // chains that covers, and the timer that tells it at the latest.
    static constexpr std::chrono::milliseconds tx_signal_delay{10};
    bool tx_signal_pending_ = false;
    std::uint64_t tx_signalled_chains_ = 0;
    asio::steady_timer tx_signal_timer_;
    bool tx_signal_timer_armed_ = false;
    // The message being received: header, payload and the fds that came with it.
    std::vector<std::byte> rbuf_;
    std::size_t rlen_ = 0;
    std::vector<unique_fd> rfds_;
    bool listening_ = false;
    bool service_posted_ = false;
    bool in_service_ = false;
    bool stopped_ = true;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    statistics stats_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/backend.ipp>
#endif
