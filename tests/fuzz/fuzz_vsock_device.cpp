// Fuzzes the vsock device twice on every input.
//
// 1. Through the rings: the input becomes the guest's RAM (rings, descriptors, packet headers and
//    payloads all come from it) plus a script of device and host actions. The device must never
//    crash, read or write outside guest memory (ASan), loop forever, or let its buffering grow
//    past the configured bounds (connections, queued resets, per-connection buffers).
// 2. As a modelled guest: the input is a script of guest packets (well-behaved or not) and host
//    calls on the muxer, and this harness keeps its own account of every connection — what each
//    side sent, consumed and advertised. It traps when the device
//    - sends the guest more RW bytes than the guest's credit allows (virtio 1.2 §5.10.6.3:
//      buf_alloc - (bytes sent - fwd_cnt), from the guest's latest packet),
//    - buffers more than it advertised (buf_alloc guest->host, rx_buffer_limit host->guest), or
//      reports buffer space (send_space, pending_tx) that disagrees with what it holds,
//    - resets a guest that kept within the credit the device advertised,
//    - delivers other bytes, or in another order, than were sent, either way,
//    - advertises a fwd_cnt other than the bytes the host consumed, sends data after its
//      SHUTDOWN(SEND) or after the guest's SHUTDOWN(RCV), asks for credit while it has some,
//    - or holds a connection the events never told the host about.
#include <cz/vsock/device.hpp>
#include <cz/vsock/protocol.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

namespace {

constexpr std::uint64_t ram_gpa = 0x10000;
constexpr std::size_t ram_size = 64 * 1024;
constexpr std::uint16_t qsize = 16;

#define CZ_FUZZ_ASSERT(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

// --- 1. through the rings -------------------------------------------------------------------

void fuzz_rings(const unsigned char* data, std::size_t size) {
    if (size < 8) return;
    // The first 8 bytes configure the run; the rest fills guest RAM (repeated to fill it).
    const unsigned char* cfg = data;
    data += 8;
    size -= 8;
    std::vector<std::byte> ram(ram_size + 4096);
    std::byte* base =
        ram.data() + (4096 - reinterpret_cast<std::uintptr_t>(ram.data()) % 4096) % 4096;
    for (std::size_t i = 0; i < ram_size && size > 0; ++i)
        base[i] = std::byte(data[i % size]);

    cz::vsock::device_config dc;
    dc.max_connections = 8;
    dc.max_pending_resets = 4;
    dc.buf_alloc = 4096;
    dc.rx_buffer_limit = 4096;
    cz::vsock::device dev(dc);
    std::error_code ec;
    dev.memory().add_region({ram_gpa, ram_size, 0x7f0000000000, base}, ec);
    CZ_FUZZ_ASSERT(!ec);
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
                if (script[round % 4] & 1)
                    mux.accept(ev.id);
                else
                    mux.refuse(ev.id);
            }
            if (ev.kind != cz::vsock::event_kind::closed) ids.push_back(ev.id);
        }
        unsigned s = script[round % 4] >> 1;
        if (s & 1) mux.connect(1000 + round, ec);
        for (auto id : ids) {
            if (s & 2) {
                // send() takes at most the space it reports, and never past rx_buffer_limit.
                std::size_t space = mux.send_space(id);
                CZ_FUZZ_ASSERT(space <= dc.rx_buffer_limit);
                CZ_FUZZ_ASSERT(mux.send(id, {base, 3000}) == std::min<std::size_t>(space, 3000));
            }
            // Guest->host bytes held for one connection stay within the buf_alloc it advertised.
            CZ_FUZZ_ASSERT(mux.pending_tx(id).size() <= dc.buf_alloc);
            if (s & 4) mux.consume_tx(id, mux.pending_tx(id).size());
            if ((s & 8) && round == 7) mux.close_send(id);
            if ((s & 16) && round == 11) mux.reset(id);
            // A live connection is never killed (killing forgets it at once), its half-closes
            // hold no more than they say, and a closed host side takes no bytes.
            if (const cz::vsock::connection* c = mux.lookup(id)) {
                CZ_FUZZ_ASSERT(c->state() != cz::vsock::connection_state::killed);
                CZ_FUZZ_ASSERT((c->peer_shutdown() & ~3u) == 0);
                if (c->host_send_closed()) CZ_FUZZ_ASSERT(mux.send_space(id) == 0);
                if (c->state() == cz::vsock::connection_state::peer_closed)
                    CZ_FUZZ_ASSERT(c->peer_shutdown() == 3u && c->has_deadline());
            }
        }
        now += std::chrono::milliseconds(700);
        mux.tick(now);
        dev.process_rx();
        // The guest "posts" more chains: bump both avail indices by what the input says.
        std::byte* tx_idx = dev.memory().translate(tx_avail + 2, 2);
        if (tx_idx)
            cz::store_le<std::uint16_t>(tx_idx, cz::load_le<std::uint16_t>(tx_idx) +
                                                    (script[round % 4] & 3));
        CZ_FUZZ_ASSERT(mux.connection_count() <= dc.max_connections);
        CZ_FUZZ_ASSERT(mux.pending_resets() <= dc.max_pending_resets + dc.max_connections);
        if (ids.size() > 4096) ids.erase(ids.begin(), ids.begin() + 2048);
    }
    mux.reset_all({});
}

