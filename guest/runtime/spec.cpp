// Parsing config.json: a small typed walk over nlohmann::json that keeps the JSON path of the
// value in hand, so that every error names it ("linux.seccomp.syscalls[3].args[0].op: ...").
#include "runtime/spec.hpp"

#include "runtime/names.hpp"

#include <nlohmann/json.hpp>

#include <limits>
#include <sys/mount.h>

namespace cz::guest {

bool mount_spec::bind() const noexcept {
    return (flags & MS_BIND) != 0;
}

bool runtime_spec::has_namespace(namespace_kind k) const noexcept {
    for (const auto& n : namespaces)
        if (n.kind == k) return true;
    return false;
}

namespace {

using json = nlohmann::json;

// A config.json is a few kilobytes; anything near this is not one, and parsing it would only
// cost memory.
constexpr std::size_t max_spec_size = 4 << 20;

// The walk: each get_* checks a type and a range, and on failure records the first error with
// the path and returns false, so callers can write `if (!get_x(...)) return false;`.
struct walker {
    error& err;

    bool fail(const std::string& path, const std::string& what) {
        if (!err) err.set(errc::invalid_spec, path + ": " + what);
        return false;
    }
    bool unsupported(const std::string& path, const std::string& what) {
        if (!err) err.set(errc::unsupported, path + ": " + what);
        return false;
    }

    // A member, or null when it is absent or JSON null (Go's encoder writes null for empty
    // slices, and runc reads both the same way).
    static const json* member(const json& obj, const char* key) {
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return nullptr;
        return &*it;
    }

    bool object(const json& j, const std::string& path) {
        return j.is_object() || fail(path, "expected an object");
    }

    bool string(const json& j, const std::string& path, std::string& out) {
        if (!j.is_string()) return fail(path, "expected a string");
        const auto& s = j.get_ref<const std::string&>();
        // Every string here ends up in a system call, where a NUL would cut it short.
        if (s.find('\0') != std::string::npos) return fail(path, "contains a NUL byte");
        out = s;
        return true;
    }

    bool boolean(const json& j, const std::string& path, bool& out) {
        if (!j.is_boolean()) return fail(path, "expected true or false");
        out = j.get<bool>();
        return true;
    }

    bool u64(const json& j, const std::string& path, std::uint64_t& out) {
        if (j.is_number_unsigned()) {
            out = j.get<std::uint64_t>();
            return true;
        }
        if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
            out = static_cast<std::uint64_t>(j.get<std::int64_t>());
            return true;
        }
        return fail(path, "expected an unsigned integer");
    }

    bool i64(const json& j, const std::string& path, std::int64_t& out) {
        if (j.is_number_integer() && !j.is_number_unsigned()) {
            out = j.get<std::int64_t>();
            return true;
        }
        if (j.is_number_unsigned() &&
            j.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
            out = static_cast<std::int64_t>(j.get<std::uint64_t>());
            return true;
        }
        return fail(path, "expected a signed 64-bit integer");
    }

    bool u32(const json& j, const std::string& path, std::uint32_t& out, std::uint64_t max) {
        std::uint64_t v = 0;
        if (!u64(j, path, v)) return false;
        if (v > max)
            return fail(path,
                        std::to_string(v) + " is out of range (max " + std::to_string(max) + ")");
        out = static_cast<std::uint32_t>(v);
        return true;
    }

    bool absolute_path(const json& j, const std::string& path, std::string& out) {
        if (!string(j, path, out)) return false;
        if (out.empty() || out.front() != '/') return fail(path, "\"" + out + "\" is not absolute");
        return true;
    }

    // An optional array of strings (absent = empty).
    bool strings(const json& obj, const char* key, const std::string& path,
                 std::vector<std::string>& out) {
        const json* a = member(obj, key);
        if (!a) return true;
        if (!a->is_array()) return fail(path, "expected an array of strings");
        out.clear();
        for (std::size_t i = 0; i < a->size(); ++i) {
            std::string s;
            if (!string((*a)[i], path + "[" + std::to_string(i) + "]", s)) return false;
            out.push_back(std::move(s));
        }
        return true;
    }

    template <class F>
    bool array(const json& obj, const char* key, const std::string& path, F&& each) {
        const json* a = member(obj, key);
        if (!a) return true;
        if (!a->is_array()) return fail(path, "expected an array");
        for (std::size_t i = 0; i < a->size(); ++i)
            if (!each((*a)[i], path + "[" + std::to_string(i) + "]")) return false;
        return true;
    }

