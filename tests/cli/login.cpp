// cz login / cz logout against docker-registry with htpasswd on loopback, with DOCKER_CONFIG in
// a temporary directory: wrong credentials are refused and nothing is written; right ones are
// written as docker writes them (skopeo, reading the file as an auth file, can use them); pulls
// then need no flags; logout forgets them. The same through a credential helper (credsStore),
// and with token authentication (tests/oci/token_server.py), identity tokens included.
#include "../oci/image.hpp"
#include "../oci/registry_server.hpp"
#include "cz_tool.hpp"

#include <sys/stat.h>

using namespace cz_test;
using namespace cli_test;

namespace {

// Sets an environment variable for the life of the object (cz inherits the test's environment).
struct scoped_env {
    std::string name;
    std::optional<std::string> old;
    scoped_env(std::string n, const std::string& value) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) old = v;
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~scoped_env() {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

// Runs `cz ARGS` with `input` on its standard input.
outcome run_cz_input(const temp_dir& dir, const std::string& args, const std::string& input) {
    write_file(dir.path / "stdin", input);
    outcome o;
    auto err_file = dir / "stderr";
    o.rc = sh(quote(cli_test::cz()) + " " + args + " <" + quote(dir / "stdin") + " 2>" +
                  quote(err_file),
              &o.out);
    o.err = read_file(err_file);
    return o;
}

// A registry with Basic authentication (user cz, password secret) holding cz/app:1, an image
// cz made, pushed by skopeo.
struct auth_registry {
    temp_dir tmp{"cz-cli-login"};
    std::unique_ptr<registry_server> server;
    std::string remote;

    bool start(const std::string& htpasswd) {
        server = std::make_unique<registry_server>(false, htpasswd);
        auto source = cz::oci::content_store::open(tmp.path / "source");
        auto image = oci_test::put_image(source, "behind a password\n");
        cz::oci::image_store(source).tag("app:1", image.manifest);
        remote = server->host() + "/cz/app:1";
        return sh("skopeo copy -q --dest-tls-verify=false --dest-creds cz:secret " +
                  quote("oci:" + (tmp.path / "source/content").string() + ":app:1") + " docker://" +
                  remote + " 2>&1") == 0;
    }
    std::string root() const { return quote((tmp.path / "root").string()); }
};

} // namespace

TEST_SUITE("cz cli") {

    TEST_CASE("login: wrong password refused, right one kept as docker keeps it; pull; logout") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        auth_registry r;
        REQUIRE(r.start(htpasswd));
        auto& tmp = r.tmp;
        auto docker = tmp.path / "docker";
        auto config = docker / "config.json";
        scoped_env docker_config("DOCKER_CONFIG", docker.string());
        auto host = r.server->host();

        auto anonymous = run_cz(tmp, "--root " + r.root() + " image pull " + r.remote);
        CHECK(anonymous.rc == 1);
        CHECK(contains(anonymous.err, "wants a user name and password"));
        CHECK(contains(anonymous.err, "cz login " + host));

        // Wrong password: refused by the registry, nothing written.
        auto wrong = run_cz_input(tmp, "login -u cz --password-stdin " + host, "wrong\n");
        CHECK(wrong.rc == 1);
        CHECK(contains(wrong.err, "login to " + host));
        CHECK(contains(wrong.err, "401"));
        CHECK(!std::filesystem::exists(docker));
        // No terminal to ask on, no --password-stdin: a usage error, nothing asked or sent.
        auto no_tty = run_cz(tmp, "login -u cz " + host);
        CHECK(no_tty.rc == 2);
        CHECK(contains(no_tty.err, "--password-stdin"));
        auto no_user = run_cz_input(tmp, "login --password-stdin " + host, "secret\n");
        CHECK(no_user.rc == 2);
        CHECK(contains(no_user.err, "needs --username"));
        auto not_registry = run_cz_input(tmp, "login -u cz --password-stdin 'cz/app:1'", "x");
        CHECK(not_registry.rc == 2);
        CHECK(contains(not_registry.err, "is not a registry"));

        // Right: kept as base64 of user:password under auths["127.0.0.1:PORT"], every other key
        // of the file kept.
        std::filesystem::create_directories(docker);
        write_file(config, R"({"psFormat": "table {{.ID}}", "auths": {"other.example": {}}})");
        auto right =
            run_cz_input(tmp, "login --username cz --password-stdin " + host, "secret\r\n");
        CHECK_MESSAGE(right.rc == 0, right.err);
        CHECK(contains(right.out, "Login Succeeded: " + host));
        auto written = nlohmann::json::parse(read_file(config));
        CHECK(written["auths"][host]["auth"] == "Y3o6c2VjcmV0"); // base64("cz:secret")
        CHECK(written["psFormat"] == "table {{.ID}}");
        CHECK(written["auths"].contains("other.example"));
        struct stat st {};
        REQUIRE(::stat(config.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
        // A peer reads what cz wrote: skopeo takes the file as its auth file.
        CHECK(sh("skopeo inspect --tls-verify=false --authfile " + quote(config.string()) +
                 " docker://" + r.remote + " >/dev/null 2>&1") == 0);

        auto pull = run_cz(tmp, "--root " + r.root() + " image pull -q " + r.remote);
        CHECK_MESSAGE(pull.rc == 0, pull.err);
        CHECK(pull.out.starts_with("sha256:"));
        CHECK(run_cz(tmp, "--root " + r.root() + " store verify").rc == 0);

        auto logout = run_cz(tmp, "logout " + host);
        CHECK_MESSAGE(logout.rc == 0, logout.err);
        written = nlohmann::json::parse(read_file(config));
        CHECK(!written["auths"].contains(host));
        CHECK(written["psFormat"] == "table {{.ID}}");
        auto again = run_cz(tmp, "logout " + host);
        CHECK(again.rc == 1);
        CHECK(contains(again.err, "not logged in to " + host));
        auto refused = run_cz(tmp, "--root " + r.root() + " image pull " + r.remote);
        CHECK(refused.rc == 1);
        CHECK(contains(refused.err, "unauthorized"));
        CHECK(contains(refused.err, "cz login " + host));

        // A malformed file is an error naming it, for pull and login alike; login leaves it be.
        write_file(config, R"({"auths": {")" + host + R"(": {"auth": "bm9jb2xvbg=="}}})");
        auto bad = run_cz(tmp, "--root " + r.root() + " image pull " + r.remote);
        CHECK(bad.rc == 1);
        CHECK(contains(bad.err, config.string() + ": auths[\"" + host + "\"].auth: not "));
        auto bad_login = run_cz_input(tmp, "login -u cz --password-stdin " + host, "secret");
        CHECK(bad_login.rc == 1);
        CHECK(contains(bad_login.err, config.string()));
        CHECK(contains(read_file(config), "bm9jb2xvbg=="));
    }

    TEST_CASE("login: asks on the terminal, the password without echo") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!have("python3")) CZ_SKIP("python3 (its pty module drives the terminal) is missing");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        auth_registry r;
        REQUIRE(r.start(htpasswd));
        auto docker = r.tmp.path / "docker";
        scoped_env docker_config("DOCKER_CONFIG", docker.string());
        auto host = r.server->host();
        // cz on a pseudo-terminal: each answer is typed once its prompt is there (so echo is
        // off, or not, by then); everything the terminal shows is printed.
        write_file(r.tmp.path / "type.py", R"(import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def until(prompt):
    global seen
    while prompt not in seen:
        seen += os.read(fd, 1024)
until(b"Username: ")
os.write(fd, b"cz\n")
until(b"Password: ")
os.write(fd, b"secret\n")
try:
    while True:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        seen += chunk
except OSError:
    pass
sys.stdout.write(seen.decode())
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
)");
        std::string out;
        int rc = sh("python3 " + quote(r.tmp / "type.py") + " " + quote(cli_test::cz()) +
                        " login " + host,
                    &out);
        CHECK_MESSAGE(rc == 0, out);
        CHECK(contains(out, "Username: cz"));
        CHECK(contains(out, "Password: "));
        CHECK(!contains(out, "secret")); // never echoed
        CHECK(contains(out, "Login Succeeded"));
        CHECK(nlohmann::json::parse(read_file(docker / "config.json"))["auths"][host]["auth"] ==
              "Y3o6c2VjcmV0");
    }