// --- 2. a modelled guest --------------------------------------------------------------------

using cz::vsock::connection_id;
using cz::vsock::op;
using cz::vsock::packet_header;
constexpr std::uint64_t guest_cid = 3;
constexpr std::size_t hdr = packet_header::wire_size;

// The input, read as a script; reads past its end give zeros and end the script.
struct script_reader {
    const unsigned char* p;
    std::size_t left;
    bool done() const { return left == 0; }
    std::uint8_t u8() {
        if (!left) return 0;
        --left;
        return *p++;
    }
    std::uint16_t u16() { return std::uint16_t(u8() | (u8() << 8)); }
    std::uint32_t u32() { return std::uint32_t(u16()) | (std::uint32_t(u16()) << 16); }
};

// One connection as the guest and the host see it, from what they sent and received.
struct model_conn {
    std::optional<connection_id> id; // known once an event or connect() names it
    bool host_initiated = false;
    std::uint32_t guest_port = 0;
    std::optional<std::uint32_t> host_port; // host-initiated: known from the device's REQUEST
    bool accepted = false;                  // guest-initiated: the host accepted
    bool response_seen = false;             // guest-initiated: the device's RESPONSE arrived
    bool response_sent = false;             // host-initiated: the guest answered
    // The guest's credit as the device last heard it.
    std::uint32_t adv_buf_alloc = 0, adv_fwd_cnt = 0;
    std::uint32_t guest_buf_alloc = 0; // what an honest guest advertises
    // The device's credit as the guest last heard it.
    std::uint32_t dev_buf_alloc = 0, dev_fwd_cnt = 0;
    std::uint32_t rx_total = 0;          // RW payload bytes the device sent the guest
    std::uint32_t guest_tx_total = 0;    // RW payload bytes the device took from the guest
    std::uint32_t host_consumed = 0;     // bytes the host consumed with consume_tx
    std::deque<std::byte> host_to_guest; // taken by send(), not yet in an RW packet
    std::deque<std::byte> guest_to_host; // taken from the guest, not yet consumed
    bool guest_shut_send = false, guest_shut_rcv = false;
    bool host_eof = false, device_shut_send = false;
};

class modelled_guest {
public:
    explicit modelled_guest(script_reader in) : in_(in), mux_(config()) {}

    static cz::vsock::device_config config() {
        cz::vsock::device_config dc;
        dc.guest_cid = guest_cid;
        dc.max_connections = 6;
        dc.max_pending_resets = 4;
        dc.buf_alloc = 8192;
        dc.rx_buffer_limit = 6000;
        dc.request_timeout = std::chrono::milliseconds(2000);
        dc.shutdown_timeout = std::chrono::milliseconds(2000);
        return dc;
    }

