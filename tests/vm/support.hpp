// What the programs that boot test VMs share (tests/vm, tests/vsock/vm, the vsock benchmark):
// where the sources and the test root are, Debian's kernel fetched on first use, the test
// initramfs, a thread that runs an io_context between a VM's synchronous calls, and the byte
// pattern and checksum that vsock_guest (tests/vsock/vm/vsock_guest.cpp) sends and checks.
//
// Failures throw (std::runtime_error, or cz's errors): doctest reports them with their message,
// and the benchmark, which has no doctest, stops with it.
#pragma once

#include <cz/vm/config.hpp>
#include <cz/vm/initramfs.hpp>
#include <cz/vm/kernel.hpp>

#include <asio/buffer.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cz::vm::test {

// An environment variable that `meson test` sets (see tests/vsock/meson.build: vm_test_env).
inline std::filesystem::path required_env_path(const char* name) {
    const char* value = std::getenv(name);
    if (!value) throw std::runtime_error(std::string(name) + " not set (run through meson test)");
    return value;
}

inline std::filesystem::path source_root() {
    return required_env_path("CZ_SOURCE_ROOT");
}

// Kernels and VM state of the tests: $CZ_TEST_ROOT (the build directory's test-root).
inline std::filesystem::path test_root() {
    const char* r = std::getenv("CZ_TEST_ROOT");
    return r ? std::filesystem::path(r) : std::filesystem::temp_directory_path() / "cz-test-root";
}

// tests/vsock's static guest program (vsock_guest.cpp): listens on vsock port 1234 for commands.
inline std::filesystem::path vsock_guest() {
    return required_env_path("CZ_VSOCK_GUEST");
}

// Debian's cloud kernel in the test root, fetched with kernel/fetch-debian-kernel.sh on first
// use. `needed_modules` (file names such as "virtio_console.ko") are modules the caller's guest
// loads: a kernel cached before the script fetched one of them is fetched again.
inline kernel_info debian_kernel(const std::vector<std::string>& needed_modules = {}) {
    auto has_needed = [&](const kernel_info& k) {
        return std::ranges::all_of(needed_modules, [&](const std::string& name) {
            return std::ranges::any_of(k.modules,
                                       [&](const auto& m) { return m.filename() == name; });
        });
    };
    std::error_code ec;
    auto cached = find_kernel(test_root(), kernel_flavor::debian, ec);
    if (!ec && has_needed(cached)) return cached;
    auto cmd = (source_root() / "kernel/fetch-debian-kernel.sh").string() + " " +
               (kernels_dir(test_root()) / "debian").string();
    if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error("fetching Debian's kernel failed: " + cmd);
    auto fetched = find_kernel(test_root(), kernel_flavor::debian);
    if (!has_needed(fetched)) {
        std::string names;
        for (const auto& name : needed_modules)
            names += " " + name;
        throw std::runtime_error("kernel/fetch-debian-kernel.sh does not fetch all of" + names);
    }
    return fetched;
}

// The minimal kernel: a cached one that matches kernel/minimal.config (the test root's, else the
// user's cz root), or one built into the test root (kernel/build-minimal-kernel.sh, ~5 minutes).
inline const kernel_info& minimal_kernel() {
    static const kernel_info k = [] {
        auto script = (source_root() / "kernel/build-minimal-kernel.sh").string();
        for (const auto& root : {test_root(), default_root()}) {
            auto dir = kernels_dir(root) / "minimal";
            auto check = script + " --check " + dir.string() + " 2>/dev/null";
            if (std::system(check.c_str()) == 0) return find_kernel(root, kernel_flavor::minimal);
        }
        auto build = script + " " + (kernels_dir(test_root()) / "minimal").string();
        if (std::system(build.c_str()) != 0)
            throw std::runtime_error("building the minimal kernel failed: " + build);
        return find_kernel(test_root(), kernel_flavor::minimal);
    }();
    return k;
}

