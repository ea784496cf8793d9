#include "runtime/spec.hpp"

#include "support/support.hpp"

#include <sys/mount.h>
#include <sys/resource.h>

using namespace cz::guest;

namespace {

// A config.json in the shape `runc spec` writes, with the fields cz-init reads and a few it
// ignores ("annotations", "linux.devices", "process.apparmorProfile").
const char* full_spec = R"({
  "ociVersion": "1.0.2",
  "annotations": {"x": "y"},
  "process": {
    "terminal": true,
    "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 50]},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
    "cwd": "/work",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_KILL"],
      "permitted": ["CAP_KILL", "CAP_NET_RAW"],
      "ambient": null
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
    "noNewPrivileges": true,
    "apparmorProfile": "ignored"
  },
  "root": {"path": "/run/rootfs", "readonly": true},
  "hostname": "box",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ro", "rprivate"]},
    {"destination": "relative", "source": "/x", "options": ["bind"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"},
                   {"type": "cgroup"}],
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"],
    "devices": [],
    "resources": {"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000},
                  "pids": {"limit": 20}},
    "seccomp": {
      "defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
      ]
    }
  }
})";

// The smallest spec cz-init accepts.
std::string minimal(const std::string& extra_process = "", const std::string& extra = "") {
    return R"({"process": {"args": ["true"], "cwd": "/")" + extra_process +
           R"(}, "root": {"path": "/r"}, "linux": {"namespaces": [{"type": "mount"}]})" + extra +
           "}";
}

// Parses and returns the error message (empty when it parsed).
std::string error_of(const std::string& json) {
    error err;
    parse_spec(json, err);
    return err.message;
}

} // namespace

