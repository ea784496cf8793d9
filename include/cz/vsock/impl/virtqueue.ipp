// Out-of-line definitions for cz/vsock/virtqueue.hpp.
#pragma once

#include <cz/vsock/virtqueue.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

namespace cz::vsock {
namespace detail {

// One descriptor, copied out of guest memory once (no double fetch).
struct descriptor {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t flags;
    std::uint16_t next;
};

inline descriptor load_descriptor(const std::byte* table, std::uint32_t index) noexcept {
    // SAFETY: callers check index < the table's entry count, and the table's 16 * count bytes
    // were translated (bounds-checked) as one range.
    const std::byte* p = table + std::size_t{index} * 16;
    return {load_le<std::uint64_t>(p), load_le<std::uint32_t>(p + 8),
            load_le<std::uint16_t>(p + 12), load_le<std::uint16_t>(p + 14)};
}

// Atomic accesses to the free-running u16/u32 ring fields, which the guest reads and writes
// concurrently. The pointers are aligned: configure() checks the ring alignment.
inline std::uint16_t load_u16(const std::byte* p, std::memory_order mo) noexcept {
    // SAFETY: p points into a ring part translated as a whole and aligned to at least 2.
    return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(const_cast<std::byte*>(p)))
        .load(mo);
}
inline void store_u16(std::byte* p, std::uint16_t v, std::memory_order mo) noexcept {
    // SAFETY: as load_u16.
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).store(v, mo);
}

} // namespace detail

