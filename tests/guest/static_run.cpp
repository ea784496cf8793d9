// A tiny program linked the way cz-init will be (-static, with libseccomp.a): it proves the
// runtime links statically and works so. Usage: guest_static_run ROOTFS ARG...
// Runs ARG... in a container on ROOTFS (pid, mount, uts, ipc namespaces; proc and a /dev
// tmpfs; a seccomp filter that denies mkdir) and exits with its status.
#include "runtime/container.hpp"
#include "runtime/process.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s ROOTFS ARG...\n", argv[0]);
        return 2;
    }
    nlohmann::json spec = {
        {"process",
         {{"args", std::vector<std::string>(argv + 2, argv + argc)},
          {"cwd", "/"},
          {"env", {"PATH=/bin"}}}},
        {"root", {{"path", argv[1]}}},
        {"hostname", "static"},
        {"mounts",
         {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
          {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"}}}},
        {"linux",
         {{"namespaces",
           {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "uts"}}, {{"type", "ipc"}}}},
          {"seccomp",
           {{"defaultAction", "SCMP_ACT_ALLOW"},
            {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}}}}}}}}};
    cz::guest::error err;
    auto parsed = cz::guest::parse_spec(spec.dump(), err);
    if (!err) {
        auto c = cz::guest::spawn(parsed, {}, {}, err);
        if (!err) return cz::guest::wait(c.init);
    }
    std::fprintf(stderr, "guest_static_run: %s: %s\n", err.message.c_str(),
                 err.code.message().c_str());
    int status = cz::guest::exec_failure_status(err);
    return status < 0 ? 1 : status;
}
