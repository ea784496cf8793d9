// cz/vsock/guest_memory.hpp — the guest's RAM as the backend sees it, with bounds-checked
// translation.
//
// QEMU sends its memory table in SET_MEM_TABLE: for each region the guest-physical address (GPA),
// the size, QEMU's own virtual address of the region (UVA, what SET_VRING_ADDR uses) and a memfd
// with an offset. The backend maps each fd MAP_SHARED. Every address and length the guest (or
// QEMU) hands us goes through `translate`/`uva_to_gpa`, which accept a range only when it lies
// entirely inside one region, with overflow-safe arithmetic. Nothing else in cz/vsock does
// pointer arithmetic on guest addresses.
//
// Tests and the fuzz target build a guest_memory over plain heap buffers with `add_region`.
#pragma once

#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>
#include <cz/vsock/error.hpp>

#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace cz::vsock {

struct memory_region {
    std::uint64_t gpa = 0;   // guest-physical start
    std::uint64_t size = 0;  // bytes
    std::uint64_t uaddr = 0; // the frontend's (QEMU's) virtual address of gpa
    std::byte* host = nullptr; // where gpa is mapped in this process
};

// At most this many regions (VHOST_MEMORY_BASELINE_NREGIONS in vhost-user).
inline constexpr std::size_t max_memory_regions = 8;

class guest_memory {
public:
    guest_memory() = default;
    guest_memory(guest_memory&&) noexcept = default;
    guest_memory& operator=(guest_memory&&) noexcept;
    guest_memory(const guest_memory&) = delete;
    guest_memory& operator=(const guest_memory&) = delete;
    ~guest_memory();

    // Adds a region backed by memory the caller owns (tests, fuzzing). Rejects empty regions,
    // ranges that overflow, overlaps with existing regions and more than max_memory_regions.
    CZ_DECL void add_region(const memory_region& r, std::error_code& ec);

    // Maps `size` bytes of `fd` at file offset `mmap_offset` (MAP_SHARED) and adds the region;
    // the mapping is unmapped when this object is destroyed or cleared. `fd` is not kept.
    CZ_DECL void map_region(int fd, std::uint64_t gpa, std::uint64_t size, std::uint64_t uaddr,
                            std::uint64_t mmap_offset, std::error_code& ec);

    // Unmaps everything.
    CZ_DECL void clear() noexcept;

    // A host pointer to [gpa, gpa+len) when that range lies inside one region, else nullptr.
    // len == 0 is accepted for any gpa inside (or at the end of) a region.
    CZ_DECL std::byte* translate(std::uint64_t gpa, std::uint64_t len) const noexcept;

    // The GPA of the frontend virtual address range [uva, uva+len) when it lies inside one
    // region (SET_VRING_ADDR carries QEMU's virtual addresses), else errc::address_out_of_range.
    CZ_DECL std::uint64_t uva_to_gpa(std::uint64_t uva, std::uint64_t len,
                                     std::error_code& ec) const noexcept;

    const std::vector<memory_region>& regions() const noexcept { return regions_; }
    bool empty() const noexcept { return regions_.empty(); }

private:
    struct mapping {
        void* addr;
        std::size_t len;
    };
    std::vector<memory_region> regions_;
    std::vector<mapping> mappings_;
};

} // namespace cz::vsock

#if CZ_HEADER_ONLY
#include <cz/vsock/impl/guest_memory.ipp>
#endif