// A test initramfs in the test root: busybox, vsock_guest (/bin/vsock_guest), `init` as /init,
// and the kernel's modules (/lib/modules, loaded by the init in /lib/modules/load-order).
inline std::filesystem::path make_test_initramfs(const kernel_info& k,
                                                 const std::filesystem::path& init,
                                                 const std::string& name) {
    auto path = test_root() / name;
    initramfs_builder b;
    b.init(init);
    b.add_file("bin/busybox", "/bin/busybox", 0755);
    b.add_file("bin/vsock_guest", vsock_guest(), 0755);
    b.add_modules(k.modules);
    b.write_gzip(path);
    return path;
}

// Runs an io_context on a thread of its own until stop(); the destructor stops it too, so a
// failed check that throws does not leave a joinable thread behind (std::terminate).
class io_thread {
public:
    explicit io_thread(asio::io_context& ctx)
        : ctx_(ctx), work_(asio::make_work_guard(ctx)), thread_([this] { ctx_.run(); }) {}
    ~io_thread() { stop(); }
    // Afterwards the io_context can be run again (by the VM's synchronous functions).
    void stop() {
        if (!thread_.joinable()) return;
        work_.reset();
        ctx_.stop();
        thread_.join();
        ctx_.restart();
    }

private:
    asio::io_context& ctx_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread thread_;
};

// How many processes have `arg` as one of their arguments (a virtiofsd serving a directory has
// "source=<dir>"). Reads /proc, so the search never finds itself as `pgrep -f` in a shell would.
inline int processes_with_arg(const std::string& arg) {
    int n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc", ec);
         !ec && it != std::filesystem::end(it); it.increment(ec)) {
        std::ifstream in(it->path() / "cmdline", std::ios::binary);
        std::string args{std::istreambuf_iterator<char>(in), {}};
        for (std::size_t i = 0; i < args.size();) {
            auto end = args.find('\0', i);
            if (end == std::string::npos) end = args.size();
            if (args.compare(i, end - i, arg) == 0) ++n;
            i = end + 1;
        }
    }
    return n;
}

// vsock_guest's byte pattern: byte i of every "source"/"sink"/"dial" transfer.
inline std::uint8_t pattern_byte(std::uint64_t i) {
    return static_cast<std::uint8_t>((i * 2654435761u) >> 13);
}

// FNV-1a 64, the checksum vsock_guest reports for what it received.
struct fnv64 {
    std::uint64_t h = 1469598103934665603ull;
    void add(const unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            h = (h ^ p[i]) * 1099511628211ull;
    }
    std::string hex() const {
        char b[17];
        std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
        return b;
    }
};

// The checksum of the first n bytes of the pattern.
inline std::string pattern_sum(std::uint64_t n) {
    fnv64 f;
    std::vector<unsigned char> b(1 << 16);
    for (std::uint64_t off = 0; off < n; off += b.size()) {
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(b.size(), n - off));
        for (std::size_t i = 0; i < k; ++i)
            b[i] = pattern_byte(off + i);
        f.add(b.data(), k);
    }
    return f.hex();
}

// Writes the first n bytes of the pattern to a synchronous stream.
template <class Stream>
void write_pattern(Stream& s, std::uint64_t n) {
    std::vector<unsigned char> b(1 << 18);
    for (std::uint64_t off = 0; off < n; off += b.size()) {
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(b.size(), n - off));
        for (std::size_t i = 0; i < k; ++i)
            b[i] = pattern_byte(off + i);
        asio::write(s, asio::buffer(b.data(), k));
    }
}

// Everything a synchronous stream yields until EOF or an error.
template <class Stream>
std::string read_to_eof(Stream& s) {
    std::string out;
    char buf[4096];
    std::error_code ec;
    for (;;) {
        auto n = s.read_some(asio::buffer(buf), ec);
        out.append(buf, n);
        if (ec) break;
    }
    return out;
}

} // namespace cz::vm::test
