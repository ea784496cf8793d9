// Integration: a real QEMU 7.2 drives cz's vhost-user vsock backend, and every reply cz sends is
// checked against what the vhost-user spec (QEMU docs/interop/vhost-user.rst) requires for the
// message QEMU sent.
//
//   QEMU --vhost-user--> relay (this test: forwards each message whole, fds included, and records
//                        it) --> cz::vsock::backend
//   QEMU <--qtest------- this test plays the guest driver: it writes virtio-mmio registers and
//                        guest RAM the way Linux's virtio_mmio + vmw_vsock_virtio_transport do
//
// Without a guest, QEMU runs only the realize part of the handshake (features, protocol
// features, owner, call/err fds, GET_CONFIG). The qtest driver then sets DRIVER_OK, which makes
// QEMU send the rest (SET_FEATURES, SET_MEM_TABLE, ring setup); a host connection through the
// hybrid socket and one "ping"/"pong" each way through the rings show that the memory table and
// ring addresses cz accepted are the guest's; a device reset makes QEMU stop the rings
// (GET_VRING_BASE), whose replies must say where the guest's rings stand. Then QEMU is killed:
// the backend drops it cleanly and serves the next QEMU on the same socket, checked the same way.
#include <cz/vsock/backend.hpp>

#include <cz/vm/qemu.hpp>

#include "support/support.hpp"

#include <cz/vsock/packet.hpp>
#include <cz/vsock/protocol.hpp>

#include <cz/core/unique_fd.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// --- vhost-user, as the spec defines it (not cz's declarations: they are what is under test) ---

enum vu_request : std::uint32_t {
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    set_mem_table = 5,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    get_config = 24,
};
constexpr std::uint32_t vu_version = 0x1, vu_reply = 0x4, vu_need_reply = 0x8;
constexpr std::uint64_t feature_protocol_features = 1ull << 30; // VHOST_USER_F_PROTOCOL_FEATURES
constexpr std::uint64_t feature_version_1 = 1ull << 32;         // VIRTIO_F_VERSION_1
constexpr std::uint64_t vsock_f_seqpacket = 1ull << 1;          // virtio 1.2 §5.10.3
constexpr std::uint64_t protocol_mq = 1ull << 0;
constexpr std::uint64_t protocol_reply_ack = 1ull << 3;
constexpr std::uint64_t protocol_config = 1ull << 9;
// The protocol feature bits vhost-user.rst defines (0 MQ .. 18 SHARED_OBJECT).
constexpr std::uint64_t protocol_defined = (1ull << 19) - 1;

std::uint32_t le32(const std::vector<std::byte>& b, std::size_t at) {
    return cz::load_le<std::uint32_t>(b.data() + at);
}
std::uint64_t le64(const std::vector<std::byte>& b, std::size_t at) {
    return cz::load_le<std::uint64_t>(b.data() + at);
}

struct vu_message {
    bool from_frontend = false; // QEMU -> backend; else backend -> QEMU
    std::uint32_t request = 0;
    std::uint32_t flags = 0;
    std::uint32_t size = 0;
    std::vector<std::byte> payload;
    std::size_t fds = 0;
};

std::string describe(const vu_message& m) {
    return std::string(m.from_frontend ? "QEMU" : "cz") + " request " + std::to_string(m.request) +
           " flags " + std::to_string(m.flags) + " size " + std::to_string(m.size);
}

bool read_full(int fd, void* buf, std::size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
        auto got = ::recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= std::size_t(got);
    }
    return true;
}