CZ_DECL std::size_t descriptor_chain::read(std::uint64_t offset, mutable_bytes out) const noexcept {
    std::size_t done = 0;
    for (const auto& s : readable) {
        if (done == out.size()) break;
        if (offset >= s.len) {
            offset -= s.len;
            continue;
        }
        std::size_t n = std::min<std::size_t>(s.len - offset, out.size() - done);
        // SAFETY: offset < s.len and n <= s.len - offset; s.data was bounds-checked for s.len.
        std::memcpy(out.data() + done, s.data + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

CZ_DECL std::size_t descriptor_chain::write(std::uint64_t offset, bytes_view in) const noexcept {
    std::size_t done = 0;
    for (const auto& s : writable) {
        if (done == in.size()) break;
        if (offset >= s.len) {
            offset -= s.len;
            continue;
        }
        std::size_t n = std::min<std::size_t>(s.len - offset, in.size() - done);
        // SAFETY: as read(): offset < s.len, n <= s.len - offset, s.data checked for s.len.
        std::memcpy(s.data + offset, in.data() + done, n);
        done += n;
        offset = 0;
    }
    return done;
}

CZ_DECL void virtqueue::resolve(const guest_memory& mem, std::error_code& ec) {
    ec.clear();
    std::uint64_t q = size_;
    desc_ = mem.translate(desc_gpa_, 16 * q);
    // avail: flags, idx, ring[Q], used_event; used: flags, idx, ring[Q], avail_event.
    avail_ = mem.translate(avail_gpa_, 6 + 2 * q);
    used_ = mem.translate(used_gpa_, 6 + 8 * q);
    if (!desc_ || !avail_ || !used_) {
        ec = errc::invalid_ring;
        ready_ = false;
        return;
    }
    mem_ = &mem;
}

CZ_DECL void virtqueue::configure(const guest_memory& mem, std::uint16_t size,
                                  std::uint64_t desc_gpa, std::uint64_t avail_gpa,
                                  std::uint64_t used_gpa, std::error_code& ec) {
    bool indirect = indirect_, event_idx = event_idx_;
    reset();
    set_features(indirect, event_idx);
    // The three parts must not overlap: the device's writes to the used ring would otherwise move
    // avail.idx under it, and a queue that refills itself keeps the device busy forever.
    auto overlap = [](std::uint64_t a, std::uint64_t a_len, std::uint64_t b, std::uint64_t b_len) {
        return a < b + b_len && b < a + a_len;
    };
    std::uint64_t q = size;
    if (size == 0 || size > max_queue_size || (size & (size - 1)) != 0 || desc_gpa % 16 != 0 ||
        avail_gpa % 2 != 0 || used_gpa % 4 != 0 ||
        overlap(desc_gpa, 16 * q, avail_gpa, 6 + 2 * q) ||
        overlap(desc_gpa, 16 * q, used_gpa, 6 + 8 * q) ||
        overlap(avail_gpa, 6 + 2 * q, used_gpa, 6 + 8 * q)) {
        ec = errc::invalid_ring;
        return;
    }
    size_ = size;
    desc_gpa_ = desc_gpa;
    avail_gpa_ = avail_gpa;
    used_gpa_ = used_gpa;
    resolve(mem, ec);
    if (ec) return;
    // SAFETY: used_ + 2 is inside the used ring translated by resolve() (6 + 8Q bytes).
    next_used_ = detail::load_u16(used_ + 2, std::memory_order_acquire);
    ready_ = true;
}

CZ_DECL void virtqueue::remap(const guest_memory& mem, std::error_code& ec) {
    ec.clear();
    if (!ready_) return;
    resolve(mem, ec);
}

CZ_DECL std::uint16_t virtqueue::load_avail_idx() const noexcept {
    // SAFETY: avail_ + 2 is inside the available ring translated by resolve().
    return detail::load_u16(avail_ + 2, std::memory_order_acquire);
}

CZ_DECL bool virtqueue::has_available() const noexcept {
    return ready() && load_avail_idx() != next_avail_;
}

CZ_DECL bool virtqueue::pop(descriptor_chain& out, std::error_code& ec) {
    ec.clear();
    out.clear();
    if (!ready()) return false;
    std::uint16_t avail_idx = load_avail_idx();
    std::uint16_t pending = static_cast<std::uint16_t>(avail_idx - next_avail_);
    if (pending == 0) return false;
    if (pending > size_) {
        broken_ = true;
        ec = errc::avail_index_jump;
        return false;
    }
    // SAFETY: next_avail_ % size_ < size_, and ring[Q] is inside the translated available ring.
    std::uint16_t head =
        load_le<std::uint16_t>(avail_ + 4 + 2 * std::size_t(next_avail_ % size_));
    ++next_avail_;
    out.head = head;
    if (head >= size_) {
        ec = errc::bad_descriptor_index;
        return true;
    }

    const std::byte* table = desc_;
    std::uint32_t table_size = size_;
    std::uint32_t ttl = size_;
    std::uint32_t index = head;
    bool in_indirect = false;
    for (;;) {
        if (ttl == 0) {
            ec = errc::descriptor_loop;
            return true;
        }
        --ttl;
        auto d = detail::load_descriptor(table, index);
        if (d.flags & desc_f_indirect) {
            if (!indirect_ || in_indirect || (d.flags & desc_f_next) || d.len == 0 ||
                d.len % 16 != 0 || d.len / 16 > size_) {
                ec = errc::bad_indirect_descriptor;
                return true;
            }
            const std::byte* t = mem_->translate(d.addr, d.len);
            if (!t) {
                ec = errc::address_out_of_range;
                return true;
            }
            table = t;
            table_size = d.len / 16;
            ttl = table_size;
            index = 0;
            in_indirect = true;
            continue;
        }
        std::byte* data = mem_->translate(d.addr, d.len);
        if (!data) {
            ec = errc::address_out_of_range;
            return true;
        }
        if (d.len != 0) {
            if (d.flags & desc_f_write) {
                out.writable.push_back({data, d.len});
                out.writable_len += d.len;
            } else {
                if (!out.writable.empty()) {
                    ec = errc::bad_descriptor_direction;
                    return true;
                }
                out.readable.push_back({data, d.len});
                out.readable_len += d.len;
            }
        }
        if (!(d.flags & desc_f_next)) break;
        index = d.next;
        if (index >= table_size) {
            ec = errc::bad_descriptor_index;
            return true;
        }
    }
    return true;
}

CZ_DECL void virtqueue::push_used(std::uint16_t head, std::uint32_t written) noexcept {
    if (!ready()) return;
    // SAFETY: the slot index is below size_, and used.ring[Q] lies in the translated used ring.
    std::byte* slot = used_ + 4 + 8 * std::size_t(next_used_ % size_);
    store_le<std::uint32_t>(slot, head);
    store_le<std::uint32_t>(slot + 4, written);
    ++next_used_;
    // SAFETY: used_ + 2 is used.idx, inside the used ring. Release: the entry is visible first.
    detail::store_u16(used_ + 2, next_used_, std::memory_order_release);
}

CZ_DECL bool virtqueue::needs_notification() noexcept {
    if (!ready()) return false;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::uint16_t new_idx = next_used_;
    std::uint16_t old_idx = signalled_used_;
    bool valid = signalled_valid_;
    signalled_used_ = new_idx;
    signalled_valid_ = true;
    if (event_idx_) {
        if (!valid) return true;
        // SAFETY: used_event is avail.ring[Q], inside the available ring (6 + 2Q bytes).
        std::uint16_t event =
            detail::load_u16(avail_ + 4 + 2 * std::size_t(size_), std::memory_order_relaxed);
        // vring_need_event (virtio 1.2 §2.7.10).
        return static_cast<std::uint16_t>(new_idx - event - 1) <
               static_cast<std::uint16_t>(new_idx - old_idx);
    }
    // SAFETY: avail_ points at avail.flags.
    return !(detail::load_u16(avail_, std::memory_order_relaxed) & avail_f_no_interrupt);
}

CZ_DECL bool virtqueue::enable_notification() noexcept {
    if (!ready()) return false;
    if (event_idx_) {
        // SAFETY: avail_event is used.ring[Q], inside the used ring (6 + 8Q bytes).
        detail::store_u16(used_ + 4 + 8 * std::size_t(size_), next_avail_,
                          std::memory_order_relaxed);
    } else {
        // SAFETY: used_ points at used.flags.
        detail::store_u16(used_, 0, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return has_available();
}

CZ_DECL void virtqueue::disable_notification() noexcept {
    if (!ready() || event_idx_) return; // with EVENT_IDX, not moving avail_event is enough
    // SAFETY: used_ points at used.flags.
    detail::store_u16(used_, used_f_no_notify, std::memory_order_relaxed);
}

} // namespace cz::vsock
