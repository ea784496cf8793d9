// `cz run` from VM templates (cz/container/template.hpp), in real VMs (suite vm): clones that
// each have their own hostname, environment, root, boot_id and random numbers, and the host's
// time; templates made again when the kernel or cz-init changes; a damaged template ending in a
// warning and a run that still works.
#include "../vm/support.hpp"
#include "busybox_root.hpp"

#include <doctest/doctest.h>
#include <support/support.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct outcome {
    int rc = -1;
    std::string out;
    std::string err;
};

// A root of this program's own (its templates are made and damaged here).
const fs::path& template_root() {
    static const fs::path root = make_busybox_root(
        "cz-template-root", {"overlay.ko", "virtio_blk.ko", "virtio_console.ko", "virtio_net.ko"});
    return root;
}

std::string cz_command(const std::string& args) {
    return cz_test::quote(cz_tool()) + " --root " + cz_test::quote(template_root().string()) + " " +
           args;
}

outcome cz_cli(const std::string& args) {
    cz_test::temp_dir tmp;
    outcome o;
    auto err = tmp / "stderr";
    o.rc = cz_test::sh(cz_command(args) + " </dev/null 2>" + cz_test::quote(err), &o.out);
    o.err = cz_test::read_file(err);
    return o;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// What a clone reports of itself, one item a line.
struct clone_report {
    std::string hostname, env, own_file, boot_id, random;
    long long clock = 0;
    long long host_before = 0, host_after = 0;
};

const char* report_script = "hostname; echo $ID; echo $ID > /own; cat /own; "
                            "cat /proc/sys/kernel/random/boot_id; "
                            "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s";

std::string clone_args(int i) {
    return "run --rm --net none --timings --hostname clone" + std::to_string(i) + " -e ID=id" +
           std::to_string(i) + " busybox sh -c " + cz_test::quote(report_script);
}

clone_report parse_report(const std::string& out) {
    std::istringstream in(out);
    clone_report r;
    std::string clock;
    std::getline(in, r.hostname);
    std::getline(in, r.env);
    std::getline(in, r.own_file);
    std::getline(in, r.boot_id);
    std::getline(in, r.random);
    std::getline(in, clock);
    r.clock = clock.empty() ? 0 : std::stoll(clock);
    return r;
}

void check_clone(const clone_report& r, int i, const std::string& err) {
    CAPTURE(i);
    INFO(err);
    CHECK(r.hostname == "clone" + std::to_string(i));
    CHECK(r.env == "id" + std::to_string(i));
    CHECK(r.own_file == "id" + std::to_string(i));
    CHECK(r.boot_id.size() == 36);
    CHECK(r.random.size() == 64);
    // The guest's clock is the host's (date +%s: whole seconds), not the template's.
    CHECK(r.clock >= r.host_before - 1);
    CHECK(r.clock <= r.host_after + 1);
    CHECK(contains(err, "; from a VM template\n"));
}

std::size_t template_count() {
    auto o = cz_cli("template ls");
    std::size_t lines = 0;
    for (char c : o.out)
        lines += c == '\n';
    return lines == 0 ? 0 : lines - 1; // the header
}

// The one template's directory (there must be exactly one).
fs::path only_template_dir() {
    std::vector<fs::path> dirs;
    for (const auto& e :
         fs::directory_iterator(template_root() / "templates" / std::to_string(::getuid())))
        if (!e.path().filename().string().starts_with(".")) dirs.push_back(e.path());
    REQUIRE(dirs.size() == 1);
    return dirs[0];
}

} // namespace