    // --- process ------------------------------------------------------------------------

    bool user(const json& j, const std::string& path, user_spec& u) {
        if (!object(j, path)) return false;
        if (auto v = member(j, "uid"); v && !u32(*v, path + ".uid", u.uid, max_id_value))
            return false;
        if (auto v = member(j, "gid"); v && !u32(*v, path + ".gid", u.gid, max_id_value))
            return false;
        if (!array(j, "additionalGids", path + ".additionalGids",
                   [&](const json& g, const std::string& p) {
                       std::uint32_t gid = 0;
                       if (!u32(g, p, gid, max_id_value)) return false;
                       u.additional_gids.push_back(gid);
                       return true;
                   }))
            return false;
        if (auto v = member(j, "username"); v && !string(*v, path + ".username", u.username))
            return false;
        return true;
    }

    bool capability_set(const json& caps, const char* key, const std::string& path,
                        std::uint64_t& mask) {
        return array(caps, key, path + "." + key, [&](const json& c, const std::string& p) {
            std::string name;
            if (!string(c, p, name)) return false;
            auto cap = capability_from_name(name);
            if (!cap) return fail(p, "unknown capability \"" + name + "\"");
            mask |= std::uint64_t(1) << *cap;
            return true;
        });
    }

    bool capabilities(const json& j, const std::string& path, capability_spec& c) {
        return object(j, path) && capability_set(j, "bounding", path, c.bounding) &&
               capability_set(j, "effective", path, c.effective) &&
               capability_set(j, "inheritable", path, c.inheritable) &&
               capability_set(j, "permitted", path, c.permitted) &&
               capability_set(j, "ambient", path, c.ambient);
    }

    bool rlimit(const json& j, const std::string& path, process_spec& p) {
        if (!object(j, path)) return false;
        rlimit_spec r;
        const json* type = member(j, "type");
        if (!type) return fail(path + ".type", "missing");
        if (!string(*type, path + ".type", r.type)) return false;
        auto res = rlimit_from_name(r.type);
        if (!res) return fail(path + ".type", "unknown rlimit \"" + r.type + "\"");
        r.resource = *res;
        for (const auto& other : p.rlimits)
            if (other.resource == r.resource)
                return fail(path + ".type", "\"" + r.type + "\" is given twice");
        const json* soft = member(j, "soft");
        const json* hard = member(j, "hard");
        if (!soft) return fail(path + ".soft", "missing");
        if (!hard) return fail(path + ".hard", "missing");
        if (!u64(*soft, path + ".soft", r.soft) || !u64(*hard, path + ".hard", r.hard))
            return false;
        if (r.soft > r.hard) return fail(path, "soft limit is above the hard limit");
        p.rlimits.push_back(std::move(r));
        return true;
    }

    bool process(const json& j, const std::string& path, process_spec& p) {
        if (!object(j, path)) return false;
        if (auto v = member(j, "terminal"); v && !boolean(*v, path + ".terminal", p.terminal))
            return false;
        if (auto v = member(j, "consoleSize")) {
            const std::string cp = path + ".consoleSize";
            if (!object(*v, cp)) return false;
            console_size cs;
            std::uint32_t h = 0, w = 0;
            if (auto x = member(*v, "height"); x && !u32(*x, cp + ".height", h, 0xffff))
                return false;
            if (auto x = member(*v, "width"); x && !u32(*x, cp + ".width", w, 0xffff)) return false;
            cs.height = static_cast<std::uint16_t>(h);
            cs.width = static_cast<std::uint16_t>(w);
            p.console = cs;
        }
        if (auto v = member(j, "user"); v && !user(*v, path + ".user", p.user)) return false;
        if (!strings(j, "args", path + ".args", p.args)) return false;
        if (p.args.empty()) return fail(path + ".args", "must name a program");
        if (!strings(j, "env", path + ".env", p.env)) return false;
        for (std::size_t i = 0; i < p.env.size(); ++i) {
            auto eq = p.env[i].find('=');
            if (eq == std::string::npos || eq == 0)
                return fail(path + ".env[" + std::to_string(i) + "]",
                            "\"" + p.env[i] + "\" is not NAME=VALUE");
        }
        const json* cwd = member(j, "cwd");
        if (!cwd) return fail(path + ".cwd", "missing");
        if (!absolute_path(*cwd, path + ".cwd", p.cwd)) return false;
        if (auto v = member(j, "capabilities")) {
            capability_spec c;
            if (!capabilities(*v, path + ".capabilities", c)) return false;
            p.capabilities = c;
        }
        if (!array(j, "rlimits", path + ".rlimits",
                   [&](const json& r, const std::string& rp) { return rlimit(r, rp, p); }))
            return false;
        if (auto v = member(j, "noNewPrivileges");
            v && !boolean(*v, path + ".noNewPrivileges", p.no_new_privileges))
            return false;
        return true;
    }

