#include "runtime/capabilities.hpp"

#include "runtime/names.hpp"

#include <cerrno>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cz::guest {

namespace {

// linux/capability.h, version 3: two 32-bit words per set.
constexpr std::uint32_t capability_version_3 = 0x20080522;
struct cap_header {
    std::uint32_t version;
    int pid;
};
struct cap_data {
    std::uint32_t effective;
    std::uint32_t permitted;
    std::uint32_t inheritable;
};

bool fail(error& err, const std::string& what) {
    err.set({errno, std::system_category()}, what);
    return false;
}

} // namespace

int last_capability() {
    // PR_CAPBSET_READ fails with EINVAL past the last capability; /proc may not be mounted.
    int last = 0;
    while (last < 63 && ::prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
        ++last;
    return last;
}

bool drop_bounding(std::uint64_t keep, error& err) {
    int last = last_capability();
    for (int c = 0; c <= last; ++c) {
        if (keep & (std::uint64_t(1) << c)) continue;
        if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
            return fail(err, "drop " + std::string(capability_name(c)) + " from the bounding set");
    }
    return true;
}

bool keep_capabilities(bool on, error& err) {
    if (::prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) != 0) return fail(err, "PR_SET_KEEPCAPS");
    return true;
}

bool apply_capabilities(const capability_spec& caps, error& err) {
    int last = last_capability();
    std::uint64_t known = last >= 63 ? ~std::uint64_t(0) : (std::uint64_t(1) << (last + 1)) - 1;
    cap_header header{capability_version_3, 0};
    cap_data data[2]{};
    for (int word = 0; word < 2; ++word) {
        auto part = [&](std::uint64_t set) {
            return static_cast<std::uint32_t>((set & known) >> (32 * word));
        };
        data[word].effective = part(caps.effective);
        data[word].permitted = part(caps.permitted);
        data[word].inheritable = part(caps.inheritable);
    }
    if (::syscall(SYS_capset, &header, data) != 0) return fail(err, "capset");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return fail(err, "clear the ambient set");
    for (int c = 0; c <= last; ++c) {
        if (!(caps.ambient & (std::uint64_t(1) << c))) continue;
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
            return fail(err, "raise ambient " + std::string(capability_name(c)));
    }
    return true;
}

} // namespace cz::guest
