// A synthetic guest for unit tests and the fuzz target: guest RAM in a heap buffer, split rings
// laid out in it the way a driver would, and helpers to post chains and read used entries.
// Everything is written with the raw layout of virtio 1.2 §2.7, independently of virtqueue.hpp.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/vsock/device.hpp>
#include <cz/vsock/guest_memory.hpp>
#include <cz/vsock/packet.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace cz::vsock::test {

struct seg {
    std::uint64_t gpa;
    std::uint32_t len;
    bool write;
};

class fake_guest {
public:
    static constexpr std::uint64_t ram_gpa = 0x100000;
    static constexpr std::uint64_t ram_uva = 0x7f0000000000;

    explicit fake_guest(std::size_t ram_size = 4 << 20) : ram_(ram_size + 4096) {
        // 4 KiB-align the start so ring alignments hold.
        auto p = reinterpret_cast<std::uintptr_t>(ram_.data());
        base_ = ram_.data() + ((4096 - p % 4096) % 4096);
        size_ = ram_size;
    }

    // Lays the guest out in memory someone else owns (a shared memfd mapping).
    fake_guest(std::byte* base, std::size_t size) : base_(base), size_(size) {}

    memory_region region() { return {ram_gpa, size_, ram_uva, base_}; }
    void attach(guest_memory& mem) {
        std::error_code ec;
        mem.add_region(region(), ec);
        if (ec) throw std::runtime_error("add_region");
    }

    std::byte* host(std::uint64_t gpa) { return base_ + (gpa - ram_gpa); }
    std::uint64_t alloc(std::uint64_t len, std::uint64_t align = 16) {
        next_ = (next_ + align - 1) / align * align;
        std::uint64_t g = ram_gpa + next_;
        next_ += len;
        if (next_ > size_) throw std::runtime_error("fake guest out of memory");
        return g;
    }
    void put(std::uint64_t gpa, bytes_view b) {
        if (!b.empty()) std::memcpy(host(gpa), b.data(), b.size());
    }

    struct ring {
        std::uint16_t size = 0;
        std::uint64_t desc = 0, avail = 0, used = 0;
        std::uint16_t avail_idx = 0;
        std::uint16_t used_seen = 0;
        std::uint16_t next_desc = 0;
    };
    ring make_ring(std::uint16_t size) {
        ring r;
        r.size = size;
        r.desc = alloc(16ull * size, 16);
        r.avail = alloc(6 + 2ull * size, 2);
        r.used = alloc(6 + 8ull * size, 4);
        return r;
    }

    void write_desc(ring& r, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                    std::uint16_t flags, std::uint16_t next) {
        write_desc_at(r.desc, i, addr, len, flags, next);
    }
    void write_desc_at(std::uint64_t table, std::uint16_t i, std::uint64_t addr,
                       std::uint32_t len, std::uint16_t flags, std::uint16_t next) {
        std::byte* p = host(table) + 16ull * i;
        store_le<std::uint64_t>(p, addr);
        store_le<std::uint32_t>(p + 8, len);
        store_le<std::uint16_t>(p + 12, flags);
        store_le<std::uint16_t>(p + 14, next);
    }
    void publish(ring& r, std::uint16_t head) {
        store_le<std::uint16_t>(host(r.avail) + 4 + 2ull * (r.avail_idx % r.size), head);
        std::atomic_thread_fence(std::memory_order_seq_cst); // entry before idx (real driver: wmb)
        ++r.avail_idx;
        store_le<std::uint16_t>(host(r.avail) + 2, r.avail_idx);
    }
    void set_avail_idx(ring& r, std::uint16_t idx) {
        r.avail_idx = idx;
        store_le<std::uint16_t>(host(r.avail) + 2, idx);
    }
    // Posts a chain using the next free descriptors (round-robin); returns its head.
    std::uint16_t add_chain(ring& r, const std::vector<seg>& segs) {
        std::uint16_t head = r.next_desc;
        for (std::size_t k = 0; k < segs.size(); ++k) {
            std::uint16_t i = static_cast<std::uint16_t>((head + k) % r.size);
            bool last = k + 1 == segs.size();
            std::uint16_t flags = static_cast<std::uint16_t>((segs[k].write ? 2 : 0) | (last ? 0 : 1));
            write_desc(r, i, segs[k].gpa, segs[k].len, flags,
                       static_cast<std::uint16_t>((i + 1) % r.size));
        }
        r.next_desc = static_cast<std::uint16_t>((head + segs.size()) % r.size);
        publish(r, head);
        return head;
    }
    std::uint16_t used_idx(const ring& r) { return load_le<std::uint16_t>(host(r.used) + 2); }
    struct used_elem {
        std::uint32_t id, len;
    };
    std::optional<used_elem> pop_used(ring& r) {
        if (used_idx(r) == r.used_seen) return std::nullopt;
        std::atomic_thread_fence(std::memory_order_seq_cst); // idx before entry (rmb)
        std::byte* e = host(r.used) + 4 + 8ull * (r.used_seen % r.size);
        ++r.used_seen;
        return used_elem{load_le<std::uint32_t>(e), load_le<std::uint32_t>(e + 4)};
    }

private:
    std::vector<std::byte> ram_;
    std::byte* base_;
    std::size_t size_;
    std::uint64_t next_ = 0;
};