    // --- mounts -------------------------------------------------------------------------

    bool mount(const json& j, const std::string& path, mount_spec& m) {
        if (!object(j, path)) return false;
        const json* dest = member(j, "destination");
        if (!dest) return fail(path + ".destination", "missing");
        if (!string(*dest, path + ".destination", m.destination)) return false;
        if (m.destination.empty()) return fail(path + ".destination", "is empty");
        // runc (1.2) reads a relative destination as relative to the container's root.
        if (m.destination.front() != '/') m.destination.insert(0, "/");
        if (auto v = member(j, "type"); v && !string(*v, path + ".type", m.type)) return false;
        if (auto v = member(j, "source"); v && !string(*v, path + ".source", m.source))
            return false;
        if (!strings(j, "options", path + ".options", m.options)) return false;
        for (const auto& o : m.options) {
            if (auto known = mount_option_from_name(o)) {
                m.flags = (m.flags & ~known->clear) | known->set;
                m.propagation |= known->propagation;
            } else {
                if (!m.data.empty()) m.data += ',';
                m.data += o;
            }
        }
        // A "bind" type without the option is still a bind mount (runtime-spec's example).
        if (m.type == "bind") m.flags |= MS_BIND;
        if (!m.bind() && m.type.empty())
            return fail(path + ".type", "missing (only bind mounts may leave it out)");
        if (m.bind() && m.source.empty()) return fail(path + ".source", "a bind mount needs one");
        return true;
    }

    // --- linux --------------------------------------------------------------------------

    bool namespaces(const json& lin, const std::string& path, runtime_spec& s) {
        return array(lin, "namespaces", path, [&](const json& j, const std::string& p) {
            if (!object(j, p)) return false;
            namespace_spec n;
            const json* type = member(j, "type");
            if (!type) return fail(p + ".type", "missing");
            if (!string(*type, p + ".type", n.type)) return false;
            auto kind = namespace_from_name(n.type);
            if (!kind) return fail(p + ".type", "unknown namespace \"" + n.type + "\"");
            n.kind = *kind;
            if (n.kind == namespace_kind::user)
                return unsupported(p, "user namespaces are not supported (cz-init is root in "
                                      "its own VM)");
            std::string ns_path;
            if (auto v = member(j, "path"); v && !string(*v, p + ".path", ns_path)) return false;
            if (!ns_path.empty())
                return unsupported(p + ".path", "joining an existing namespace is not supported");
            if (s.has_namespace(n.kind))
                return fail(p + ".type", "\"" + n.type + "\" is given twice");
            s.namespaces.push_back(std::move(n));
            return true;
        });
    }

    bool resources(const json& j, const std::string& path, resources_spec& r) {
        if (!object(j, path)) return false;
        if (auto mem = member(j, "memory")) {
            if (!object(*mem, path + ".memory")) return false;
            if (auto v = member(*mem, "limit")) {
                std::int64_t limit = 0;
                if (!i64(*v, path + ".memory.limit", limit)) return false;
                if (limit < -1) return fail(path + ".memory.limit", "must be -1 or more");
                if (limit != 0) r.memory_limit = limit; // 0 is "unset" in runc
            }
        }
        if (auto cpu = member(j, "cpu")) {
            if (!object(*cpu, path + ".cpu")) return false;
            if (auto v = member(*cpu, "quota")) {
                std::int64_t q = 0;
                if (!i64(*v, path + ".cpu.quota", q)) return false;
                if (q < -1) return fail(path + ".cpu.quota", "must be -1 or more");
                if (q != 0) r.cpu_quota = q;
            }
            if (auto v = member(*cpu, "period")) {
                std::uint64_t period = 0;
                if (!u64(*v, path + ".cpu.period", period)) return false;
                // cpu.max accepts periods from 1 ms to 1 s (kernel/sched/core.c).
                if (period != 0 && (period < 1000 || period > 1000000))
                    return fail(path + ".cpu.period", "must be between 1000 and 1000000");
                if (period != 0) r.cpu_period = period;
            }
        }
        if (auto pids = member(j, "pids")) {
            if (!object(*pids, path + ".pids")) return false;
            if (auto v = member(*pids, "limit")) {
                std::int64_t limit = 0;
                if (!i64(*v, path + ".pids.limit", limit)) return false;
                if (limit < -1) return fail(path + ".pids.limit", "must be -1 or more");
                if (limit != 0) r.pids_limit = limit;
            }
        }
        return true;
    }