// Sits between QEMU and the backend: accepts QEMU on its own socket, connects to the backend's,
// and forwards every message whole (header, payload, SCM_RIGHTS fds), recording it. One session
// per QEMU connection.
class vhost_user_relay {
public:
    vhost_user_relay(const fs::path& listen_path, const fs::path& backend_path)
        : backend_(address(backend_path)) {
        listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto a = address(listen_path);
        REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listen_, 4) == 0);
        stop_ = ::eventfd(0, EFD_CLOEXEC);
        REQUIRE(stop_ >= 0);
        thread_ = std::thread([this] { run(); });
    }
    ~vhost_user_relay() {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
        thread_.join();
        ::close(listen_);
        ::close(stop_);
    }

    // The messages of session `i` (0-based) so far.
    std::vector<vu_message> session(std::size_t i) const {
        std::lock_guard lock(m_);
        return i < sessions_.size() ? sessions_[i] : std::vector<vu_message>{};
    }
    std::string error() const {
        std::lock_guard lock(m_);
        return error_;
    }

    // Waits until `done(session i)` holds; false after `timeout`.
    bool wait_for(std::size_t i, const std::function<bool(const std::vector<vu_message>&)>& done,
                  std::chrono::seconds timeout = 60s) const {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (done(session(i))) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

private:
    static sockaddr_un address(const fs::path& p) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        REQUIRE(p.string().size() < sizeof a.sun_path);
        std::strcpy(a.sun_path, p.c_str());
        return a;
    }

    void fail(const std::string& why) {
        std::lock_guard lock(m_);
        if (error_.empty()) error_ = why;
    }

    // Reads one message from `from` and sends it on to `to`; false when `from` is gone.
    bool forward(int from, int to, bool from_frontend) {
        vu_message m;
        m.from_frontend = from_frontend;
        std::byte header[12];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
        iovec iov{header, sizeof header};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        auto got = ::recvmsg(from, &msg, MSG_CMSG_CLOEXEC);
        if (got <= 0) return false;
        std::vector<int> fds;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t k = 0; k < n; ++k) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                fds.push_back(fd);
            }
        }
        auto close_fds = [&] {
            for (int fd : fds)
                ::close(fd);
        };
        if ((msg.msg_flags & MSG_CTRUNC) ||
            (got < 12 && !read_full(from, header + got, 12 - std::size_t(got)))) {
            close_fds();
            fail("relay: a truncated message header or too many fds");
            return false;
        }
        m.request = cz::load_le<std::uint32_t>(header);
        m.flags = cz::load_le<std::uint32_t>(header + 4);
        m.size = cz::load_le<std::uint32_t>(header + 8);
        if (m.size > 4096) {
            close_fds();
            fail("relay: " + describe(m) + ": payload larger than any vhost-user message");
            return false;
        }
        m.payload.resize(m.size);
        if (m.size && !read_full(from, m.payload.data(), m.size)) {
            close_fds();
            return false;
        }
        m.fds = fds.size();
        {
            std::lock_guard lock(m_);
            sessions_.back().push_back(m);
        }
        std::vector<std::byte> out(header, header + 12);
        out.insert(out.end(), m.payload.begin(), m.payload.end());
        iovec oiov{out.data(), out.size()};
        msghdr omsg{};
        omsg.msg_iov = &oiov;
        omsg.msg_iovlen = 1;
        alignas(cmsghdr) char ocontrol[CMSG_SPACE(sizeof(int) * 16)];
        if (!fds.empty()) {
            omsg.msg_control = ocontrol;
            omsg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&omsg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        bool sent = ::sendmsg(to, &omsg, MSG_NOSIGNAL) == ssize_t(out.size());
        close_fds();
        return sent;
    }

    void run() {
        for (;;) {
            pollfd p[2] = {{listen_, POLLIN, 0}, {stop_, POLLIN, 0}};
            if (::poll(p, 2, -1) < 0) continue;
            if (p[1].revents) return;
            int qemu = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
            if (qemu < 0) continue;
            int be = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(be, reinterpret_cast<const sockaddr*>(&backend_), sizeof backend_) != 0) {
                fail("relay: cannot connect to the backend's socket");
                ::close(be);
                ::close(qemu);
                continue;
            }
            {
                std::lock_guard lock(m_);
                sessions_.emplace_back();
            }
            for (;;) {
                pollfd q[3] = {{qemu, POLLIN, 0}, {be, POLLIN, 0}, {stop_, POLLIN, 0}};
                if (::poll(q, 3, -1) < 0) continue;
                if (q[2].revents) break;
                if (q[0].revents && !forward(qemu, be, true)) break;
                if (q[1].revents && !forward(be, qemu, false)) break;
            }
            ::close(qemu);
            ::close(be);
            pollfd s{stop_, POLLIN, 0};
            if (::poll(&s, 1, 0) == 1) return;
        }
    }

    sockaddr_un backend_;
    int listen_ = -1;
    int stop_ = -1;
    std::thread thread_;
    mutable std::mutex m_;
    std::vector<std::vector<vu_message>> sessions_;
    std::string error_;
};

// Whether the frontend waits for a reply to `m` (vhost-user.rst: the "get" messages, and any
// message with NEED_REPLY once REPLY_ACK is negotiated).
bool expects_reply(const vu_message& m, bool reply_ack) {
    switch (m.request) {
    case get_features:
    case get_protocol_features:
    case get_vring_base:
    case get_queue_num:
    case get_config:
        return true;
    default:
        return reply_ack && (m.flags & vu_need_reply);
    }
}

// What the guest driver observed, for the replies that must agree with guest memory.
struct guest_view {
    std::uint64_t guest_cid = 0;
    // used.idx of each ring when the device was reset: what GET_VRING_BASE must report.
    std::optional<std::uint16_t> ring_used[2];
};

