#include "runtime/error.hpp"

namespace cz::guest {

namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cz.guest"; }
    std::string message(int e) const override {
        switch (static_cast<errc>(e)) {
        case errc::invalid_spec:
            return "invalid runtime spec";
        case errc::unsupported:
            return "not supported by cz-init";
        case errc::unknown_user:
            return "no such user in the container's /etc/passwd";
        case errc::unknown_group:
            return "no such group in the container's /etc/group";
        case errc::id_out_of_range:
            return "uid or gid out of range";
        case errc::cgroup_unavailable:
            return "cgroup v2 controller unavailable";
        case errc::setup_failed:
            return "container setup failed";
        }
        return "unknown cz.guest error";
    }
};

} // namespace

const std::error_category& guest_category() noexcept {
    static const category c;
    return c;
}

} // namespace cz::guest