    bool seccomp_action_of(const json& j, const std::string& path, seccomp_action& a) {
        std::string name;
        if (!string(j, path, name)) return false;
        if (name == "SCMP_ACT_NOTIFY")
            return unsupported(path, "SCMP_ACT_NOTIFY needs a seccomp agent, which cz-init has "
                                     "not");
        auto act = seccomp_action_from_name(name);
        if (!act) return fail(path, "unknown seccomp action \"" + name + "\"");
        a = *act;
        return true;
    }

    bool seccomp_arg_of(const json& j, const std::string& path, seccomp_rule& rule) {
        if (!object(j, path)) return false;
        seccomp_arg a;
        const json* index = member(j, "index");
        if (!index) return fail(path + ".index", "missing");
        std::uint32_t idx = 0;
        if (!u32(*index, path + ".index", idx, 5)) return false; // six syscall arguments
        a.index = idx;
        const json* value = member(j, "value");
        if (!value) return fail(path + ".value", "missing");
        if (!u64(*value, path + ".value", a.value)) return false;
        if (auto v = member(j, "valueTwo"); v && !u64(*v, path + ".valueTwo", a.value_two))
            return false;
        const json* op = member(j, "op");
        if (!op) return fail(path + ".op", "missing");
        std::string op_name;
        if (!string(*op, path + ".op", op_name)) return false;
        auto o = seccomp_op_from_name(op_name);
        if (!o) return fail(path + ".op", "unknown seccomp operator \"" + op_name + "\"");
        a.op = *o;
        rule.args.push_back(a);
        return true;
    }

    bool seccomp(const json& j, const std::string& path, seccomp_spec& sc) {
        if (!object(j, path)) return false;
        const json* def = member(j, "defaultAction");
        if (!def) return fail(path + ".defaultAction", "missing");
        if (!seccomp_action_of(*def, path + ".defaultAction", sc.default_action)) return false;
        if (auto v = member(j, "defaultErrnoRet")) {
            std::uint32_t e = 0;
            if (!u32(*v, path + ".defaultErrnoRet", e, 4095)) return false; // errno range
            sc.default_errno_ret = e;
        }
        if (!strings(j, "architectures", path + ".architectures", sc.architectures)) return false;
        for (std::size_t i = 0; i < sc.architectures.size(); ++i)
            if (!known_seccomp_arch(sc.architectures[i]))
                return fail(path + ".architectures[" + std::to_string(i) + "]",
                            "unknown architecture \"" + sc.architectures[i] + "\"");
        if (auto v = member(j, "listenerPath");
            v && !(v->is_string() && v->get_ref<const std::string&>().empty()))
            return unsupported(path + ".listenerPath", "seccomp agents are not supported");
        return array(j, "syscalls", path + ".syscalls", [&](const json& s, const std::string& p) {
            if (!object(s, p)) return false;
            seccomp_rule rule;
            if (!strings(s, "names", p + ".names", rule.names)) return false;
            if (rule.names.empty()) return fail(p + ".names", "must name at least one syscall");
            const json* act = member(s, "action");
            if (!act) return fail(p + ".action", "missing");
            if (!seccomp_action_of(*act, p + ".action", rule.action)) return false;
            if (auto v = member(s, "errnoRet")) {
                std::uint32_t e = 0;
                if (!u32(*v, p + ".errnoRet", e, 4095)) return false;
                rule.errno_ret = e;
            }
            if (!array(s, "args", p + ".args", [&](const json& a, const std::string& ap) {
                    return seccomp_arg_of(a, ap, rule);
                }))
                return false;
            sc.syscalls.push_back(std::move(rule));
            return true;
        });
    }

    bool path_list(const json& lin, const char* key, const std::string& path,
                   std::vector<std::string>& out) {
        return array(lin, key, path, [&](const json& j, const std::string& p) {
            std::string s;
            if (!absolute_path(j, p, s)) return false;
            out.push_back(std::move(s));
            return true;
        });
    }