// Checks every reply in one session against the request it answers, and every request against
// the vhost-user rules this test knows; returns the violations, one per line.
std::string check_session(const std::vector<vu_message>& log, const guest_view& guest) {
    std::string problems;
    auto problem = [&](const std::string& s) { problems += s + "\n"; };
    const vu_message* waiting = nullptr; // the request whose reply is due
    std::optional<std::uint64_t> features, protocol;
    bool reply_ack = false;
    for (const auto& m : log) {
        if (m.from_frontend) {
            if (waiting) problem("no reply to " + describe(*waiting) + " before " + describe(m));
            if ((m.flags & 0x3) != vu_version) problem(describe(m) + ": not version 1");
            switch (m.request) {
            case set_features:
                if (m.size != 8) break;
                if (!features || (le64(m.payload, 0) & ~*features))
                    problem("QEMU acked features that cz did not offer");
                break;
            case set_protocol_features:
                if (m.size != 8) break;
                if (!protocol || (le64(m.payload, 0) & ~*protocol))
                    problem("QEMU acked protocol features that cz did not offer");
                reply_ack = (le64(m.payload, 0) & protocol_reply_ack) != 0;
                break;
            case get_features:
            case get_protocol_features:
            case set_owner:
            case set_mem_table:
            case set_vring_num:
            case set_vring_addr:
            case set_vring_base:
            case get_vring_base:
            case set_vring_kick:
            case set_vring_call:
            case set_vring_err:
            case get_queue_num:
            case set_vring_enable:
            case get_config:
                break;
            default:
                problem(describe(m) + ": a request this test has no rule for (QEMU changed?)");
            }
            waiting = expects_reply(m, reply_ack) ? &m : nullptr;
            continue;
        }
        // A message from cz: only ever a reply, to the request that waits for one.
        if (!waiting) {
            problem(describe(m) + ": a reply to a request that expects none");
            continue;
        }
        const vu_message& req = *waiting;
        waiting = nullptr;
        if (m.request != req.request) problem(describe(m) + ": answers " + describe(req));
        if (m.flags != (vu_version | vu_reply))
            problem(describe(m) + ": reply flags must be exactly version 1 | REPLY (0x5)");
        if (m.fds != 0) problem(describe(m) + ": a reply with fds");
        if (m.request != req.request) continue;
        auto need_size = [&](std::uint32_t size) {
            if (m.size == size) return true;
            problem(describe(m) + ": payload must be " + std::to_string(size) + " bytes");
            return false;
        };
        if ((req.flags & vu_need_reply) && reply_ack && !expects_reply(req, false)) {
            // REPLY_ACK: u64 0 for success.
            if (need_size(8) && le64(m.payload, 0) != 0)
                problem(describe(req) + ": failed (REPLY_ACK)");
            continue;
        }
        switch (req.request) {
        case get_features: {
            if (!need_size(8)) break;
            features = le64(m.payload, 0);
            // QEMU sends GET_PROTOCOL_FEATURES only when bit 30 is offered, and vhost-user-vsock
            // needs the protocol features (GET_CONFIG). A virtio 1.x device offers VERSION_1.
            // cz has no SEQPACKET, so it must not offer it.
            if (!(*features & feature_protocol_features))
                problem("GET_FEATURES: no PROTOCOL_FEATURES bit");
            if (!(*features & feature_version_1)) problem("GET_FEATURES: no VERSION_1");
            if (*features & vsock_f_seqpacket) problem("GET_FEATURES: offers SEQPACKET");
            break;
        }
        case get_protocol_features: {
            if (!need_size(8)) break;
            protocol = le64(m.payload, 0);
            if (!(*protocol & protocol_config)) problem("GET_PROTOCOL_FEATURES: no CONFIG");
            if (*protocol & ~protocol_defined) problem("GET_PROTOCOL_FEATURES: undefined bits");
            break;
        }
        case get_queue_num:
            // Only with MQ negotiated; a vsock backend serves its two rings (rx, tx).
            if (!protocol || !(*protocol & protocol_mq)) problem("GET_QUEUE_NUM without MQ");
            if (need_size(8) && le64(m.payload, 0) < 2)
                problem("GET_QUEUE_NUM: fewer than 2 queues");
            break;
        case get_config: {
            // The reply repeats the request's offset, size and flags, then `size` config bytes:
            // le64 guest_cid at offset 0 (virtio 1.2 §5.10.4).
            if (!need_size(req.size) || req.size < 12) break;
            if (!std::equal(m.payload.begin(), m.payload.begin() + 12, req.payload.begin()))
                problem("GET_CONFIG: the reply's offset/size/flags differ from the request's");
            std::uint32_t offset = le32(req.payload, 0), size = le32(req.payload, 4);
            if (size != req.size - 12) problem("GET_CONFIG: QEMU's size field disagrees");
            std::byte cid[8];
            cz::store_le<std::uint64_t>(cid, guest.guest_cid);
            for (std::uint32_t k = 0; k < size && 12 + k < m.payload.size(); ++k)
                if (offset + k < 8 && m.payload[12 + k] != cid[offset + k])
                    problem("GET_CONFIG: guest_cid byte " + std::to_string(offset + k));
            break;
        }
        case get_vring_base: {
            // { u32 index; u32 num }: the same ring, and the next avail index the backend would
            // have processed — all the guest made available was used, so its used.idx.
            if (!need_size(8)) break;
            std::uint32_t index = le32(m.payload, 0), num = le32(m.payload, 4);
            if (index != le32(req.payload, 0)) problem("GET_VRING_BASE: answers another ring");
            if (index < 2 && guest.ring_used[index] && num != *guest.ring_used[index])
                problem("GET_VRING_BASE ring " + std::to_string(index) + ": base " +
                        std::to_string(num) + ", the guest's used.idx is " +
                        std::to_string(*guest.ring_used[index]));
            if (index < 2 && !guest.ring_used[index])
                problem("GET_VRING_BASE before the test reset the device");
            break;
        }
        default:
            problem(describe(m) + ": a reply to a request that has none");
            break;
        }
    }
    if (waiting) problem("no reply to " + describe(*waiting));
    return problems;
}

