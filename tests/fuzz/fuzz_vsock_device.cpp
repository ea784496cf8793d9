// Fuzzes the vsock device with arbitrary guest memory: the input becomes the guest's RAM (rings,
// descriptors, packet headers and payloads all come from it) plus a script of device and host
// actions. The device must never crash, read or write outside guest memory (ASan), loop forever,
// or let its buffering grow past the configured bounds.
#include <cz/vsock/device.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr std::uint64_t ram_gpa = 0x10000;
constexpr std::size_t ram_size = 64 * 1024;
constexpr std::uint16_t qsize = 16;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size < 8) return 0;
    // The first 8 bytes configure the run; the rest fills guest RAM (repeated to fill it).
    const unsigned char* cfg = data;
    data += 8;
    size -= 8;
    std::vector<std::byte> ram(ram_size + 4096);
    std::byte* base = ram.data() + (4096 - reinterpret_cast<std::uintptr_t>(ram.data()) % 4096) % 4096;
    for (std::size_t i = 0; i < ram_size && size > 0; ++i) base[i] = std::byte(data[i % size]);

    cz::vsock::device_config dc;
    dc.max_connections = 8;
    dc.max_pending_resets = 4;
    dc.buf_alloc = 4096;
    dc.rx_buffer_limit = 4096;
    cz::vsock::device dev(dc);
    std::error_code ec;
    dev.memory().add_region({ram_gpa, ram_size, 0x7f0000000000, base}, ec);
    if (ec) __builtin_trap();
    // Ring placement: fixed (valid) or chosen by the input (often invalid, then rejected).
    auto place = [&](unsigned sel, std::uint64_t fixed) -> std::uint64_t {
        return (sel & 0x80) ? ram_gpa + (std::uint64_t(sel) * 997) % (ram_size + 512) : fixed;
    };
    std::uint64_t rx_desc = place(cfg[0], ram_gpa), rx_avail = place(cfg[1], ram_gpa + 0x100);
    std::uint64_t rx_used = place(cfg[2], ram_gpa + 0x200), tx_desc = ram_gpa + 0x400;
    std::uint64_t tx_avail = ram_gpa + 0x500, tx_used = ram_gpa + 0x600;
    bool indirect = cfg[3] & 1, event_idx = cfg[3] & 2;
    dev.rx_queue().set_features(indirect, event_idx);
    dev.tx_queue().set_features(indirect, event_idx);
    dev.rx_queue().configure(dev.memory(), qsize, rx_desc, rx_avail, rx_used, ec);
    dev.tx_queue().configure(dev.memory(), qsize, tx_desc, tx_avail, tx_used, ec);

    auto& mux = dev.connections();
    std::vector<cz::vsock::connection_id> ids;
    unsigned char script[4] = {cfg[4], cfg[5], cfg[6], cfg[7]};
    auto now = cz::vsock::muxer::clock::now();
    for (int round = 0; round < 16; ++round) {
        dev.process_tx();
        cz::vsock::device_event ev;
        while (mux.poll_event(ev)) {
            if (ev.kind == cz::vsock::event_kind::guest_connect) {
                if (script[round % 4] & 1) mux.accept(ev.id);
                else mux.refuse(ev.id);
            }
            if (ev.kind != cz::vsock::event_kind::closed) ids.push_back(ev.id);
        }
        unsigned s = script[round % 4] >> 1;
        if (s & 1) mux.connect(1000 + round, ec);
        for (auto id : ids) {
            if (s & 2) mux.send(id, {base, 3000});
            if (s & 4) mux.consume_tx(id, mux.pending_tx(id).size());
            if ((s & 8) && round == 7) mux.close_send(id);
            if ((s & 16) && round == 11) mux.reset(id);
        }
        now += std::chrono::milliseconds(700);
        mux.tick(now);
        dev.process_rx();
        // The guest "posts" more chains: bump both avail indices by what the input says.
        std::byte* tx_idx = dev.memory().translate(tx_avail + 2, 2);
        if (tx_idx) cz::store_le<std::uint16_t>(tx_idx, cz::load_le<std::uint16_t>(tx_idx) + (script[round % 4] & 3));
        if (mux.connection_count() > dc.max_connections) __builtin_trap();
        if (mux.pending_resets() > dc.max_pending_resets + dc.max_connections) __builtin_trap();
        if (ids.size() > 4096) ids.erase(ids.begin(), ids.begin() + 2048);
    }
    mux.reset_all({});
    return 0;
}
