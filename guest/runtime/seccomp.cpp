#include "runtime/seccomp.hpp"

#include <seccomp.h>

#include <cctype>
#include <cerrno>
#include <memory>
#include <vector>

namespace cz::guest {

namespace {

std::uint32_t action_of(seccomp_action a, std::optional<std::uint32_t> errno_ret) {
    switch (a) {
    case seccomp_action::kill_thread:
        return SCMP_ACT_KILL_THREAD;
    case seccomp_action::kill_process:
        return SCMP_ACT_KILL_PROCESS;
    case seccomp_action::trap:
        return SCMP_ACT_TRAP;
    case seccomp_action::errno_ret:
        return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case seccomp_action::trace:
        return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case seccomp_action::allow:
        return SCMP_ACT_ALLOW;
    case seccomp_action::log:
        return SCMP_ACT_LOG;
    }
    return SCMP_ACT_KILL_PROCESS;
}

scmp_compare op_of(seccomp_op op) {
    switch (op) {
    case seccomp_op::not_equal:
        return SCMP_CMP_NE;
    case seccomp_op::less_than:
        return SCMP_CMP_LT;
    case seccomp_op::less_equal:
        return SCMP_CMP_LE;
    case seccomp_op::equal:
        return SCMP_CMP_EQ;
    case seccomp_op::greater_equal:
        return SCMP_CMP_GE;
    case seccomp_op::greater_than:
        return SCMP_CMP_GT;
    case seccomp_op::masked_equal:
        return SCMP_CMP_MASKED_EQ;
    }
    return SCMP_CMP_EQ;
}

bool fail(error& err, int rc, const std::string& what) {
    // libseccomp returns negative errno values.
    err.set({-rc, std::system_category()}, "seccomp: " + what);
    return false;
}

struct ctx_release {
    void operator()(void* c) const { seccomp_release(c); }
};

} // namespace

bool load_seccomp(const seccomp_spec& spec, error& err) {
    std::uint32_t def = action_of(spec.default_action, spec.default_errno_ret);
    std::unique_ptr<void, ctx_release> ctx(seccomp_init(def));
    if (!ctx) return fail(err, -EINVAL, "seccomp_init");
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); rc < 0)
        return fail(err, rc, "leave no_new_privs to the spec");
    for (const auto& a : spec.architectures) {
        // libseccomp's own names are the spec's without the prefix, in lower case.
        std::string name = a.substr(a.rfind("SCMP_ARCH_", 0) == 0 ? 10 : 0);
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::uint32_t arch = seccomp_arch_resolve_name(name.c_str());
        if (arch == 0) continue; // not built into this libseccomp: nothing to filter for it
        int rc = seccomp_arch_add(ctx.get(), arch);
        if (rc < 0 && rc != -EEXIST) return fail(err, rc, "add architecture " + a);
    }
    for (const auto& rule : spec.syscalls) {
        std::uint32_t act = action_of(rule.action, rule.errno_ret);
        if (act == def) continue;
        bool repeated = false;
        for (std::size_t i = 0; i < rule.args.size(); ++i)
            for (std::size_t j = i + 1; j < rule.args.size(); ++j)
                if (rule.args[i].index == rule.args[j].index) repeated = true;
        std::vector<scmp_arg_cmp> conds;
        for (const auto& a : rule.args)
            // Field by field: libseccomp's SCMP_CMP64 macro is a C compound literal.
            conds.push_back(scmp_arg_cmp{a.index, op_of(a.op), a.value, a.value_two});
        for (const auto& name : rule.names) {
            int nr = seccomp_syscall_resolve_name(name.c_str());
            if (nr == __NR_SCMP_ERROR) continue;
            int rc = 0;
            if (conds.empty() || !repeated) {
                rc = seccomp_rule_add_array(ctx.get(), act, nr, static_cast<unsigned>(conds.size()),
                                            conds.data());
            } else {
                for (const auto& c : conds)
                    if ((rc = seccomp_rule_add_array(ctx.get(), act, nr, 1, &c)) < 0) break;
            }
            if (rc < 0) return fail(err, rc, "rule for " + name);
        }
    }
    if (int rc = seccomp_load(ctx.get()); rc < 0) return fail(err, rc, "load the filter");
    return true;
}

} // namespace cz::guest