TEST_SUITE("cz run from a VM template") {

    TEST_CASE("clones in sequence and at once: their own names, env, roots, boot_id, random "
              "numbers; the host's clock") {
        auto first = cz_cli("run --rm --net none busybox true");
        INFO(first.err);
        REQUIRE(first.rc == 0);
        CHECK(contains(first.err, "making a VM template"));
        // The template's clock stopped when it was saved: a clone that kept it would lag.
        std::this_thread::sleep_for(std::chrono::seconds(3));
        std::vector<clone_report> reports;
        for (int i = 0; i < 3; ++i) {
            auto before = static_cast<long long>(::time(nullptr));
            auto o = cz_cli(clone_args(i));
            auto r = parse_report(o.out);
            r.host_before = before;
            r.host_after = static_cast<long long>(::time(nullptr));
            CHECK(o.rc == 0);
            check_clone(r, i, o.err);
            reports.push_back(r);
        }
        // Three at once.
        cz_test::temp_dir tmp;
        std::vector<pid_t> pids;
        auto before = static_cast<long long>(::time(nullptr));
        for (int i = 3; i < 6; ++i) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                auto cmd = "exec " + cz_command(clone_args(i)) + " </dev/null >" +
                           cz_test::quote(tmp / std::to_string(i)) + " 2>" +
                           cz_test::quote(tmp / (std::to_string(i) + ".err"));
                ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
                ::_exit(127);
            }
            pids.push_back(pid);
        }
        for (pid_t pid : pids) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
        auto after = static_cast<long long>(::time(nullptr));
        for (int i = 3; i < 6; ++i) {
            auto r = parse_report(cz_test::read_file(tmp / std::to_string(i)));
            r.host_before = before;
            r.host_after = after;
            check_clone(r, i, cz_test::read_file(tmp / (std::to_string(i) + ".err")));
            reports.push_back(r);
        }
        std::set<std::string> boot_ids, randoms;
        for (const auto& r : reports) {
            boot_ids.insert(r.boot_id);
            randoms.insert(r.random);
        }
        CHECK(boot_ids.size() == reports.size());
        CHECK(randoms.size() == reports.size());
        CHECK(template_count() == 1);
    }

    TEST_CASE("a changed kernel or cz-init makes a new template; template rm removes them") {
        REQUIRE(cz_cli("run --rm --net none busybox true").rc == 0);
        auto before = template_count();
        REQUIRE(before >= 1);
        // The kernel: the same bytes, a new modification time (in a copy of the kernels this
        // root shares with the other tests).
        auto kernels = template_root() / "kernels";
        auto shared = fs::read_symlink(kernels);
        fs::remove(kernels);
        cz_test::sh_ok("mkdir " + cz_test::quote(kernels.string()) + " && cp -a " +
                       cz_test::quote(shared.string()) + "/. " + cz_test::quote(kernels.string()));
        auto kernel = cz::vm::find_kernel(template_root(), cz::vm::kernel_flavor::debian);
        fs::last_write_time(kernel.image,
                            fs::last_write_time(kernel.image) + std::chrono::seconds(10));
        auto o = cz_cli("run --rm --net none busybox true");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(contains(o.err, "making a VM template"));
        CHECK(template_count() == before + 1);
        // cz-init: another build of it (one byte more).
        cz_test::temp_dir tmp;
        fs::path init = tmp / "cz-init";
        fs::copy_file(cz::vm::test::required_env_path("CZ_INIT"), init);
        {
            std::ofstream out(init, std::ios::app | std::ios::binary);
            out.put('\0');
        }
        fs::permissions(init, fs::perms::owner_all);
        o = cz_cli("run --rm --net none --init " + cz_test::quote(init.string()) + " busybox true");
        CHECK(o.rc == 0);
        CHECK(contains(o.err, "making a VM template"));
        CHECK(template_count() == before + 2);
        o = cz_cli("run --rm --net none --init " + cz_test::quote(init.string()) + " busybox true");
        CHECK(o.rc == 0);
        CHECK(!contains(o.err, "making a VM template"));
        CHECK(cz_cli("template rm all").rc == 0);
        CHECK(template_count() == 0);
    }

    TEST_CASE("a truncated state file is made again; one QEMU refuses ends in a cold boot, with "
              "a warning") {
        REQUIRE(cz_cli("template rm all").rc == 0);
        REQUIRE(cz_cli("run --rm --net none busybox true").rc == 0);
        auto dir = only_template_dir();
        auto state = dir / "state";
        fs::resize_file(state, fs::file_size(state) / 2);
        auto o = cz_cli("run --rm --net none --timings busybox echo still works");
        INFO(o.err);
        CHECK(o.rc == 0);
        CHECK(o.out == "still works\n");
        CHECK(contains(o.err, "warning: VM template damaged"));
        CHECK(contains(o.err, "; from a VM template\n"));

        // Damaged in a way its record does not show (the record rewritten to match): QEMU
        // refuses the state, and the run boots cold.
        dir = only_template_dir();
        state = dir / "state";
        fs::resize_file(state, fs::file_size(state) / 2);
        auto info_text = cz_test::read_file(dir / "info.json");
        std::uint64_t size = 0, hash = 0xcbf29ce484222325ull;
        for (unsigned char c : cz_test::read_file(state)) {
            hash ^= c;
            hash *= 0x100000001b3ull;
            ++size;
        }
        auto replace_value = [&](const std::string& key, const std::string& value) {
            auto at = info_text.find("\"" + key + "\": ");
            REQUIRE(at != std::string::npos);
            at += key.size() + 4;
            auto end = info_text.find_first_of(",\n", at);
            info_text.replace(at, end - at, value);
        };
        replace_value("state_size", std::to_string(size));
        replace_value("state_hash", fmt::format("\"{:016x}\"", hash));
        cz_test::write_file(dir / "info.json", info_text);
        o = cz_cli("run --rm --net none --timings busybox echo cold but fine");
        CHECK(o.rc == 0);
        CHECK(o.out == "cold but fine\n");
        CHECK(contains(o.err, "warning: VM template"));
        CHECK(contains(o.err, "booting cold"));
        CHECK(contains(o.err, "; cold boot\n"));
    }
}