    TEST_CASE("login: through a credential helper (credsStore): store, get for pull, erase") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        auth_registry r;
        REQUIRE(r.start(htpasswd));
        auto& tmp = r.tmp;
        auto docker = tmp.path / "docker";
        auto config = docker / "config.json";
        auto store = tmp.path / "helper.json";
        std::filesystem::create_directories(docker);
        write_file(config, R"({"credsStore": "test"})");
        scoped_env docker_config("DOCKER_CONFIG", docker.string());
        scoped_env path("PATH",
                        (data_dir() / "credential-helper").string() + ":" + std::getenv("PATH"));
        scoped_env helper_store("CZ_TEST_HELPER_STORE", store.string());
        auto host = r.server->host();

        auto wrong = run_cz_input(tmp, "login -u cz --password-stdin " + host, "wrong");
        CHECK(wrong.rc == 1);
        CHECK(!std::filesystem::exists(store)); // nothing kept

        auto login = run_cz_input(tmp, "login -u cz --password-stdin " + host, "secret");
        CHECK_MESSAGE(login.rc == 0, login.err);
        CHECK(contains(login.out, "kept in docker-credential-test"));
        CHECK(nlohmann::json::parse(read_file(store))[host] ==
              nlohmann::json::array({"cz", "secret"}));
        // The file names the registry and holds no secret, as docker's does.
        auto written = nlohmann::json::parse(read_file(config));
        CHECK(written["auths"][host] == nlohmann::json::object());
        CHECK(written["credsStore"] == "test");