// The session as a list, one message a line, for failure reports.
std::string transcript(const std::vector<vu_message>& log) {
    std::string out;
    for (const auto& m : log) {
        out += describe(m);
        if (m.fds) out += " fds " + std::to_string(m.fds);
        if (m.size == 8) out += " u64 " + std::to_string(le64(m.payload, 0));
        out += "\n";
    }
    return out;
}

std::size_t count_of(const std::vector<vu_message>& log, std::uint32_t request,
                     bool from_frontend) {
    std::size_t n = 0;
    for (const auto& m : log)
        n += m.request == request && m.from_frontend == from_frontend;
    return n;
}

// --- the guest driver, over QEMU's qtest protocol (docs/devel/qtest.rst) ---------------------

class qtest {
public:
    explicit qtest(int fd) : fd_(fd) {}
    ~qtest() { ::close(fd_); }
    qtest(const qtest&) = delete;
    qtest& operator=(const qtest&) = delete;

    std::uint64_t readl(std::uint64_t a) { return number(command("readl " + hex(a))); }
    std::uint16_t readw(std::uint64_t a) {
        return std::uint16_t(number(command("readw " + hex(a))));
    }
    void writel(std::uint64_t a, std::uint32_t v) { command("writel " + hex(a) + " " + hex(v)); }
    void writew(std::uint64_t a, std::uint16_t v) { command("writew " + hex(a) + " " + hex(v)); }
    void writeq(std::uint64_t a, std::uint64_t v) { command("writeq " + hex(a) + " " + hex(v)); }
    void write(std::uint64_t a, cz::bytes_view data) {
        std::string h;
        for (auto b : data)
            h += fmt_byte(std::uint8_t(b));
        command("write " + hex(a) + " " + hex(data.size()) + " 0x" + h);
    }
    std::vector<std::byte> read(std::uint64_t a, std::size_t n) {
        auto r = command("read " + hex(a) + " " + hex(n));
        REQUIRE(r.size() == 2 + 2 * n);
        std::vector<std::byte> out(n);
        for (std::size_t i = 0; i < n; ++i)
            out[i] = std::byte(std::stoul(r.substr(2 + 2 * i, 2), nullptr, 16));
        return out;
    }

private:
    static std::string hex(std::uint64_t v) {
        char b[24];
        std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
        return b;
    }
    static std::string fmt_byte(std::uint8_t v) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", v);
        return b;
    }
    static std::uint64_t number(const std::string& s) { return std::stoull(s, nullptr, 16); }

    // Sends one command; returns what follows "OK " in its answer.
    std::string command(const std::string& line) {
        auto out = line + "\n";
        REQUIRE(::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) == ssize_t(out.size()));
        for (;;) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                auto answer = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                if (answer.rfind("IRQ", 0) == 0) continue; // asynchronous, not an answer
                REQUIRE_MESSAGE(answer.rfind("OK", 0) == 0, "qtest: ", line, " -> ", answer);
                return answer.size() > 3 ? answer.substr(3) : std::string();
            }
            pollfd p{fd_, POLLIN, 0};
            REQUIRE_MESSAGE(::poll(&p, 1, 30000) == 1, "qtest: no answer to ", line);
            char chunk[4096];
            auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            REQUIRE_MESSAGE(n > 0, "qtest: QEMU closed the connection after ", line);
            buf_.append(chunk, std::size_t(n));
        }
    }

    int fd_;
    std::string buf_;
};

