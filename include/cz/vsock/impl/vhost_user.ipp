// Out-of-line definitions for cz/vsock/vhost_user.hpp.
#pragma once

#include <cz/vsock/vhost_user.hpp>

#include <algorithm>

namespace cz::vsock::vhost_user {
namespace detail {

inline byte_buffer make_reply(request r, bytes_view payload) {
    message_header h(r, flag_version | flag_reply, static_cast<std::uint32_t>(payload.size()));
    // Sized once and filled in place (GCC 12's -Warray-bounds misfires on vector::insert here).
    byte_buffer out(message_header::wire_size + payload.size());
    std::copy(h.bytes().begin(), h.bytes().end(), out.begin());
    std::copy(payload.begin(), payload.end(), out.begin() + message_header::wire_size);
    return out;
}

inline byte_buffer reply_u64(request r, std::uint64_t v) {
    std::array<std::byte, 8> b;
    store_le<std::uint64_t>(b.data(), v);
    return make_reply(r, b);
}

} // namespace detail

CZ_DECL message_header message_header::parse(bytes_view b, std::error_code& ec) noexcept {
    ec.clear();
    message_header h;
    // SAFETY: the caller passes at least wire_size bytes.
    std::copy_n(b.begin(), wire_size, h.raw_.begin());
    if ((h.flags() & 0x3) != flag_version || h.size() > max_payload) ec = errc::malformed_message;
    return h;
}

CZ_DECL virtqueue& session::queue(std::uint32_t i) noexcept {
    return i == 0 ? dev_.rx_queue() : dev_.tx_queue();
}

CZ_DECL void session::try_start(std::uint32_t i, std::error_code& ec) {
    ec.clear();
    ring& r = rings_[i];
    bool enabled = r.enabled || !(features_ & f_protocol_features);
    if (r.running || !r.kick || !r.have_addr || !enabled || r.num == 0) return;
    const guest_memory& mem = dev_.memory();
    std::error_code e1, e2, e3;
    std::uint64_t desc = mem.uva_to_gpa(r.desc_uva, 16ull * r.num, e1);
    std::uint64_t avail = mem.uva_to_gpa(r.avail_uva, 6ull + 2ull * r.num, e2);
    std::uint64_t used = mem.uva_to_gpa(r.used_uva, 6ull + 8ull * r.num, e3);
    if (e1 || e2 || e3) {
        ec = errc::invalid_ring;
        return;
    }
    virtqueue& q = queue(i);
    q.set_features((features_ & f_indirect_desc) != 0, (features_ & f_event_idx) != 0);
    q.configure(mem, r.num, desc, avail, used, ec);
    if (ec) return;
    q.set_next_avail(r.base);
    r.running = true;
    ++generation_;
}

CZ_DECL void session::halt(std::uint32_t i) {
    ring& r = rings_[i];
    if (!r.running) return;
    // A ring stops (GET_VRING_BASE, SET_VRING_ENABLE 0, a new kick fd, RESET_*) only when the
    // guest driver is being reset — reboot, shutdown, kexec — and its sockets are gone with it,
    // so every connection is.
    dev_.connections().reset_all(make_error_code(errc::connection_reset));
    r.base = queue(i).next_avail();
    r.running = false;
    queue(i).reset();
    ++generation_;
}

CZ_DECL void session::stop(std::uint32_t i) {
    ring& r = rings_[i];
    halt(i);
    queue(i).reset();
    r.kick.reset();
    ++generation_;
}

CZ_DECL void session::disconnect() {
    for (std::uint32_t i = 0; i < ring_count; ++i) {
        stop(i);
        rings_[i] = ring{};
    }
    dev_.connections().reset_all(make_error_code(errc::connection_reset));
    dev_.memory().clear();
    features_ = protocol_features_ = 0;
    features_set_ = false;
}

CZ_DECL byte_buffer session::handle(const message_header& hdr, bytes_view payload,
                                    std::vector<unique_fd>& fds, std::error_code& ec) {
    ec.clear();
    auto fail = [&](errc e) {
        ec = e;
        return byte_buffer{};
    };
    if (payload.size() != hdr.size()) return fail(errc::malformed_message);
    auto u64 = [&](std::uint64_t& v) {
        if (payload.size() != 8) return false;
        // SAFETY: payload.size() == 8 checked just above.
        v = load_le<std::uint64_t>(payload.data());
        return true;
    };
    // Vring state { u32 index; u32 num }.
    auto state = [&](std::uint32_t& index, std::uint32_t& num) {
        if (payload.size() != 8) return false;
        // SAFETY: payload.size() == 8 checked just above.
        index = load_le<std::uint32_t>(payload.data());
        num = load_le<std::uint32_t>(payload.data() + 4);
        return index < ring_count;
    };
    const request req = hdr.req();
    // Only the messages below carry fds; anything else with fds is malformed (CVE-2022-0669).
    const bool takes_fds = req == request::set_mem_table || req == request::set_vring_kick ||
                           req == request::set_vring_call || req == request::set_vring_err;
    if (!takes_fds && !fds.empty()) return fail(errc::malformed_message);

    switch (req) {
    case request::get_features:
        if (!payload.empty()) return fail(errc::malformed_message);
        return detail::reply_u64(req, offered_features);
    case request::set_features: {
        std::uint64_t v;
        if (!u64(v)) return fail(errc::malformed_message);
        if (v & ~offered_features) return fail(errc::protocol_error);
        features_ = v;
        features_set_ = true;
        return {};
    }
    case request::get_protocol_features:
        if (!payload.empty()) return fail(errc::malformed_message);
        return detail::reply_u64(req, offered_protocol_features);
    case request::set_protocol_features: {
        std::uint64_t v;
        if (!u64(v)) return fail(errc::malformed_message);
        if (v & ~offered_protocol_features) return fail(errc::protocol_error);
        protocol_features_ = v;
        return {};
    }
    case request::set_owner:
        if (!payload.empty()) return fail(errc::malformed_message);
        return {};
    case request::reset_owner:
    case request::reset_device:
        for (std::uint32_t i = 0; i < ring_count; ++i) stop(i);
        return {};
    case request::get_queue_num:
        return detail::reply_u64(req, ring_count);
    case request::set_mem_table: {
        if (payload.size() < 8) return fail(errc::malformed_message);
        // { u32 nregions; u32 padding; { u64 gpa; u64 size; u64 uaddr; u64 mmap_offset }[n] }
        std::uint32_t n = load_le<std::uint32_t>(payload.data());
        if (n == 0 || n > max_memory_regions || payload.size() != 8 + 32ull * n ||
            fds.size() != n)
            return fail(errc::malformed_message);
        guest_memory mem;
        for (std::uint32_t i = 0; i < n; ++i) {
            // SAFETY: payload.size() == 8 + 32n, so region i's 32 bytes are inside it.
            const std::byte* p = payload.data() + 8 + 32 * std::size_t{i};
            mem.map_region(fds[i].get(), load_le<std::uint64_t>(p), load_le<std::uint64_t>(p + 8),
                           load_le<std::uint64_t>(p + 16), load_le<std::uint64_t>(p + 24), ec);
            if (ec) return {};
        }
        fds.clear(); // the mappings keep the memory; the fds are not needed
        dev_.memory() = std::move(mem);
        for (std::uint32_t i = 0; i < ring_count; ++i) {
            if (!rings_[i].running) continue;
            std::error_code rec;
            // Re-resolve through the new table from the UVAs QEMU gave.
            rings_[i].base = queue(i).next_avail();
            rings_[i].running = false;
            queue(i).reset();
            try_start(i, rec);
        }
        return {};
    }
    case request::set_vring_num: {
        std::uint32_t i, num;
        if (!state(i, num)) return fail(errc::malformed_message);
        if (num == 0 || num > max_queue_size || (num & (num - 1)) != 0)
            return fail(errc::invalid_ring);
        rings_[i].num = static_cast<std::uint16_t>(num);
        return {};
    }
    case request::set_vring_base: {
        std::uint32_t i, num;
        if (!state(i, num)) return fail(errc::malformed_message);
        if (num > 0xffff) return fail(errc::invalid_ring);
        rings_[i].base = static_cast<std::uint16_t>(num);
        return {};
    }
    case request::set_vring_addr: {
        // { u32 index; u32 flags; u64 desc; u64 used; u64 avail; u64 log } — used before avail.
        if (payload.size() != 40) return fail(errc::malformed_message);
        std::uint32_t i = load_le<std::uint32_t>(payload.data());
        if (i >= ring_count) return fail(errc::protocol_error);
        ring& r = rings_[i];
        // SAFETY: payload.size() == 40 checked above; the fields end at offset 32.
        r.desc_uva = load_le<std::uint64_t>(payload.data() + 8);
        r.used_uva = load_le<std::uint64_t>(payload.data() + 16);
        r.avail_uva = load_le<std::uint64_t>(payload.data() + 24);
        r.have_addr = true;
        try_start(i, ec);
        return {};
    }
    case request::get_vring_base: {
        std::uint32_t i, num;
        if (!state(i, num)) return fail(errc::malformed_message);
        stop(i);
        std::array<std::byte, 8> b;
        store_le<std::uint32_t>(b.data(), i);
        store_le<std::uint32_t>(b.data() + 4, rings_[i].base);
        return detail::make_reply(req, b);
    }
    case request::set_vring_kick:
    case request::set_vring_call:
    case request::set_vring_err: {
        std::uint64_t v;
        if (!u64(v)) return fail(errc::malformed_message);
        std::uint32_t i = static_cast<std::uint32_t>(v & 0xff);
        bool no_fd = (v & 0x100) != 0;
        if (i >= ring_count || (v >> 9) != 0) return fail(errc::protocol_error);
        if (fds.size() != (no_fd ? 0u : 1u)) return fail(errc::malformed_message);
        unique_fd fd = no_fd ? unique_fd{} : std::move(fds[0]);
        fds.clear();
        ring& r = rings_[i];
        if (req == request::set_vring_call) {
            r.call = std::move(fd);
        } else if (req == request::set_vring_err) {
            r.err = std::move(fd);
        } else {
            // A kick fd (re)starts the ring; without one (polling mode) it is not served.
            halt(i);
            r.kick = std::move(fd);
            ++generation_;
            try_start(i, ec);
        }
        return {};
    }
    case request::set_vring_enable: {
        std::uint32_t i, num;
        if (!state(i, num)) return fail(errc::malformed_message);
        if (!(features_ & f_protocol_features)) return fail(errc::protocol_error);
        rings_[i].enabled = num != 0;
        if (num == 0) halt(i);
        try_start(i, ec);
        return {};
    }
    case request::get_config: {
        // { u32 offset; u32 size; u32 flags; u8 region[size] }; reply with the same header.
        if (payload.size() < 12) return fail(errc::malformed_message);
        std::uint32_t offset = load_le<std::uint32_t>(payload.data());
        std::uint32_t size = load_le<std::uint32_t>(payload.data() + 4);
        if (size > max_config_size || payload.size() != 12ull + size || offset > max_config_size)
            return fail(errc::malformed_message);
        // Config space: le64 guest_cid (virtio 1.2 §5.10.4); bytes past it read as zero.
        std::array<std::byte, 8> cfg;
        store_le<std::uint64_t>(cfg.data(), dev_.guest_cid());
        byte_buffer body(payload.begin(), payload.begin() + 12);
        for (std::uint32_t k = 0; k < size; ++k) {
            std::uint64_t at = std::uint64_t{offset} + k;
            body.push_back(at < cfg.size() ? cfg[at] : std::byte{0});
        }
        return detail::make_reply(req, body);
    }
    case request::set_config:
        // guest_cid is read-only for the driver; the write is dropped.
        return {};
    }
    return fail(errc::unsupported_message);
}

} // namespace cz::vsock::vhost_user