// A guest vsock driver in miniature over a `device`: sends packets on TX, keeps RX buffers
// posted, collects RX packets.
class guest_driver {
public:
    static constexpr std::uint16_t qsize = 128;
    static constexpr std::uint32_t rx_buf = 4096;
    static constexpr std::uint32_t tx_slots = 8;

    explicit guest_driver(device& dev, std::uint64_t cid = 3) : dev_(dev), cid_(cid) {
        g_.attach(dev.memory());
        rx_ = g_.make_ring(qsize);
        tx_ = g_.make_ring(qsize);
        std::error_code ec;
        dev.rx_queue().configure(dev.memory(), qsize, rx_.desc, rx_.avail, rx_.used, ec);
        if (ec) throw std::runtime_error("rx configure");
        dev.tx_queue().configure(dev.memory(), qsize, tx_.desc, tx_.avail, tx_.used, ec);
        if (ec) throw std::runtime_error("tx configure");
        for (std::uint16_t i = 0; i < qsize; ++i) rx_slots_.push_back(g_.alloc(rx_buf));
        tx_area_ = g_.alloc(tx_slots * (44ull + 65536 + 64));
        refill();
    }

    fake_guest& guest() { return g_; }
    fake_guest::ring& rx_ring() { return rx_; }
    fake_guest::ring& tx_ring() { return tx_; }

    packet_header hdr(op o, std::uint32_t src_port, std::uint32_t dst_port) const {
        packet_header h;
        h.src_cid(cid_).dst_cid(2).src_port(src_port).dst_port(dst_port).type(type_stream).op(o);
        h.buf_alloc(buf_alloc).fwd_cnt(fwd_cnt);
        return h;
    }
    // Sends one packet (header + payload in one descriptor, or split when `split`).
    void send(const packet_header& h, bytes_view payload = {}, bool split = false) {
        std::uint64_t slot = tx_area_ + (tx_slot_++ % tx_slots) * (44ull + 65536 + 64);
        g_.put(slot, h.bytes());
        g_.put(slot + 44, payload);
        if (split)
            g_.add_chain(tx_, {{slot, 44, false},
                               {slot + 44, static_cast<std::uint32_t>(payload.size()), false}});
        else
            g_.add_chain(tx_, {{slot, static_cast<std::uint32_t>(44 + payload.size()), false}});
        dev_.process_tx();
        while (g_.pop_used(tx_)) {
        }
    }
    struct packet {
        packet_header h;
        byte_buffer payload;
    };
    // Runs the device's RX side and returns the packets it delivered.
    std::vector<packet> receive() {
        dev_.process_rx();
        std::vector<packet> out;
        while (auto u = g_.pop_used(rx_)) {
            std::uint64_t gpa = slot_of_head_.at(u->id);
            if (u->len >= 44) {
                packet p;
                p.h = packet_header::from_bytes({g_.host(gpa), 44});
                std::byte* d = g_.host(gpa) + 44;
                p.payload.assign(d, d + (u->len - 44));
                out.push_back(std::move(p));
            }
            free_.push_back(gpa);
        }
        refill();
        return out;
    }
    void refill() {
        while (static_cast<std::uint16_t>(posted_total_ - rx_.used_seen) < qsize) {
            std::uint64_t gpa;
            if (!free_.empty()) {
                gpa = free_.back();
                free_.pop_back();
            } else if (next_slot_ < rx_slots_.size()) {
                gpa = rx_slots_[next_slot_++];
            } else {
                break;
            }
            std::uint16_t head = g_.add_chain(rx_, {{gpa, rx_buf, true}});
            slot_of_head_[head] = gpa;
            ++posted_total_;
        }
    }

    std::uint32_t buf_alloc = 256 * 1024;
    std::uint32_t fwd_cnt = 0;

private:
    device& dev_;
    std::uint64_t cid_;
    fake_guest g_;
    fake_guest::ring rx_, tx_;
    std::vector<std::uint64_t> rx_slots_;
    std::vector<std::uint64_t> free_;
    std::size_t next_slot_ = 0;
    std::uint16_t posted_total_ = 0;
    std::uint64_t tx_area_ = 0;
    std::uint64_t tx_slot_ = 0;
    std::unordered_map<std::uint32_t, std::uint64_t> slot_of_head_;
};

} // namespace cz::vsock::test