// virtio-mmio registers (virtio 1.2 §4.2.2, version 2).
namespace reg {
constexpr std::uint64_t magic = 0x000, version = 0x004, device_id = 0x008;
constexpr std::uint64_t device_features = 0x010, device_features_sel = 0x014;
constexpr std::uint64_t driver_features = 0x020, driver_features_sel = 0x024;
constexpr std::uint64_t queue_sel = 0x030, queue_num_max = 0x034, queue_num = 0x038;
constexpr std::uint64_t queue_ready = 0x044, queue_notify = 0x050;
constexpr std::uint64_t interrupt_status = 0x060, interrupt_ack = 0x064, status = 0x070;
constexpr std::uint64_t queue_desc_low = 0x080, queue_desc_high = 0x084;
constexpr std::uint64_t queue_driver_low = 0x090, queue_driver_high = 0x094;
constexpr std::uint64_t queue_device_low = 0x0a0, queue_device_high = 0x0a4;
constexpr std::uint64_t config = 0x100;
} // namespace reg
constexpr std::uint32_t status_acknowledge = 1, status_driver = 2, status_driver_ok = 4,
                        status_features_ok = 8;
constexpr std::uint32_t virtio_id_vsock = 19;
constexpr std::uint16_t qsize = 8;

// Where the test puts queue q (0 rx, 1 tx, 2 event) in guest RAM: its parts and its buffers.
struct ring_layout {
    std::uint64_t desc, avail, used, buffers;
    explicit ring_layout(unsigned q) {
        std::uint64_t base = 0x100000 + 0x10000ull * q;
        desc = base;
        avail = base + 0x1000;
        used = base + 0x2000;
        buffers = base + 0x8000; // 4 KiB each
    }
};

// The guest driver: finds the vsock transport, initialises it as Linux does, and moves packets.
class guest_driver {
public:
    explicit guest_driver(qtest& q) : q_(q) {}

    // The microvm transports sit 512 bytes apart from 0xfeb00000; returns whether one is vsock.
    bool find_vsock() {
        for (std::uint64_t slot = 0; slot < 32; ++slot) {
            std::uint64_t b = 0xfeb00000 + 0x200 * slot;
            if (q_.readl(b + reg::magic) != 0x74726976) continue; // "virt"
            if (q_.readl(b + reg::device_id) == virtio_id_vsock) {
                base_ = b;
                return true;
            }
        }
        return false;
    }

    std::uint64_t config_cid() {
        return q_.readl(base_ + reg::config) | (q_.readl(base_ + reg::config + 4) << 32);
    }

    // Reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 only), FEATURES_OK, three queues, and
    // DRIVER_OK (virtio 1.2 §3.1.1): DRIVER_OK is what makes QEMU start the vhost-user device.
    void initialise() {
        REQUIRE(q_.readl(base_ + reg::version) == 2);
        q_.writel(base_ + reg::status, 0);
        q_.writel(base_ + reg::status, status_acknowledge);
        q_.writel(base_ + reg::status, status_acknowledge | status_driver);
        q_.writel(base_ + reg::device_features_sel, 1);
        std::uint64_t offered = q_.readl(base_ + reg::device_features) << 32;
        q_.writel(base_ + reg::device_features_sel, 0);
        offered |= q_.readl(base_ + reg::device_features);
        REQUIRE((offered & feature_version_1) != 0);
        q_.writel(base_ + reg::driver_features_sel, 1);
        q_.writel(base_ + reg::driver_features, std::uint32_t(feature_version_1 >> 32));
        q_.writel(base_ + reg::driver_features_sel, 0);
        q_.writel(base_ + reg::driver_features, 0);
        q_.writel(base_ + reg::status, status_acknowledge | status_driver | status_features_ok);
        REQUIRE((q_.readl(base_ + reg::status) & status_features_ok) != 0);
        for (unsigned i = 0; i < 3; ++i) {
            ring_layout r(i);
            q_.writel(base_ + reg::queue_sel, i);
            REQUIRE(q_.readl(base_ + reg::queue_num_max) >= qsize);
            q_.writel(base_ + reg::queue_num, qsize);
            // Zeroed parts: avail.idx and used.idx start at 0.
            q_.write(r.desc, std::vector<std::byte>(16 * qsize));
            q_.write(r.avail, std::vector<std::byte>(6 + 2 * qsize));
            q_.write(r.used, std::vector<std::byte>(6 + 8 * qsize));
            q_.writel(base_ + reg::queue_desc_low, std::uint32_t(r.desc));
            q_.writel(base_ + reg::queue_desc_high, 0);
            q_.writel(base_ + reg::queue_driver_low, std::uint32_t(r.avail));
            q_.writel(base_ + reg::queue_driver_high, 0);
            q_.writel(base_ + reg::queue_device_low, std::uint32_t(r.used));
            q_.writel(base_ + reg::queue_device_high, 0);
            q_.writel(base_ + reg::queue_ready, 1);
        }
        q_.writel(base_ + reg::status,
                  status_acknowledge | status_driver | status_features_ok | status_driver_ok);
    }

