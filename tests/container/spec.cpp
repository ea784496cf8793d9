// cz/container's pure parts: the OCI runtime spec merged from an image's config and a run's
// options as docker merges them, env files, container names.
#include <cz/container/run.hpp>
#include <cz/container/spec.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace ct = cz::container;
using strings = std::vector<std::string>;

namespace {

cz::oci::container_config image(std::optional<strings> entrypoint, std::optional<strings> cmd) {
    cz::oci::container_config c;
    c.entrypoint = std::move(entrypoint);
    c.cmd = std::move(cmd);
    return c;
}

strings command(const cz::oci::container_config& img, const ct::spec_options& o) {
    std::error_code ec;
    auto argv = ct::merge_command(img, o, ec);
    REQUIRE_FALSE(ec);
    return argv;
}

nlohmann::json spec_of(const cz::oci::container_config& img, const ct::spec_options& o) {
    std::error_code ec;
    std::string why;
    auto text = ct::make_runtime_spec(img, o, ec, &why);
    INFO(why);
    REQUIRE_FALSE(ec);
    return nlohmann::json::parse(text);
}

const char* no_host_env(const std::string&) {
    return nullptr;
}

} // namespace

TEST_SUITE("container spec") {

    TEST_CASE("the command is the entrypoint, then the arguments or the image's Cmd") {
        ct::spec_options o;
        CHECK(command(image(strings{"/entry"}, strings{"default"}), o) ==
              strings{"/entry", "default"});
        o.args = {"mine", "-x"};
        CHECK(command(image(strings{"/entry"}, strings{"default"}), o) ==
              strings{"/entry", "mine", "-x"});
        CHECK(command(image(std::nullopt, strings{"sh"}), o) == strings{"mine", "-x"});
        o.args.clear();
        CHECK(command(image(std::nullopt, strings{"sh", "-c", "x"}), o) ==
              strings{"sh", "-c", "x"});
    }

    TEST_CASE("a new entrypoint drops the image's Cmd; an empty one clears the entrypoint") {
        ct::spec_options o;
        o.entrypoint = strings{"/bin/other"};
        CHECK(command(image(strings{"/entry"}, strings{"default"}), o) == strings{"/bin/other"});
        o.args = {"a"};
        CHECK(command(image(strings{"/entry"}, strings{"default"}), o) ==
              strings{"/bin/other", "a"});
        o.entrypoint = strings{};
        CHECK(command(image(strings{"/entry"}, strings{"default"}), o) == strings{"a"});
    }

    TEST_CASE("no command anywhere is errc::no_command") {
        std::error_code ec;
        ct::merge_command(image(std::nullopt, std::nullopt), {}, ec);
        CHECK(ec == ct::errc::no_command);
        ct::merge_command(image(strings{}, strings{}), {}, ec);
        CHECK(ec == ct::errc::no_command);
        std::string why;
        CHECK(ct::make_runtime_spec(image(std::nullopt, std::nullopt), {}, ec, &why).empty());
        CHECK(ec == ct::errc::no_command);
    }

    TEST_CASE("the caller's environment replaces the image's by name; PATH has a default") {
        auto img = image(std::nullopt, strings{"sh"});
        img.env = {"A=image", "B=image"};
        ct::spec_options o;
        o.env = {"B=mine", "C=mine", "A=again"};
        std::error_code ec;
        auto env = ct::merge_env(img, o, ec);
        REQUIRE_FALSE(ec);
        CHECK(env == strings{ct::default_path, "A=again", "B=mine", "C=mine"});

        img.env = {"PATH=/custom"};
        o.env.clear();
        o.terminal = true;
        o.hostname = "box";
        CHECK(ct::merge_env(img, o, ec) == strings{"PATH=/custom", "TERM=xterm", "HOSTNAME=box"});
        o.env = {"TERM=vt100", "PATH=/mine"};
        CHECK(ct::merge_env(img, o, ec) == strings{"PATH=/mine", "TERM=vt100", "HOSTNAME=box"});
    }

    TEST_CASE("an environment entry without a name is refused") {
        auto img = image(std::nullopt, strings{"sh"});
        for (const char* bad : {"=x", "", "NOVALUE"}) {
            ct::spec_options o;
            o.env = {bad};
            std::error_code ec;
            std::string why;
            ct::merge_env(img, o, ec, &why);
            CHECK(ec == ct::errc::bad_option);
            CHECK(why.find("NAME=value") != std::string::npos);
        }
    }

    TEST_CASE("-e NAME takes the host's value, and is left out when the host has none") {
        auto host = [](const std::string& name) -> const char* {
            return name == "HOSTVAR" ? "from-host" : nullptr;
        };
        std::string out;
        CHECK(ct::expand_env_option("HOSTVAR", host, out));
        CHECK(out == "HOSTVAR=from-host");
        CHECK_FALSE(ct::expand_env_option("UNSET", host, out));
        CHECK(ct::expand_env_option("X=1=2", host, out));
        CHECK(out == "X=1=2");
    }

    TEST_CASE("env files: comments, blank lines, NAME alone, CRLF; a bad name names its line") {
        std::error_code ec;
        auto host = [](const std::string& name) -> const char* {
            return name == "HOSTVAR" ? "h" : nullptr;
        };
        auto env =
            ct::parse_env_file("# comment\n\nA=1\r\n  B=two words\nHOSTVAR\nUNSET\nC=", host, ec);
        REQUIRE_FALSE(ec);
        CHECK(env == strings{"A=1", "B=two words", "HOSTVAR=h", "C="});
        std::string why;
        ct::parse_env_file("A=1\nBAD NAME=2\n", no_host_env, ec, &why);
        CHECK(ec == ct::errc::bad_option);
        CHECK(why == "line 2: no variable name");
        ct::parse_env_file("=3", no_host_env, ec, &why);
        CHECK(ec == ct::errc::bad_option);
    }

    TEST_CASE("working directory and user: the caller's, else the image's, else / and root") {
        auto img = image(std::nullopt, strings{"sh"});
        auto s = spec_of(img, {});
        CHECK(s["process"]["cwd"] == "/");
        CHECK(s["process"]["user"]["uid"] == 0);
        CHECK_FALSE(s["process"]["user"].contains("username"));

        img.working_dir = "/srv";
        img.user = "daemon";
        s = spec_of(img, {});
        CHECK(s["process"]["cwd"] == "/srv");
        CHECK(s["process"]["user"]["username"] == "daemon");

        ct::spec_options o;
        o.working_dir = "/work/new";
        o.user = "1000:50";
        s = spec_of(img, o);
        CHECK(s["process"]["cwd"] == "/work/new");
        CHECK(s["process"]["user"]["username"] == "1000:50");

        o.working_dir = "relative";
        std::error_code ec;
        std::string why;
        ct::make_runtime_spec(img, o, ec, &why);
        CHECK(ec == ct::errc::bad_option);
        CHECK(why.find("relative") != std::string::npos);
    }

    TEST_CASE("the spec runs on cz-init's overlay root with docker's mounts and namespaces") {
        ct::spec_options o;
        o.hostname = "c1";
        o.read_only = true;
        auto s = spec_of(image(std::nullopt, strings{"true"}), o);
        CHECK(s["root"]["path"] == ct::guest_rootfs_path);
        CHECK(s["root"]["readonly"] == true);
        CHECK(s["hostname"] == "c1");
        std::map<std::string, std::string> mounts;
        for (const auto& m : s["mounts"])
            mounts[m["destination"]] = m["type"];
        CHECK(mounts == std::map<std::string, std::string>{{"/proc", "proc"},
                                                           {"/dev", "tmpfs"},
                                                           {"/dev/pts", "devpts"},
                                                           {"/dev/shm", "tmpfs"},
                                                           {"/dev/mqueue", "mqueue"},
                                                           {"/sys", "sysfs"},
                                                           {"/sys/fs/cgroup", "cgroup2"}});
        strings namespaces;
        for (const auto& n : s["linux"]["namespaces"])
            namespaces.push_back(n["type"]);
        CHECK(namespaces == strings{"pid", "mount", "ipc", "uts"}); // the VM's network
        CHECK(s["process"]["capabilities"]["bounding"].size() == 14);
        CHECK(s["process"]["terminal"] == false);
        CHECK_FALSE(s["process"].contains("consoleSize"));
    }

    TEST_CASE("a terminal with a size; limits become cgroup resources") {
        ct::spec_options o;
        o.terminal = true;
        o.rows = 40;
        o.columns = 120;
        o.memory_limit = 64 << 20;
        o.cpus = 1.5;
        o.pids_limit = 100;
        auto s = spec_of(image(std::nullopt, strings{"sh"}), o);
        CHECK(s["process"]["terminal"] == true);
        CHECK(s["process"]["consoleSize"]["height"] == 40);
        CHECK(s["process"]["consoleSize"]["width"] == 120);
        const auto& r = s["linux"]["resources"];
        CHECK(r["memory"]["limit"] == 64 << 20);
        CHECK(r["cpu"]["quota"] == 150000);
        CHECK(r["cpu"]["period"] == 100000);
        CHECK(r["pids"]["limit"] == 100);
    }

    TEST_CASE("limits and hostnames out of range are refused") {
        auto img = image(std::nullopt, strings{"sh"});
        std::error_code ec;
        ct::spec_options o;
        o.memory_limit = 1 << 20;
        ct::make_runtime_spec(img, o, ec);
        CHECK(ec == ct::errc::bad_option);
        o = {};
        o.cpus = 0;
        ct::make_runtime_spec(img, o, ec);
        CHECK(ec == ct::errc::bad_option);
        o = {};
        o.hostname = std::string(65, 'h');
        ct::make_runtime_spec(img, o, ec);
        CHECK(ec == ct::errc::bad_option);
    }

    TEST_CASE("--ulimit: docker's names and values; the last of a type wins") {
        std::error_code ec;
        std::string why;
        auto r = ct::parse_ulimit("nofile=1024:4096", ec, &why);
        REQUIRE_FALSE(ec);
        CHECK(r.type == "RLIMIT_NOFILE");
        CHECK(r.soft == 1024);
        CHECK(r.hard == 4096);
        r = ct::parse_ulimit("core=0", ec);
        REQUIRE_FALSE(ec);
        CHECK(r.type == "RLIMIT_CORE");
        CHECK(r.hard == 0);
        r = ct::parse_ulimit("stack=8388608:unlimited", ec);
        REQUIRE_FALSE(ec);
        CHECK(r.hard == ct::rlimit_unlimited);
        r = ct::parse_ulimit("memlock=-1", ec);
        REQUIRE_FALSE(ec);
        CHECK(r.soft == ct::rlimit_unlimited);
        CHECK(r.type == "RLIMIT_MEMLOCK");
        for (const char* bad : {"nofile", "nofile=", "files=10", "nofile=10:5", "nofile=1x",
                                "nofile=10:", "=10", "NOFILE=10", "nofile=-2"}) {
            CAPTURE(bad);
            ct::parse_ulimit(bad, ec, &why);
            CHECK(ec == ct::errc::bad_option);
            CHECK(why.find(bad) != std::string::npos);
        }

        ct::spec_options o;
        for (const char* u : {"nofile=100:200", "nproc=50", "nofile=300"}) {
            o.rlimits.push_back(ct::parse_ulimit(u, ec));
            REQUIRE_FALSE(ec);
        }
        auto s = spec_of(image(std::nullopt, strings{"sh"}), o);
        const auto& limits = s["process"]["rlimits"];
        REQUIRE(limits.size() == 2);
        CHECK(limits[0]["type"] == "RLIMIT_NOFILE");
        CHECK(limits[0]["soft"] == 300);
        CHECK(limits[0]["hard"] == 300);
        CHECK(limits[1]["type"] == "RLIMIT_NPROC");
        CHECK_FALSE(spec_of(image(std::nullopt, strings{"sh"}), {})["process"].contains("rlimits"));
    }

    TEST_CASE("container names") {
        CHECK(ct::valid_container_name("web"));
        CHECK(ct::valid_container_name("a1_b.c-d"));
        CHECK(ct::valid_container_name(std::string(64, 'x')));
        CHECK_FALSE(ct::valid_container_name(""));
        CHECK_FALSE(ct::valid_container_name(std::string(65, 'x')));
        CHECK_FALSE(ct::valid_container_name("-lead"));
        CHECK_FALSE(ct::valid_container_name("a/b"));
        CHECK_FALSE(ct::valid_container_name("a b"));
        CHECK(std::error_code(ct::errc::command_not_found).message() ==
              "executable file not found");
    }
}
