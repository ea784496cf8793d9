// Out-of-line definitions for cz/vsock/device.hpp.
#pragma once

#include <cz/vsock/device.hpp>

#include <array>

namespace cz::vsock {

CZ_DECL bool device::process_tx() {
    bool used = false;
    tx_work_left_ = false;
    for (std::uint32_t budget = tx_.size();; --budget) {
        if (budget == 0) {
            tx_work_left_ = tx_.has_available();
            break;
        }
        std::error_code ec;
        if (!tx_.pop(chain_, ec)) {
            if (ec) {
                ++stats_.bad_chains;
                stats_.last_error = ec;
                break;
            }
            if (!tx_.enable_notification()) break;
            continue;
        }
        tx_.disable_notification();
        used = true;
        ++stats_.tx_chains;
        if (ec) {
            ++stats_.bad_chains;
            stats_.last_error = ec;
        } else if (!chain_.writable.empty() || chain_.readable_len < packet_header::wire_size) {
            ++stats_.bad_packets;
            stats_.last_error = make_error_code(
                chain_.writable.empty() ? errc::malformed_packet : errc::bad_descriptor_direction);
        } else {
            std::array<std::byte, packet_header::wire_size> raw;
            chain_.read(0, raw);
            muxer_.on_guest_packet(packet_header::from_bytes(raw), chain_,
                                   packet_header::wire_size);
        }
        tx_.push_used(chain_.head, 0);
    }
    return used && tx_.needs_notification();
}

CZ_DECL bool device::process_rx() {
    bool used = false;
    rx_work_left_ = false;
    for (std::uint32_t budget = rx_.size(); muxer_.has_rx(); --budget) {
        if (budget == 0) {
            rx_work_left_ = rx_.has_available(); // and has_rx(), or the loop would have ended
            break;
        }
        std::error_code ec;
        if (!rx_.pop(chain_, ec)) {
            if (ec) {
                ++stats_.bad_chains;
                stats_.last_error = ec;
                break;
            }
            // No buffer: wait for the guest's kick, unless one arrived meanwhile.
            if (!rx_.enable_notification()) break;
            continue;
        }
        used = true;
        ++stats_.rx_chains;
        std::uint32_t written = 0;
        if (ec) {
            ++stats_.bad_chains;
            stats_.last_error = ec;
        } else if (!chain_.readable.empty() || chain_.writable_len < packet_header::wire_size) {
            ++stats_.bad_packets;
            stats_.last_error = make_error_code(errc::bad_descriptor_direction);
        } else {
            written = static_cast<std::uint32_t>(muxer_.fill_rx(chain_));
        }
        rx_.push_used(chain_.head, written);
    }
    return used && rx_.needs_notification();
}

} // namespace cz::vsock