    void run() {
        for (int step = 0; step < 4000 && !in_.done(); ++step) {
            std::uint8_t what = in_.u8();
            switch (what % 16) {
            case 0:
                guest_request();
                break;
            case 1:
                host_connect();
                break;
            case 2:
                host_answer(what & 0x10);
                break;
            case 3:
                guest_response();
                break;
            case 4:
                guest_rw(what & 0x10);
                break;
            case 5:
                guest_credit(what & 0x10, op::credit_update);
                break;
            case 6:
                guest_credit(true, op::credit_request);
                break;
            case 7:
                guest_shutdown();
                break;
            case 8:
                guest_simple(op::rst);
                break;
            case 9:
                host_send();
                break;
            case 10:
                host_consume();
                break;
            case 11:
                host_call(what & 0x30);
                break;
            case 12:
            case 13:
                device_fill();
                break;
            case 14:
                tick();
                break;
            case 15:
                guest_raw();
                break;
            }
            check();
        }
        // Drain: everything the device has for the guest, as long as it keeps producing.
        for (int i = 0; i < 64 && mux_.has_rx(); ++i)
            fill_one(4096);
        check();
        mux_.reset_all(make_error_code(cz::vsock::errc::connection_reset));
        events();
        CZ_FUZZ_ASSERT(conns_.empty());
        CZ_FUZZ_ASSERT(mux_.connection_count() == 0);
    }

private:
    // --- bookkeeping ------------------------------------------------------------------------
    model_conn* by_id(connection_id id) {
        for (auto& c : conns_)
            if (c.id == id) return &c;
        return nullptr;
    }
    model_conn* by_tuple(std::uint32_t guest_port, std::uint32_t host_port) {
        for (auto& c : conns_)
            if (c.guest_port == guest_port && c.host_port == host_port) return &c;
        return nullptr;
    }
    // A live connection chosen by the input (nullptr when there is none).
    model_conn* pick() {
        if (conns_.empty()) return nullptr;
        return &conns_[in_.u8() % conns_.size()];
    }
    void forget(connection_id id) {
        conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                    [&](const model_conn& c) { return c.id == id; }),
                     conns_.end());
    }
    std::vector<std::byte> fresh_bytes(std::size_t n) {
        std::vector<std::byte> b(n);
        for (auto& x : b)
            x = std::byte(counter_++ * 131 >> 3);
        return b;
    }
    static std::uint32_t credit(std::uint32_t buf_alloc, std::uint32_t sent,
                                std::uint32_t fwd_cnt) {
        std::uint32_t in_flight = sent - fwd_cnt;
        return in_flight >= buf_alloc ? 0 : buf_alloc - in_flight;
    }
    // Whether an honest guest may send data on `c` now.
    static bool guest_may_send(const model_conn& c) {
        bool established = c.host_initiated ? c.response_sent : c.response_seen;
        return established && !c.guest_shut_send;
    }

    // Reads every pending event and keeps the model in step with it.
    void events(const packet_header* just_sent = nullptr) {
        cz::vsock::device_event ev;
        while (mux_.poll_event(ev)) {
            model_conn* c = by_id(ev.id);
            switch (ev.kind) {
            case cz::vsock::event_kind::guest_connect: {
                // Only the REQUEST just handed to the muxer opens a connection.
                CZ_FUZZ_ASSERT(just_sent && just_sent->op() == op::request && !c);
                CZ_FUZZ_ASSERT(ev.port == just_sent->dst_port());
                model_conn m;
                m.id = ev.id;
                m.guest_port = just_sent->src_port();
                m.host_port = just_sent->dst_port();
                m.adv_buf_alloc = just_sent->buf_alloc();
                m.adv_fwd_cnt = just_sent->fwd_cnt();
                m.guest_buf_alloc = just_sent->buf_alloc();
                conns_.push_back(std::move(m));
                pending_accept_.push_back(ev.id);
                break;
            }
            case cz::vsock::event_kind::connected:
                // The guest's RESPONSE to the device's REQUEST for a host connect(): now the
                // guest's tuple has a connection id.
                CZ_FUZZ_ASSERT(c && c->host_initiated && !c->host_port);
                CZ_FUZZ_ASSERT(just_sent && just_sent->op() == op::response);
                CZ_FUZZ_ASSERT(ev.port == just_sent->dst_port() &&
                               c->guest_port == just_sent->src_port());
                c->host_port = ev.port;
                c->response_sent = true;
                c->guest_buf_alloc = just_sent->buf_alloc();
                // What the device's REQUEST told the guest about its buffer.
                for (const auto& r : pending_requests_)
                    if (r.guest_port == c->guest_port && r.host_port == ev.port) {
                        c->dev_buf_alloc = r.buf_alloc;
                        c->dev_fwd_cnt = r.fwd_cnt;
                    }
                break;
            case cz::vsock::event_kind::tx_data:
                // (The bytes are checked in check(), once this packet is accounted for.)
                CZ_FUZZ_ASSERT(c);
                break;
            case cz::vsock::event_kind::peer_shutdown:
            case cz::vsock::event_kind::rx_space:
                CZ_FUZZ_ASSERT(c);
                break;
            case cz::vsock::event_kind::closed:
                CZ_FUZZ_ASSERT(c);
                // A clean close comes only once the host has every byte the guest sent.
                if (!ev.ec) CZ_FUZZ_ASSERT(c->guest_to_host.empty());
                forget(ev.id);
                break;
            }
        }
    }

    // The model's invariants, after every step.
    void check() {
        const auto dc = mux_.config();
        std::size_t buffered = 0;
        for (auto& c : conns_) {
            // Every connection the model holds is live in the muxer (closed events are complete).
            CZ_FUZZ_ASSERT(c.id && mux_.contains(*c.id));
            CZ_FUZZ_ASSERT(c.guest_to_host.size() <= dc.buf_alloc);
            CZ_FUZZ_ASSERT(c.host_to_guest.size() <= dc.rx_buffer_limit);
            bool sendable = !c.host_eof && !c.guest_shut_rcv;
            CZ_FUZZ_ASSERT(mux_.send_space(*c.id) ==
                           (sendable ? dc.rx_buffer_limit - c.host_to_guest.size() : 0));
            auto pending = mux_.pending_tx(*c.id);
            CZ_FUZZ_ASSERT(pending.size() <= c.guest_to_host.size());
            CZ_FUZZ_ASSERT(pending.empty() == c.guest_to_host.empty());
            buffered += c.guest_to_host.size() + c.host_to_guest.size();
        }
        // ... and it holds no other (so memory is what the model counts).
        CZ_FUZZ_ASSERT(mux_.connection_count() == conns_.size());
        CZ_FUZZ_ASSERT(conns_.size() <= dc.max_connections);
        CZ_FUZZ_ASSERT(buffered <=
                       dc.max_connections * (std::size_t{dc.buf_alloc} + dc.rx_buffer_limit));
        CZ_FUZZ_ASSERT(mux_.pending_resets() <= dc.max_pending_resets + dc.max_connections);
        CZ_FUZZ_ASSERT(mux_.pending_events() == 0);
    }

    // --- the guest ----------------------------------------------------------------------------
    packet_header header_for(const model_conn& c, op o) {
        packet_header h;
        h.src_cid(guest_cid).dst_cid(cz::vsock::cid_host).src_port(c.guest_port);
        h.dst_port(c.host_port.value_or(0)).type(cz::vsock::type_stream).op(o);
        h.buf_alloc(c.guest_buf_alloc).fwd_cnt(c.rx_total); // the guest reads at once
        return h;
    }

    // Hands one packet to the muxer as the TX queue would: header and payload in readable
    // segments split where the input says. Then updates the model with what the device did.
    void deliver(const packet_header& h, const std::vector<std::byte>& payload) {
        std::vector<std::byte> bytes(h.bytes().begin(), h.bytes().end());
        bytes.insert(bytes.end(), payload.begin(), payload.end());
        cz::vsock::descriptor_chain chain;
        std::size_t at = 0;
        while (at < bytes.size()) {
            std::size_t cut = in_.done() ? bytes.size() : 1 + in_.u8() * 97u;
            std::size_t n = std::min<std::size_t>(bytes.size() - at, cut);
            chain.readable.push_back({bytes.data() + at, std::uint32_t(n)});
            chain.readable_len += n;
            at += n;
        }
        bool valid = h.src_cid() == guest_cid && h.dst_cid() == cz::vsock::cid_host &&
                     h.type() == cz::vsock::type_stream;
        model_conn* c = valid ? by_tuple(h.src_port(), h.dst_port()) : nullptr;
        std::optional<connection_id> id = c ? c->id : std::nullopt;
        bool honest_data = c && h.op() == op::rw && honest_ && guest_may_send(*c) &&
                           h.len() == payload.size() &&
                           h.len() <= credit(c->dev_buf_alloc, c->guest_tx_total, c->dev_fwd_cnt);
        auto violations = mux_.stats().credit_violations;
        mux_.on_guest_packet(h, chain, hdr);
        honest_ = false;
        events(&h);
        // Data within the credit the device advertised is never refused.
        if (honest_data) CZ_FUZZ_ASSERT(mux_.stats().credit_violations == violations && by_id(*id));
        // (A RESPONSE or REQUEST may just have given the tuple its connection.)
        c = id ? by_id(*id) : valid ? by_tuple(h.src_port(), h.dst_port()) : nullptr;
        if (!c) return; // not a connection the model knows, or gone with this packet
        // The device takes the guest's credit from every packet on the connection.
        c->adv_buf_alloc = h.buf_alloc();
        c->adv_fwd_cnt = h.fwd_cnt();
        if (h.op() == op::rw) {
            // Still alive after RW: the device took exactly `len` bytes.
            CZ_FUZZ_ASSERT(h.len() <= payload.size());
            c->guest_to_host.insert(c->guest_to_host.end(), payload.begin(),
                                    payload.begin() + h.len());
            c->guest_tx_total += h.len();
        }
        if (h.op() == op::shutdown) {
            if (h.flags() & cz::vsock::shutdown_send) c->guest_shut_send = true;
            if (h.flags() & cz::vsock::shutdown_rcv) {
                c->guest_shut_rcv = true;
                c->host_to_guest.clear(); // the guest will not read it: the device drops it
            }
        }
    }

    void guest_request() {
        model_conn c;
        c.guest_port = 0x1000 + next_guest_port_++;
        c.host_port = 1000 + in_.u8() % 4;
        c.guest_buf_alloc = 1 + in_.u16();
        deliver(header_for(c, op::request), {});
    }

    void guest_response() {
        // Answers a REQUEST the device sent (the oldest first), or refuses it with an RST; the
        // host may have given up on it meanwhile (then the device answers with an RST).
        if (pending_requests_.empty()) return;
        model_conn c;
        c.guest_port = pending_requests_.front().guest_port;
        c.host_port = pending_requests_.front().host_port;
        c.guest_buf_alloc = 1 + in_.u16();
        deliver(header_for(c, (in_.u8() & 7) == 0 ? op::rst : op::response), {});
        pending_requests_.pop_front();
    }

    void guest_rw(bool hostile) {
        model_conn* c = pick();
        if (!c || !c->host_port) return;
        std::uint32_t len = in_.u16();
        std::vector<std::byte> payload;
        if (hostile) {
            // Any length, a payload that may be shorter, any state.
            payload = fresh_bytes(std::min<std::uint32_t>(len, 1 + in_.u16()));
        } else {
            if (!guest_may_send(*c)) return;
            len = std::min(len, credit(c->dev_buf_alloc, c->guest_tx_total, c->dev_fwd_cnt));
            if (len == 0) return;
            payload = fresh_bytes(len);
            honest_ = true;
        }
        auto h = header_for(*c, op::rw);
        h.len(len);
        deliver(h, payload);
    }

    void guest_credit(bool honest, op o) {
        model_conn* c = pick();
        if (!c || !c->host_port) return;
        auto h = header_for(*c, o);
        if (!honest) h.fwd_cnt(in_.u32()); // a guest that lies about what it consumed
        if (in_.u8() & 1) {
            c->guest_buf_alloc = in_.u16();
            h.buf_alloc(c->guest_buf_alloc);
        }
        deliver(h, {});
    }

    void guest_shutdown() {
        model_conn* c = pick();
        if (!c || !c->host_port) return;
        auto h = header_for(*c, op::shutdown);
        h.flags(in_.u8() & 3);
        deliver(h, {});
    }

    void guest_simple(op o) {
        model_conn* c = pick();
        if (!c || !c->host_port) return;
        deliver(header_for(*c, o), {});
    }

    // A header from the input: the addressing of a known connection or not, any op, type, len.
    void guest_raw() {
        std::vector<std::byte> raw(hdr);
        for (auto& b : raw)
            b = std::byte(in_.u8());
        auto h = packet_header::from_bytes(raw);
        std::uint8_t how = in_.u8();
        if (how & 1) h.src_cid(guest_cid).dst_cid(cz::vsock::cid_host);
        if (how & 2) h.type(cz::vsock::type_stream);
        if (how & 4) h.op(op(1 + (how >> 4) % 7));
        model_conn* c = (how & 8) ? pick() : nullptr;
        if (c && c->host_port) h.src_port(c->guest_port).dst_port(*c->host_port);
        // A raw REQUEST for a tuple the model has never seen names a fresh guest port, so every
        // connection keeps a tuple of its own.
        if (h.op() == op::request && !by_tuple(h.src_port(), h.dst_port()))
            h.src_port(0x1000 + next_guest_port_++);
        deliver(h, fresh_bytes(std::min<std::size_t>(h.len(), in_.u16() % 9000)));
    }

    // --- the device's RX side -----------------------------------------------------------------
    void device_fill() { fill_one(hdr + in_.u16() % 8192); }

    // Gives the muxer one RX chain of `room` bytes (split into segments) and checks the packet.
    void fill_one(std::size_t room) {
        std::vector<std::byte> buf(room);
        cz::vsock::descriptor_chain chain;
        std::size_t at = 0;
        while (at < room) {
            std::size_t cut = in_.done() ? room : 1 + in_.u8() * 61u;
            std::size_t n = std::min<std::size_t>(room - at, cut);
            chain.writable.push_back({buf.data() + at, std::uint32_t(n)});
            chain.writable_len += n;
            at += n;
        }
        bool had = mux_.has_rx();
        std::size_t n = mux_.fill_rx(chain);
        events();
        CZ_FUZZ_ASSERT((n != 0) == had);
        if (n == 0) return;
        CZ_FUZZ_ASSERT(n >= hdr && n <= room);
        auto h = packet_header::from_bytes(buf);
        const auto dc = mux_.config();
        CZ_FUZZ_ASSERT(h.src_cid() == cz::vsock::cid_host && h.dst_cid() == guest_cid);
        CZ_FUZZ_ASSERT(h.type() == cz::vsock::type_stream && h.buf_alloc() == dc.buf_alloc);
        // RW carries data, unless the chain had room for the header only.
        CZ_FUZZ_ASSERT(h.op() == op::rw ? n == hdr + h.len() && (h.len() > 0 || room == hdr) &&
                                              h.len() <= cz::vsock::max_packet_payload
                                        : n == hdr && h.len() == 0);
        if (h.op() == op::rst) return; // may name a connection gone long ago
        if (h.op() == op::request) {
            // For a host connect() to that guest port, not answered yet. Which one (there may
            // be several) the guest learns from the `connected` event once it answers.
            bool asked = false;
            for (auto& c : conns_)
                if (c.host_initiated && !c.host_port && c.guest_port == h.dst_port()) asked = true;
            CZ_FUZZ_ASSERT(asked && h.fwd_cnt() == 0);
            pending_requests_.push_back({h.dst_port(), h.src_port(), h.buf_alloc(), h.fwd_cnt()});
            return;
        }
        model_conn* c = by_tuple(h.dst_port(), h.src_port());
        CZ_FUZZ_ASSERT(c);
        CZ_FUZZ_ASSERT(h.fwd_cnt() == c->host_consumed);
        c->dev_buf_alloc = h.buf_alloc();
        c->dev_fwd_cnt = h.fwd_cnt();
        switch (h.op()) {
        case op::response:
            CZ_FUZZ_ASSERT(!c->host_initiated && c->accepted && !c->response_seen);
            c->response_seen = true;
            break;
        case op::rw: {
            // Within the guest's credit, after the handshake, before either side's shutdown.
            CZ_FUZZ_ASSERT(c->host_initiated ? c->response_sent : c->response_seen);
            CZ_FUZZ_ASSERT(h.len() <= credit(c->adv_buf_alloc, c->rx_total, c->adv_fwd_cnt));
            CZ_FUZZ_ASSERT(!c->guest_shut_rcv && !c->device_shut_send);
            CZ_FUZZ_ASSERT(h.len() <= c->host_to_guest.size());
            CZ_FUZZ_ASSERT(std::equal(buf.begin() + hdr, buf.begin() + hdr + h.len(),
                                      c->host_to_guest.begin()));
            c->host_to_guest.erase(c->host_to_guest.begin(), c->host_to_guest.begin() + h.len());
            c->rx_total += h.len();
            break;
        }
        case op::credit_request:
            // Only with data waiting and no credit left.
            CZ_FUZZ_ASSERT(!c->host_to_guest.empty());
            CZ_FUZZ_ASSERT(credit(c->adv_buf_alloc, c->rx_total, c->adv_fwd_cnt) == 0);
            break;
        case op::shutdown:
            // SHUTDOWN(SEND) after close_send, once everything the host sent is out.
            CZ_FUZZ_ASSERT(h.flags() == cz::vsock::shutdown_send && c->host_eof);
            CZ_FUZZ_ASSERT(c->host_to_guest.empty() && !c->device_shut_send);
            c->device_shut_send = true;
            break;
        case op::credit_update:
            break;
        default:
            CZ_FUZZ_ASSERT(false);
        }
    }

    // --- the host -------------------------------------------------------------------------------
    void host_connect() {
        std::error_code ec;
        std::uint32_t port = 1234 + in_.u8() % 3;
        auto id = mux_.connect(port, ec);
        events();
        if (ec) {
            CZ_FUZZ_ASSERT(ec == cz::vsock::errc::too_many_connections &&
                           conns_.size() >= mux_.config().max_connections);
            return;
        }
        model_conn c;
        c.id = id;
        c.host_initiated = true;
        c.guest_port = port;
        c.guest_buf_alloc = 1 + in_.u16();
        conns_.push_back(std::move(c));
    }

    void host_answer(bool refuse) {
        if (pending_accept_.empty()) return;
        auto id = pending_accept_.front();
        pending_accept_.pop_front();
        model_conn* c = by_id(id);
        if (!c) return;
        if (refuse) {
            mux_.refuse(id);
            forget(id);
        } else {
            mux_.accept(id);
            c->accepted = true;
        }
        events();
    }

    void host_send() {
        model_conn* c = pick();
        if (!c) return;
        auto data = fresh_bytes(in_.u16() % 9000);
        std::size_t space = mux_.send_space(*c->id);
        std::size_t took = mux_.send(*c->id, data);
        events();
        CZ_FUZZ_ASSERT(took == std::min(space, data.size()));
        c->host_to_guest.insert(c->host_to_guest.end(), data.begin(), data.begin() + took);
        if (took < data.size() && (in_.u8() & 1)) mux_.notify_send_space(*c->id);
    }

    void host_consume() {
        model_conn* c = pick();
        if (!c) return;
        auto id = *c->id;
        auto pending = mux_.pending_tx(id);
        // The bytes the guest sent, in order.
        CZ_FUZZ_ASSERT(std::equal(pending.begin(), pending.end(), c->guest_to_host.begin()));
        std::size_t n = std::min<std::size_t>(pending.size(), in_.u16());
        mux_.consume_tx(id, n);
        c->guest_to_host.erase(c->guest_to_host.begin(), c->guest_to_host.begin() + n);
        c->host_consumed += std::uint32_t(n);
        events(); // a clean close may follow
    }

    void host_call(unsigned which) {
        model_conn* c = pick();
        if (!c) return;
        auto id = *c->id;
        if (which == 0x30) {
            mux_.reset(id);
            forget(id);
        } else {
            mux_.close_send(id);
            c->host_eof = true;
        }
        events();
    }

    void tick() {
        now_ += std::chrono::milliseconds(in_.u16());
        mux_.tick(now_);
        events();
    }

    script_reader in_;
    cz::vsock::muxer mux_;
    std::vector<model_conn> conns_;
    std::deque<connection_id> pending_accept_;
    // REQUESTs from the device the guest has not answered yet.
    struct device_request {
        std::uint32_t guest_port, host_port, buf_alloc, fwd_cnt;
    };
    std::deque<device_request> pending_requests_;
    cz::vsock::muxer::clock::time_point now_{};
    std::uint32_t next_guest_port_ = 0;
    std::uint32_t counter_ = 0;
    bool honest_ = false; // the packet being delivered keeps within the device's credit
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    fuzz_rings(data, size);
    modelled_guest(script_reader{data, size}).run();
    return 0;
}
