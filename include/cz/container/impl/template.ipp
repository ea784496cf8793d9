// Out-of-line definitions for cz/container/template.hpp.
#pragma once

#include <cz/container/template.hpp>

#include <fmt/format.h>

#include <sys/random.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace cz::container {

CZ_DECL vm::config template_vm_config(vm::config cfg, const std::string& cmdline) {
    cfg.append = cmdline;
    return cfg;
}

CZ_DECL cz_agent_Awaken make_awaken(const std::string& hostname, std::error_code& ec) {
    ec.clear();
    cz_agent_Awaken a{};
    unsigned char id[16];
    std::size_t got = 0;
    while (got < sizeof a.seed.bytes) {
        auto n = ::getrandom(a.seed.bytes + got, sizeof a.seed.bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ec = std::error_code(errno, std::generic_category());
            return a;
        }
        got += static_cast<std::size_t>(n);
    }
    a.seed.size = static_cast<pb_size_t>(got);
    if (::getrandom(id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
        ec = std::error_code(errno, std::generic_category());
        return a;
    }
    std::string machine_id;
    for (unsigned char b : id)
        machine_id += fmt::format("{:02x}", b);
    agent::set_string(a.machine_id, machine_id, ec);
    if (!ec) agent::set_string(a.hostname, hostname, ec);
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    a.seconds = now.tv_sec;
    a.nanoseconds = static_cast<std::uint32_t>(now.tv_nsec);
    return a;
}

CZ_DECL cz_agent_MountRootfs make_mount_rootfs(bool scratch) {
    cz_agent_MountRootfs m{};
    std::error_code ignored; // both fit: the fields hold 4096 bytes
    agent::set_string(m.image_device, "/dev/vda", ignored);
    if (scratch) agent::set_string(m.scratch_device, "/dev/vdb", ignored);
    return m;
}

} // namespace cz::container