    // Makes buffer `slot` of queue q available as one descriptor of `len` bytes (device-writable
    // on rx) holding `data`, and kicks the queue.
    void post(unsigned qi, std::uint16_t slot, std::uint32_t len, cz::bytes_view data = {}) {
        ring_layout r(qi);
        std::uint64_t addr = r.buffers + 0x1000ull * slot;
        if (!data.empty()) q_.write(addr, data);
        std::byte d[16] = {};
        cz::store_le<std::uint64_t>(d, addr);
        cz::store_le<std::uint32_t>(d + 8, len);
        cz::store_le<std::uint16_t>(d + 12, qi == 0 ? 2 : 0); // VIRTQ_DESC_F_WRITE on rx
        q_.write(r.desc + 16ull * slot, d);
        std::uint16_t idx = avail_[qi];
        q_.writew(r.avail + 4 + 2ull * (idx % qsize), slot);
        q_.writew(r.avail + 2, ++avail_[qi]);
        q_.writel(base_ + reg::queue_notify, qi);
    }

    std::uint16_t used_idx(unsigned qi) { return q_.readw(ring_layout(qi).used + 2); }

    // Waits until the device has used `n` chains of queue qi in all.
    bool wait_used(unsigned qi, std::uint16_t n) {
        for (int i = 0; i < 1000; ++i) {
            if (used_idx(qi) == n) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    // Used element k of queue qi: { id, len }.
    std::pair<std::uint32_t, std::uint32_t> used_elem(unsigned qi, std::uint16_t k) {
        auto e = q_.read(ring_layout(qi).used + 4 + 8ull * (k % qsize), 8);
        return {cz::load_le<std::uint32_t>(e.data()), cz::load_le<std::uint32_t>(e.data() + 4)};
    }

    std::vector<std::byte> buffer(unsigned qi, std::uint16_t slot, std::size_t n) {
        return q_.read(ring_layout(qi).buffers + 0x1000ull * slot, n);
    }

    std::uint32_t interrupt_status() {
        return std::uint32_t(q_.readl(base_ + reg::interrupt_status));
    }
    void ack_interrupt(std::uint32_t bits) { q_.writel(base_ + reg::interrupt_ack, bits); }
    void reset() { q_.writel(base_ + reg::status, 0); }

private:
    qtest& q_;
    std::uint64_t base_ = 0;
    std::uint16_t avail_[3] = {};
};

pid_t spawn_qemu(const std::vector<std::string>& args, const fs::path& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        FILE* f = std::fopen(log.c_str(), "w");
        if (f) {
            ::dup2(fileno(f), 1);
            ::dup2(fileno(f), 2);
        }
        std::vector<char*> argv;
        for (auto& s : args)
            argv.push_back(const_cast<char*>(s.c_str()));
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

int unix_listener(const fs::path& p) {
    ::unlink(p.c_str()); // the previous run's
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, p.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    return fd;
}

int unix_connect(const fs::path& p) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, p.c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

// Reads from `fd` until `n` bytes came, EOF, or 10 s passed.
std::string read_some(int fd, std::size_t n) {
    std::string out;
    while (out.size() < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) break;
        char buf[256];
        auto got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (got <= 0) break;
        out.append(buf, std::size_t(got));
    }
    return out;
}

// Whether the peer closed `fd` (EOF or reset) within 10 s, with no data before.
bool closed_by_peer(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return false;
    char c;
    return ::recv(fd, &c, 1, 0) <= 0;
}

cz::vsock::packet_header header_at(const std::vector<std::byte>& b) {
    REQUIRE(b.size() >= cz::vsock::packet_header::wire_size);
    return cz::vsock::packet_header::from_bytes(b);
}

// Runs `f` on the backend's io_context thread and returns its result.
template <class F>
auto on_io(asio::io_context& io, F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
}

// The host dials guest port 1234 through the hybrid socket; the test's guest finds the REQUEST
// in its rx buffer, accepts, and one payload goes each way through the rings. Returns the host's
// connection, still open.
cz::unique_fd host_dials_guest(guest_driver& guest, const cz::vsock::backend_config& cfg) {
    // CONNECT through the hybrid socket is a REQUEST in the guest's rx buffer.
    for (std::uint16_t slot = 0; slot < 4; ++slot)
        guest.post(0, slot, 4096);
    cz::unique_fd owned(unix_connect(cfg.uds_path));
    int host = owned.get();
    std::string connect = "CONNECT 1234\n";
    REQUIRE(::send(host, connect.data(), connect.size(), MSG_NOSIGNAL) == ssize_t(connect.size()));
    REQUIRE(guest.wait_used(0, 1));
    auto [id0, len0] = guest.used_elem(0, 0);
    CHECK(id0 == 0);
    CHECK(len0 == cz::vsock::packet_header::wire_size);
    auto request = header_at(guest.buffer(0, 0, cz::vsock::packet_header::wire_size));
    CHECK(request.op() == cz::vsock::op::request);
    CHECK(request.src_cid() == cz::vsock::cid_host);
    CHECK(request.dst_cid() == cfg.device.guest_cid);
    CHECK(request.dst_port() == 1234);
    CHECK(request.type() == cz::vsock::type_stream);
    CHECK(request.len() == 0);
    CHECK(request.buf_alloc() == cfg.device.buf_alloc);
    // The used buffer was signalled through the call fd QEMU gave: QEMU raised the
    // interrupt.
    bool interrupted = false;
    for (int i = 0; i < 500 && !interrupted; ++i) {
        interrupted = (guest.interrupt_status() & 1) != 0;
        if (!interrupted) std::this_thread::sleep_for(10ms);
    }
    CHECK(interrupted);
    guest.ack_interrupt(1);

    // The guest accepts: RESPONSE on tx; the host gets "OK <its port>".
    auto host_port = request.src_port();
    cz::vsock::packet_header response;
    response.src_cid(cfg.device.guest_cid)
        .dst_cid(cz::vsock::cid_host)
        .src_port(1234)
        .dst_port(host_port);
    response.type(cz::vsock::type_stream).op(cz::vsock::op::response).buf_alloc(65536);
    guest.post(1, 0, cz::vsock::packet_header::wire_size, response.bytes());
    CHECK(read_some(host, ("OK " + std::to_string(host_port) + "\n").size()) ==
          "OK " + std::to_string(host_port) + "\n");
    CHECK(guest.wait_used(1, 1));

    // One payload each way through the rings.
    REQUIRE(::send(host, "ping", 4, MSG_NOSIGNAL) == 4);
    REQUIRE(guest.wait_used(0, 2));
    auto [id1, len1] = guest.used_elem(0, 1);
    CHECK(id1 == 1);
    CHECK(len1 == cz::vsock::packet_header::wire_size + 4);
    auto rw = guest.buffer(0, 1, cz::vsock::packet_header::wire_size + 4);
    auto rw_header = header_at(rw);
    CHECK(rw_header.op() == cz::vsock::op::rw);
    CHECK(rw_header.len() == 4);
    CHECK(rw_header.src_port() == host_port);
    CHECK(rw_header.dst_port() == 1234);
    CHECK(std::string(reinterpret_cast<const char*>(rw.data()) + 44, 4) == "ping");
    cz::vsock::packet_header pong = response;
    pong.op(cz::vsock::op::rw).len(4).fwd_cnt(4);
    std::vector<std::byte> pong_bytes(pong.bytes().begin(), pong.bytes().end());
    for (char c : std::string("pong"))
        pong_bytes.push_back(std::byte(c));
    guest.post(1, 1, std::uint32_t(pong_bytes.size()), pong_bytes);
    CHECK(read_some(host, 4) == "pong");
    CHECK(guest.wait_used(1, 2));
    return owned;
}

} // namespace

TEST_SUITE("vsock") {

    TEST_CASE("QEMU drives cz's vhost-user vsock backend: every reply is what the spec requires") {
        if (!cz_test::have("qemu-system-x86_64")) CZ_SKIP("qemu-system-x86_64 not installed");
        cz_test::temp_dir dir("cz-vsock-qemu");
        asio::io_context io;
        cz::vsock::backend_config cfg;
        cfg.device.guest_cid = 42;
        cfg.vhost_user_socket = dir.path / "backend.sock";
        cfg.uds_path = dir.path / "vsock.sock";
        cz::vsock::backend be(io, cfg);
        be.start();
        auto guard = asio::make_work_guard(io);
        std::thread t([&] { io.run(); });
        struct stop_io {
            asio::io_context& io;
            cz::vsock::backend& be;
            asio::executor_work_guard<asio::io_context::executor_type>& guard;
            std::thread& t;
            ~stop_io() {
                asio::post(io, [this] { be.stop(); });
                guard.reset();
                t.join();
            }
        } stopper{io, be, guard, t};

        // The backend is single-threaded: everything about it is read on its thread.
        auto connected = [&] { return on_io(io, [&] { return be.frontend_connected(); }); };
        auto relay_path = dir.path / "vhost-user.sock";
        vhost_user_relay relay(relay_path, cfg.vhost_user_socket);

        // QEMU reaches the backend through the relay: cz/vm's arguments for the device, on the relay.
        std::vector<std::string> args = {"qemu-system-x86_64",
                                         "-M",
                                         "microvm,memory-backend=mem",
                                         "-m",
                                         "64M",
                                         "-nodefaults",
                                         "-no-user-config",
                                         "-display",
                                         "none",
                                         "-global",
                                         "virtio-mmio.force-legacy=false",
                                         "-qtest",
                                         "unix:" + (dir.path / "qtest.sock").string(),
                                         "-qtest-log",
                                         "none"};
        for (auto& a : cz::vm::qemu_memory_args(64))
            args.push_back(a);
        for (auto& a : cz::vm::qemu_vhost_user_vsock_args(relay_path))
            args.push_back(a);

        for (std::size_t run = 1; run <= 2; ++run) {
            CAPTURE(run);
            const std::size_t session = run - 1;
            int qtest_listener = unix_listener(dir.path / "qtest.sock");
            pid_t pid = spawn_qemu(args, dir.path / "qemu.log");
            REQUIRE(pid > 0);
            struct reap {
                pid_t pid;
                int listener;
                ~reap() {
                    ::kill(pid, SIGKILL);
                    ::waitpid(pid, nullptr, 0);
                    ::close(listener);
                }
            } reaper{pid, qtest_listener};
            INFO("QEMU's output: " << (dir.path / "qemu.log").string());
            pollfd p{qtest_listener, POLLIN, 0};
            REQUIRE_MESSAGE(::poll(&p, 1, 60000) == 1, "QEMU did not connect its qtest socket");
            qtest q(::accept4(qtest_listener, nullptr, nullptr, SOCK_CLOEXEC));
            guest_driver guest(q);

            // Realize: QEMU reads the guest CID with GET_CONFIG; the guest sees it in config space.
            REQUIRE(relay.wait_for(
                session, [](const auto& log) { return count_of(log, get_config, false) == 1; }));
            REQUIRE(guest.find_vsock());
            CHECK(guest.config_cid() == 42);

            // DRIVER_OK: QEMU sends the memory table and sets the rings up; both must run.
            guest.initialise();
            bool rings_run = false;
            for (int i = 0; i < 1000 && !rings_run; ++i) {
                rings_run = on_io(io, [&] {
                    return be.device().rx_queue().ready() && be.device().tx_queue().ready();
                });
                if (!rings_run) std::this_thread::sleep_for(10ms);
            }
            REQUIRE_MESSAGE(rings_run, "the rings never started; relay: ", relay.error());
            auto log = relay.session(session);
            CHECK(count_of(log, set_mem_table, true) == 1);
            CHECK(connected());

            // A host connection through the hybrid socket, one payload each way.
            cz::unique_fd host = host_dials_guest(guest, cfg);

            // Device reset: QEMU stops both rings with GET_VRING_BASE; each reply must give the
            // guest's position (everything it made available on tx was used; on rx, two of four).
            guest_view view;
            view.guest_cid = 42;
            view.ring_used[0] = guest.used_idx(0);
            view.ring_used[1] = guest.used_idx(1);
            CHECK(*view.ring_used[0] == 2);
            CHECK(*view.ring_used[1] == 2);
            guest.reset();
            REQUIRE(relay.wait_for(session, [](const auto& log) {
                return count_of(log, get_vring_base, false) == 2;
            }));
            // The guest's side of the connection is gone with the reset: the host end closes.
            CHECK(closed_by_peer(host.get()));

            log = relay.session(session);
            CHECK(relay.error().empty());
            auto problems = check_session(log, view);
            CHECK_MESSAGE(problems.empty(), problems, "in the session:\n", transcript(log));
            // Every request QEMU needed an answer to got one, and the realize part was all there.
            for (auto r : {get_features, get_protocol_features, set_protocol_features, set_owner,
                           set_vring_call, get_config, set_features, set_vring_num, set_vring_addr,
                           set_vring_base, set_vring_kick})
                CHECK_MESSAGE(count_of(log, r, true) >= 1, "QEMU never sent request ", r);
            CHECK(connected());
            CHECK(on_io(io, [&] { return be.stats().frontends; }) == run);

            // QEMU killed: the backend drops it cleanly and waits for the next.
            ::kill(pid, SIGKILL);
            for (int i = 0; i < 300 && connected(); ++i)
                std::this_thread::sleep_for(10ms);
            CHECK(!connected());
            CHECK(on_io(io, [&] { return be.stats().last_frontend_error; }) ==
                  cz::vsock::errc::frontend_disconnected);
        }
    }
}