    bool linux_section(const json& lin, runtime_spec& s) {
        if (!object(lin, "linux")) return false;
        if (!namespaces(lin, "linux.namespaces", s)) return false;
        if (!path_list(lin, "maskedPaths", "linux.maskedPaths", s.masked_paths)) return false;
        if (!path_list(lin, "readonlyPaths", "linux.readonlyPaths", s.readonly_paths)) return false;
        if (auto v = member(lin, "resources"); v && !resources(*v, "linux.resources", s.resources))
            return false;
        if (auto v = member(lin, "seccomp")) {
            seccomp_spec sc;
            if (!seccomp(*v, "linux.seccomp", sc)) return false;
            s.seccomp = std::move(sc);
        }
        return true;
    }

    bool spec(const json& j, runtime_spec& s) {
        if (!object(j, "config.json")) return false;
        if (auto v = member(j, "ociVersion"); v && !string(*v, "ociVersion", s.oci_version))
            return false;
        const json* proc = member(j, "process");
        if (!proc) return fail("process", "missing");
        if (!process(*proc, "process", s.process)) return false;
        const json* root = member(j, "root");
        if (!root) return fail("root", "missing");
        if (!object(*root, "root")) return false;
        const json* root_path = member(*root, "path");
        if (!root_path) return fail("root.path", "missing");
        // cz-init has no bundle directory a relative path could be relative to.
        if (!absolute_path(*root_path, "root.path", s.root.path)) return false;
        if (auto v = member(*root, "readonly"); v && !boolean(*v, "root.readonly", s.root.readonly))
            return false;
        if (auto v = member(j, "hostname"); v && !string(*v, "hostname", s.hostname)) return false;
        if (s.hostname.size() > 64) return fail("hostname", "longer than 64 bytes");
        if (!array(j, "mounts", "mounts", [&](const json& m, const std::string& p) {
                mount_spec ms;
                if (!mount(m, p, ms)) return false;
                s.mounts.push_back(std::move(ms));
                return true;
            }))
            return false;
        if (auto v = member(j, "linux"); v && !linux_section(*v, s)) return false;
        // What the rest of the runtime relies on, checked here so setup never fails halfway.
        if (!s.has_namespace(namespace_kind::mount))
            return unsupported("linux.namespaces", "cz-init needs a mount namespace (it "
                                                   "pivots into the root filesystem)");
        if (!s.hostname.empty() && !s.has_namespace(namespace_kind::uts))
            return fail("hostname", "setting it needs a uts namespace");
        return true;
    }

    static constexpr std::uint64_t max_id_value = 0x7fffffff;
};

bool parse_json(std::string_view text, json& out, error& err) {
    if (text.size() > max_spec_size) {
        err.set(errc::invalid_spec, "config.json: " + std::to_string(text.size()) +
                                        " bytes, more than the " + std::to_string(max_spec_size) +
                                        " allowed");
        return false;
    }
    try {
        out = json::parse(text.begin(), text.end());
        return true;
    } catch (const json::parse_error& e) {
        // nlohmann counts bytes from 1 and includes the one it stopped at; its what() begins
        // with "[json.exception...] parse error at line L, column C: " before the reason.
        std::string what = e.what();
        auto reason = what.find(": ", what.find("column"));
        err.set(errc::invalid_spec,
                "config.json: at offset " + std::to_string(e.byte ? e.byte - 1 : 0) +
                    ": not valid JSON" +
                    (reason == std::string::npos ? "" : " (" + what.substr(reason + 2) + ")"));
        return false;
    } catch (const json::exception& e) {
        // A number too large for a double ("1e999") is out_of_range, not a parse_error.
        std::string what = e.what();
        auto reason = what.find("] ");
        err.set(errc::invalid_spec,
                "config.json: not valid JSON (" +
                    (reason == std::string::npos ? what : what.substr(reason + 2)) + ")");
        return false;
    }
}

} // namespace

runtime_spec parse_spec(std::string_view text, error& err) {
    err.clear();
    json j;
    if (!parse_json(text, j, err)) return {};
    runtime_spec s;
    if (!walker{err}.spec(j, s)) return {};
    return s;
}

runtime_spec parse_spec(std::string_view text) {
    error err;
    auto s = parse_spec(text, err);
    throw_if(err);
    return s;
}

process_spec parse_process(std::string_view text, error& err) {
    err.clear();
    json j;
    if (!parse_json(text, j, err)) return {};
    process_spec p;
    if (!walker{err}.process(j, "process", p)) return {};
    return p;
}

process_spec parse_process(std::string_view text) {
    error err;
    auto p = parse_process(text, err);
    throw_if(err);
    return p;
}

} // namespace cz::guest
