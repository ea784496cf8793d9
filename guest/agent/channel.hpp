// guest/agent/channel.hpp — where cz-init meets the host: the byte stream the agent protocol runs
// over. The host chooses the transport on the kernel command line, `cz.agent=`:
//
//   vsock[:PORT]   listen on vsock port PORT (1024 by default), any CID; the host dials it
//                  through cz's vsock device
//   serial:NAME    the virtio-serial port named NAME (found through /sys/class/virtio-ports), which
//   QEMU connects to a
//                  Unix socket on the host; usable in VMs restored from a template
//
// Either way the result is one connected, non-blocking file descriptor per host connection.
#pragma once

#include <cz/core/unique_fd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace cz::guest {

struct channel_spec {
    enum class kind { vsock, serial };
    kind transport = kind::vsock;
    std::uint32_t port = 1024;
    std::string serial_name;
};

// Parses `cz.agent=`'s value; std::errc::invalid_argument for anything else.
channel_spec parse_channel_spec(std::string_view text, std::error_code& ec);

class channel {
public:
    explicit channel(channel_spec spec) : spec_(std::move(spec)) {}

    // The next host connection: accepts on the vsock listener (made on first use), or opens the
    // serial port (waiting up to `wait` for its device node, which appears as the driver probes)
    // and waits until the host is connected to it. Blocks until there is one; throws
    // std::system_error when the transport cannot work at all.
    unique_fd next_connection(std::chrono::milliseconds wait = std::chrono::seconds(10));

    const channel_spec& spec() const noexcept { return spec_; }

private:
    channel_spec spec_;
    unique_fd listener_;
};

} // namespace cz::guest
