// Out-of-line definitions for cz/vsock/guest_memory.hpp.
#pragma once

#include <cz/vsock/guest_memory.hpp>

#include <sys/mman.h>

#include <cerrno>
#include <limits>
#include <utility>

namespace cz::vsock {

CZ_DECL guest_memory& guest_memory::operator=(guest_memory&& other) noexcept {
    if (this != &other) {
        clear();
        regions_ = std::exchange(other.regions_, {});
        mappings_ = std::exchange(other.mappings_, {});
    }
    return *this;
}

CZ_DECL guest_memory::~guest_memory() { clear(); }

CZ_DECL void guest_memory::clear() noexcept {
    for (auto& m : mappings_) ::munmap(m.addr, m.len);
    mappings_.clear();
    regions_.clear();
}

CZ_DECL void guest_memory::add_region(const memory_region& r, std::error_code& ec) {
    ec.clear();
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    if (r.size == 0 || r.host == nullptr || r.gpa > max - r.size || r.uaddr > max - r.size ||
        regions_.size() >= max_memory_regions) {
        ec = errc::protocol_error;
        return;
    }
    for (const auto& o : regions_) {
        bool gpa_overlap = r.gpa < o.gpa + o.size && o.gpa < r.gpa + r.size;
        bool uva_overlap = r.uaddr < o.uaddr + o.size && o.uaddr < r.uaddr + r.size;
        if (gpa_overlap || uva_overlap) {
            ec = errc::protocol_error;
            return;
        }
    }
    regions_.push_back(r);
}

CZ_DECL void guest_memory::map_region(int fd, std::uint64_t gpa, std::uint64_t size,
                                      std::uint64_t uaddr, std::uint64_t mmap_offset,
                                      std::error_code& ec) {
    ec.clear();
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    if (size == 0 || size > std::numeric_limits<std::size_t>::max() || mmap_offset > max - size ||
        mmap_offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
        ec = errc::protocol_error;
        return;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                     static_cast<off_t>(mmap_offset));
    if (p == MAP_FAILED) {
        ec = {errno, std::system_category()};
        return;
    }
    add_region({gpa, size, uaddr, static_cast<std::byte*>(p)}, ec);
    if (ec) {
        ::munmap(p, size);
        return;
    }
    mappings_.push_back({p, static_cast<std::size_t>(size)});
}

CZ_DECL std::byte* guest_memory::translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
    for (const auto& r : regions_) {
        if (gpa < r.gpa) continue;
        std::uint64_t off = gpa - r.gpa;
        if (off > r.size || len > r.size - off) continue;
        // SAFETY: off + len <= r.size was checked just above without overflow, and
        // [host, host + size) is the region's mapping.
        return r.host + off;
    }
    return nullptr;
}

CZ_DECL std::uint64_t guest_memory::uva_to_gpa(std::uint64_t uva, std::uint64_t len,
                                               std::error_code& ec) const noexcept {
    ec.clear();
    for (const auto& r : regions_) {
        if (uva < r.uaddr) continue;
        std::uint64_t off = uva - r.uaddr;
        if (off > r.size || len > r.size - off) continue;
        return r.gpa + off;
    }
    ec = errc::address_out_of_range;
    return 0;
}

} // namespace cz::vsock