        auto pull = run_cz(tmp, "--root " + r.root() + " image pull -q " + r.remote);
        CHECK_MESSAGE(pull.rc == 0, pull.err);
        CHECK(contains(read_file(store.string() + ".log"), "get " + host + "\n"));

        auto logout = run_cz(tmp, "logout " + host);
        CHECK_MESSAGE(logout.rc == 0, logout.err);
        CHECK(nlohmann::json::parse(read_file(store)) == nlohmann::json::object());
        CHECK(!nlohmann::json::parse(read_file(config))["auths"].contains(host));
        CHECK(read_file(store.string() + ".log") ==
              "store " + host + "\nget " + host + "\nerase " + host + "\n");
        auto refused = run_cz(tmp, "--root " + r.root() + " image pull " + r.remote);
        CHECK(refused.rc == 1);
        CHECK(contains(refused.err, "unauthorized"));

        // A helper that fails is named in the error.
        scoped_env mode("CZ_TEST_HELPER_MODE", "fail");
        auto failing = run_cz(tmp, "--root " + r.root() + " image pull " + r.remote);
        CHECK(failing.rc == 1);
        CHECK(contains(failing.err, "docker-credential-test get: exit status 3: the keychain is "
                                    "locked"));
    }

    TEST_CASE("login: token authentication (Bearer) with a token service; identity tokens") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        if (!token_server::available())
            CZ_SKIP("python3 has no cryptography package to sign the token service's JWTs");
        token_server tokens("cz", "secret", "refresh-cz");
        registry_server server(false, {}, tokens.auth_config());
        temp_dir tmp("cz-cli-token");
        auto source = cz::oci::content_store::open(tmp.path / "source");
        auto image = oci_test::put_image(source, "behind a token service\n");
        cz::oci::image_store(source).tag("app:1", image.manifest);
        auto host = server.host();
        auto remote = host + "/cz/app:1";
        // skopeo pushes through the same token flow: the registry and the server agree.
        sh_ok("skopeo copy -q --dest-tls-verify=false --dest-creds cz:secret " +
              quote("oci:" + (tmp.path / "source/content").string() + ":app:1") + " docker://" +
              remote);
        auto docker = tmp.path / "docker";
        auto config = docker / "config.json";
        scoped_env docker_config("DOCKER_CONFIG", docker.string());
        auto root = quote((tmp.path / "root").string());

        // Anonymous: a token with no access, which the registry refuses.
        auto anonymous = run_cz(tmp, "--root " + root + " image pull " + remote);
        CHECK(anonymous.rc == 1);
        CHECK(contains(anonymous.err, "401"));
        auto wrong = run_cz_input(tmp, "login -u cz --password-stdin " + host, "wrong");
        CHECK(wrong.rc == 1);
        CHECK(contains(wrong.err, "token service http://127.0.0.1:"));
        CHECK(contains(wrong.err, "wrong user name or password"));
        CHECK(!std::filesystem::exists(config));
        auto login = run_cz_input(tmp, "login -u cz --password-stdin " + host, "secret");
        CHECK_MESSAGE(login.rc == 0, login.err);
        auto pull = run_cz(tmp, "--root " + root + " image pull -q " + remote);
        CHECK_MESSAGE(pull.rc == 0, pull.err);
        CHECK(run_cz(tmp, "--root " + root + " store verify").rc == 0);
        CHECK(contains(tokens.log(), "GET basic\n")); // the Bearer flow, with Basic at the realm
        CHECK(!contains(tokens.log(), "POST"));

        // An identity token (docker's "identitytoken") is traded by OAuth2's refresh grant.
        write_file(config, R"({"auths": {")" + host + R"(": {"identitytoken": "refresh-cz"}}})");
        auto by_token = run_cz(tmp, "--root " + (quote((tmp.path / "root2").string())) +
                                        " image pull -q " + remote);
        CHECK_MESSAGE(by_token.rc == 0, by_token.err);
        CHECK(contains(tokens.log(), "POST refresh\n"));
        write_file(config, R"({"auths": {")" + host + R"(": {"identitytoken": "stale"}}})");
        auto stale = run_cz(tmp, "--root " + root + " image pull " + remote);
        CHECK(stale.rc == 1);
        CHECK(contains(stale.err, "invalid_grant"));
    }
}