TEST_SUITE("guest") {

    TEST_CASE("spec: every field cz-init reads") {
        error err;
        auto s = parse_spec(full_spec, err);
        REQUIRE_MESSAGE(!err, err.message);
        CHECK(s.oci_version == "1.0.2");
        CHECK(s.process.terminal);
        REQUIRE(s.process.console);
        CHECK(s.process.console->height == 24);
        CHECK(s.process.console->width == 80);
        CHECK(s.process.user.uid == 1000);
        CHECK(s.process.user.additional_gids == std::vector<std::uint32_t>{10, 50});
        CHECK(s.process.args.size() == 3);
        CHECK(s.process.env[1] == "TERM=xterm");
        CHECK(s.process.cwd == "/work");
        REQUIRE(s.process.capabilities);
        CHECK(s.process.capabilities->bounding == ((1u << 29) | (1u << 5) | (1u << 10)));
        CHECK(s.process.capabilities->effective == (1u << 5));
        CHECK(s.process.capabilities->permitted == ((1u << 5) | (1u << 13)));
        CHECK(s.process.capabilities->inheritable == 0);
        CHECK(s.process.capabilities->ambient == 0);
        REQUIRE(s.process.rlimits.size() == 1);
        CHECK(s.process.rlimits[0].resource == RLIMIT_NOFILE);
        CHECK(s.process.rlimits[0].soft == 512);
        CHECK(s.process.no_new_privileges);
        CHECK(s.root.path == "/run/rootfs");
        CHECK(s.root.readonly);
        CHECK(s.hostname == "box");
        REQUIRE(s.mounts.size() == 5);
        CHECK(s.mounts[1].flags == (MS_NOSUID | MS_STRICTATIME));
        CHECK(s.mounts[1].data == "mode=755,size=65536k");
        CHECK(s.mounts[2].data == "newinstance,ptmxmode=0666,mode=0620,gid=5");
        CHECK(s.mounts[3].bind());
        CHECK(s.mounts[3].flags == (MS_BIND | MS_REC | MS_RDONLY));
        CHECK(s.mounts[3].propagation == (MS_PRIVATE | MS_REC));
        CHECK(s.mounts[4].destination == "/relative");
        CHECK(s.mounts[4].bind());
        CHECK(s.namespaces.size() == 5);
        CHECK(s.has_namespace(namespace_kind::cgroup));
        CHECK(!s.has_namespace(namespace_kind::network));
        CHECK(s.masked_paths == std::vector<std::string>{"/proc/kcore"});
        CHECK(s.readonly_paths == std::vector<std::string>{"/proc/sys"});
        CHECK(s.resources.memory_limit == 67108864);
        CHECK(s.resources.cpu_quota == 50000);
        CHECK(s.resources.cpu_period == 100000u);
        CHECK(s.resources.pids_limit == 20);
        REQUIRE(s.seccomp);
        CHECK(s.seccomp->default_action == seccomp_action::allow);
        REQUIRE(s.seccomp->syscalls.size() == 2);
        CHECK(s.seccomp->syscalls[0].action == seccomp_action::errno_ret);
        CHECK(s.seccomp->syscalls[0].errno_ret == 1u);
        REQUIRE(s.seccomp->syscalls[1].args.size() == 1);
        CHECK(s.seccomp->syscalls[1].args[0].value == 8);
        CHECK(s.seccomp->syscalls[1].args[0].op == seccomp_op::equal);
    }

    TEST_CASE("spec: defaults of a minimal spec") {
        auto s = parse_spec(minimal());
        CHECK(!s.process.terminal);
        CHECK(!s.process.capabilities); // absent: left alone, not emptied
        CHECK(s.process.user.uid == 0);
        CHECK(!s.root.readonly);
        CHECK(s.resources.empty());
        CHECK(!s.seccomp);
        // Go writes null for empty slices; null reads as absent.
        CHECK(
            error_of(minimal(R"(, "env": null, "rlimits": null)", R"(, "mounts": null)")).empty());
        // Zero limits are "unset", as in runc.
        auto z = parse_spec(R"({"process": {"args": ["true"], "cwd": "/"}, "root": {"path": "/r"},
        "linux": {"namespaces": [{"type": "mount"}], "resources": {"memory": {"limit": 0},
                  "cpu": {"quota": 0, "period": 0}, "pids": {"limit": 0}}}})");
        CHECK(z.resources.empty());
        // Unknown fields are ignored, as runc does, even ones with odd types.
        CHECK(error_of(minimal(R"(, "selinuxLabel": 7)", R"(, "vm": [1, 2])")).empty());
    }

    TEST_CASE("spec: errors name the JSON path") {
        CHECK(error_of("{") ==
              "config.json: at offset 1: not valid JSON (syntax error while parsing "
              "object key - unexpected end of input; expected string literal)");
        CHECK(error_of(R"({"a": tru})").rfind("config.json: at offset 9: not valid JSON", 0) == 0);
        CHECK(error_of("[]") == "config.json: expected an object");
        // Found by the fuzzer: a number beyond a double is nlohmann's out_of_range, not
        // parse_error.
        CHECK(error_of(R"({"x": 1E400})") ==
              "config.json: not valid JSON (number overflow parsing '1E400')");
        CHECK(error_of(R"({"root": {"path": "/r"}})") == "process: missing");
        CHECK(error_of(minimal(R"(, "terminal": "yes")")) ==
              "process.terminal: expected true or false");
        CHECK(error_of(minimal(R"(, "user": {"uid": -1})")) ==
              "process.user.uid: expected an unsigned integer");
        CHECK(error_of(minimal(R"(, "user": {"uid": 4294967296})")) ==
              "process.user.uid: 4294967296 is out of range (max 2147483647)");
        CHECK(error_of(minimal(R"(, "user": {"additionalGids": [1, "2"]})")) ==
              "process.user.additionalGids[1]: expected an unsigned integer");
        CHECK(error_of(minimal(R"(, "user": {"uid": 1.5})")) ==
              "process.user.uid: expected an unsigned integer");
        CHECK(error_of(minimal(R"(, "env": ["A=1", "B"])")) ==
              "process.env[1]: \"B\" is not NAME=VALUE");
        CHECK(error_of(minimal(R"(, "env": ["A=\u0000"])")) ==
              "process.env[0]: contains a NUL byte");
        CHECK(error_of(minimal(R"(, "capabilities": {"ambient": ["CAP_NET_RAW", "CAP_FLY"]})")) ==
              "process.capabilities.ambient[1]: unknown capability \"CAP_FLY\"");
        CHECK(error_of(minimal(R"(, "rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}])")) ==
              "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
        CHECK(error_of(
                  minimal(R"(, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}])")) ==
              "process.rlimits[0]: soft limit is above the hard limit");
        CHECK(error_of(minimal(R"(, "rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                                            {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}])")) ==
              "process.rlimits[1].type: \"RLIMIT_CORE\" is given twice");
        CHECK(error_of(minimal(R"(, "consoleSize": {"height": 70000})")) ==
              "process.consoleSize.height: 70000 is out of range (max 65535)");
        CHECK(error_of(R"({"process": {"args": [], "cwd": "/"}, "root": {"path": "/r"}})") ==
              "process.args: must name a program");
        CHECK(error_of(R"({"process": {"args": ["x"], "cwd": "rel"}, "root": {"path": "/r"}})") ==
              "process.cwd: \"rel\" is not absolute");
        CHECK(error_of(R"({"process": {"args": ["x"], "cwd": "/"}, "root": {"path": "r"}})") ==
              "root.path: \"r\" is not absolute");
        CHECK(error_of(minimal("", R"(, "mounts": [{"destination": "/x"}])")) ==
              "mounts[0].type: missing (only bind mounts may leave it out)");
        CHECK(error_of(minimal("", R"(, "mounts": [{"destination": "/x", "type": "bind"}])")) ==
              "mounts[0].source: a bind mount needs one");
        CHECK(error_of(minimal("", R"(, "hostname": "h")")) ==
              "hostname: setting it needs a uts namespace");
    }

    TEST_CASE("spec: the linux section's errors") {
        auto lin = [](const std::string& body) {
            return error_of(R"({"process": {"args": ["x"], "cwd": "/"}, "root": {"path": "/r"},
                           "linux": {"namespaces": [{"type": "mount"}], )" +
                            body + "}}");
        };
        CHECK(lin(R"("maskedPaths": ["proc/kcore"])") ==
              "linux.maskedPaths[0]: \"proc/kcore\" is not absolute");
        CHECK(lin(R"("resources": {"memory": {"limit": -2}})") ==
              "linux.resources.memory.limit: must be -1 or more");
        CHECK(lin(R"("resources": {"cpu": {"period": 10}})") ==
              "linux.resources.cpu.period: must be between 1000 and 1000000");
        CHECK(lin(R"("resources": {"pids": {"limit": "20"}})") ==
              "linux.resources.pids.limit: expected a signed 64-bit integer");
        CHECK(lin(R"("seccomp": {})") == "linux.seccomp.defaultAction: missing");
        CHECK(lin(R"("seccomp": {"defaultAction": "SCMP_ACT_MAYBE"})") ==
              "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_MAYBE\"");
        CHECK(
            lin(R"("seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]})") ==
            "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\"");
        CHECK(lin(R"("seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
               "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})") ==
              "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (max 5)");
        CHECK(lin(R"("seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [],
               "action": "SCMP_ACT_ERRNO"}]})") ==
              "linux.seccomp.syscalls[0].names: must name at least one syscall");
        CHECK(
            lin(R"("seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
               "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]})") ==
            "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_SIMILAR\"");

        error err;
        parse_spec(R"({"process": {"args": ["x"], "cwd": "/"}, "root": {"path": "/r"},
                  "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}]}})",
                   err);
        CHECK(err.code == errc::unsupported);
        CHECK(err.message.rfind("linux.namespaces[1]: user namespaces", 0) == 0);
        parse_spec(R"({"process": {"args": ["x"], "cwd": "/"}, "root": {"path": "/r"},
                  "linux": {"namespaces": [{"type": "mount"}, {"type": "mount"}]}})",
                   err);
        CHECK(err.message == "linux.namespaces[1].type: \"mount\" is given twice");
        parse_spec(R"({"process": {"args": ["x"], "cwd": "/"}, "root": {"path": "/r"}})", err);
        CHECK(err.code == errc::unsupported);
        CHECK_THROWS_AS(parse_spec("nope"), runtime_error);
    }

    TEST_CASE("spec: a process object alone, for exec") {
        auto p = parse_process(
            R"({"args": ["ps"], "cwd": "/tmp", "env": ["A=b"], "user": {"username": "alice"}})");
        CHECK(p.args == std::vector<std::string>{"ps"});
        CHECK(p.user.username == "alice");
        error err;
        parse_process(R"({"args": ["ps"]})", err);
        CHECK(err.message == "process.cwd: missing");
    }

} // TEST_SUITE
