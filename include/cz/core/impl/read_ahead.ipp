// Out-of-line definitions for cz/core/read_ahead.hpp.
//
// The ring: `slots` buffers used in order. The producer fills slot `head % n` with
// inner.read_some calls and publishes it (length, then whether the end or an error follows)
// under the mutex; the consumer drains slot `tail % n` and hands it back. head - tail is the
// number of published, not yet drained slots, never more than n. One condition variable per
// direction.
#pragma once

#include <cz/core/read_ahead.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace cz {

struct read_ahead_source::state {
    struct slot {
        std::unique_ptr<std::byte[]> data;
        std::size_t size = 0;
        bool last = false; // end of stream (size 0) or error (ec set) after `size` bytes
        std::error_code ec;
    };

    source_ref inner;
    std::size_t buffer_size;
    std::vector<slot> slots;

    std::mutex mu;
    std::condition_variable filled;   // producer -> consumer
    std::condition_variable freed;    // consumer -> producer
    std::uint64_t head = 0, tail = 0; // slots published / drained
    std::atomic<bool> stop{false};    // the consumer is gone (set under mu, for the waits)

    // Consumer side only.
    std::thread producer;
    std::size_t pos = 0; // read position in slot tail % n
    bool done = false;   // the last slot has been drained
    std::error_code final_ec;
    std::uint64_t delivered = 0;

    state(source_ref src, options opt)
        : inner(src), buffer_size(std::max<std::size_t>(opt.buffer_size, 1)),
          slots(std::max<std::size_t>(opt.buffers, 2)) {}

    ~state() {
        if (producer.joinable()) {
            {
                std::lock_guard lock(mu);
                stop = true;
            }
            freed.notify_one();
            producer.join();
        }
    }

    void produce() noexcept {
        for (;;) {
            slot* s = nullptr;
            {
                std::unique_lock lock(mu);
                freed.wait(lock, [&] { return stop || head - tail < slots.size(); });
                if (stop) return;
                s = &slots[head % slots.size()];
            }
            // The slot is the producer's alone until it is published. It is filled to the
            // brim (or to the end or an error) first: a decoder returns a few hundred KiB per
            // read, and slots that hold whole buffers let each thread run longer between waits.
            s->size = 0;
            s->last = false;
            s->ec.clear();
            try {
                if (!s->data) s->data = std::make_unique_for_overwrite<std::byte[]>(buffer_size);
                while (s->size < buffer_size && !stop.load(std::memory_order_relaxed)) {
                    auto n =
                        inner.read_some({s->data.get() + s->size, buffer_size - s->size}, s->ec);
                    s->size += s->ec ? 0 : n; // a failed read_some returns 0; never trust more
                    if (s->ec || n == 0) {
                        s->last = true;
                        break;
                    }
                }
            } catch (const std::bad_alloc&) {
                s->ec = std::make_error_code(std::errc::not_enough_memory);
                s->last = true;
            } catch (...) {
                s->ec = std::make_error_code(std::errc::io_error);
                s->last = true;
            }
            {
                std::lock_guard lock(mu);
                ++head;
            }
            filled.notify_one();
            if (s->last) return;
        }
    }

    std::size_t read(mutable_bytes buf, std::error_code& ec) {
        for (;;) {
            if (done) {
                ec = final_ec;
                return 0;
            }
            if (!producer.joinable()) {
                try {
                    producer = std::thread([this] { produce(); });
                } catch (const std::system_error& e) { // no thread to be had: say so, once
                    done = true;
                    final_ec = e.code();
                    continue;
                }
            }
            slot* s = nullptr;
            {
                std::unique_lock lock(mu);
                filled.wait(lock, [&] { return head > tail; });
                s = &slots[tail % slots.size()];
            }
            if (pos < s->size) {
                std::size_t n = std::min(buf.size(), s->size - pos);
                // SAFETY: pos + n <= s->size <= buffer_size, the slot's allocation.
                std::memcpy(buf.data(), s->data.get() + pos, n);
                pos += n;
                delivered += n;
                if (pos == s->size && !s->last) release();
                return n;
            }
            if (s->last) {
                done = true;
                final_ec = s->ec;
                continue;
            }
            release(); // an empty slot that is not the last: cannot come from read_some
        }
    }

    void release() {
        pos = 0;
        {
            std::lock_guard lock(mu);
            ++tail;
        }
        freed.notify_one();
    }
};

CZ_DECL read_ahead_source::read_ahead_source(source_ref inner, options opt)
    : s_(std::make_unique<state>(inner, opt)) {}
CZ_DECL read_ahead_source::~read_ahead_source() = default;

CZ_DECL std::size_t read_ahead_source::read_some(mutable_bytes buf, std::error_code& ec) {
    ec.clear();
    if (buf.empty()) return 0;
    return s_->read(buf, ec);
}

CZ_DECL std::uint64_t read_ahead_source::bytes_read() const noexcept {
    return s_->delivered;
}

} // namespace cz
