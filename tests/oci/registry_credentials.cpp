// docker's config file and credential helpers: parsing edge cases (each error names where), the
// keys docker files registries under, writing the file back (atomically, 0600, other keys kept),
// and the docker-credential-* protocol against a helper written for the tests.
#include <cz/oci/registry/credentials.hpp>

#include "support/support.hpp"

#include <cstdlib>
#include <sys/stat.h>

using namespace cz_test;
namespace reg = cz::oci::registry;

namespace {

reg::parsed_docker_config parse(std::string_view text, std::error_code& ec, cz::error_info& why) {
    return reg::parse_docker_config(text, ec, &why);
}

// The message of the error parsing `text` gives (and that it is malformed_credentials).
std::string parse_error(std::string_view text) {
    std::error_code ec;
    cz::error_info why;
    parse(text, ec, why);
    CHECK(ec == reg::errc::malformed_credentials);
    return cz::to_string(why);
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

// PATH with the test helper's directory first, for the life of the object; the helper keeps its
// credentials in `store`.
struct helper_on_path {
    std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
    explicit helper_on_path(const std::filesystem::path& store, const std::string& mode = "") {
        auto dir = (data_dir() / "credential-helper").string();
        ::setenv("PATH", (dir + ":" + old_path).c_str(), 1);
        ::setenv("CZ_TEST_HELPER_STORE", store.c_str(), 1);
        ::setenv("CZ_TEST_HELPER_MODE", mode.c_str(), 1);
    }
    ~helper_on_path() {
        ::setenv("PATH", old_path.c_str(), 1);
        ::unsetenv("CZ_TEST_HELPER_STORE");
        ::unsetenv("CZ_TEST_HELPER_MODE");
    }
};

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("credentials: the keys docker files registries under") {
        CHECK(reg::credentials_key("docker.io") == reg::docker_hub_key);
        CHECK(reg::credentials_key("index.docker.io") == reg::docker_hub_key);
        CHECK(reg::credentials_key("registry-1.docker.io") == reg::docker_hub_key);
        CHECK(reg::credentials_key("https://index.docker.io/v1/") == reg::docker_hub_key);
        CHECK(reg::credentials_key("127.0.0.1:5000") == "127.0.0.1:5000");
        CHECK(reg::credentials_key("https://r.example:5000/v2/") == "r.example:5000");
        CHECK(reg::credentials_key("http://r.example") == "r.example");
        CHECK(reg::credentials_key("[::1]:5000") == "[::1]:5000");
    }

    TEST_CASE("credentials: config file, the forms docker writes and reads") {
        std::error_code ec;
        cz::error_info why;
        auto c = parse(R"({
            "auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnB3"},
                "127.0.0.1:5000": {"auth": "dXNlcjpwYTpzczp3b3Jk"},
                "https://old.example/v1/": {"username": "u", "password": "p"},
                "token.example": {"identitytoken": "refresh-me"},
                "helper.example": {},
                "email.example": {"auth": "YTpi", "email": "x@example"}
            },
            "credsStore": "desktop",
            "credHelpers": {"gcr.io": "gcloud"},
            "psFormat": "table {{.ID}}"
        })",
                       ec, why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        REQUIRE(c.auths.size() == 6);
        CHECK(c.auths[0].creds == reg::credentials{"hub", "pw", ""});
        // Only the first colon splits: the password keeps the others.
        CHECK(c.auths[1].creds == reg::credentials{"user", "pa:ss:word", ""});
        CHECK(c.auths[2].creds == reg::credentials{"u", "p", ""});
        CHECK(c.auths[3].creds == reg::credentials{"", "", "refresh-me"});
        CHECK(c.auths[4].creds == reg::credentials{});
        CHECK(c.auths[5].creds == reg::credentials{"a", "b", ""});
        CHECK(c.creds_store == "desktop");
        CHECK(c.cred_helpers.at("gcr.io") == "gcloud");

        // Empty files docker leaves behind, and nulls where objects go.
        for (auto text : {"{}", R"({"auths": {}})", R"({"auths": null, "credsStore": ""})",
                          R"({"auths": {"r": {"auth": ""}}})"}) {
            auto e = parse(text, ec, why);
            CHECK_MESSAGE(!ec, text, ": ", cz::to_string(why));
        }
    }

    TEST_CASE("credentials: a malformed config file is an error saying where") {
        CHECK(contains(parse_error(""), "not JSON"));
        CHECK(contains(parse_error(R"({"auths": {)"), "not JSON: syntax error at offset"));
        CHECK(contains(parse_error("[1, 2]"), "a JSON array, not an object"));
        CHECK(contains(parse_error(R"({"auths": []})"), "auths: a array, not an object"));
        CHECK(contains(parse_error(R"({"auths": {"r.example": "x"}})"),
                       "auths[\"r.example\"]: a string, not an object"));
        CHECK(contains(parse_error(R"({"auths": {"r.example": {"auth": 5}}})"),
                       "auths[\"r.example\"].auth: a number, not a string"));
        // Not base64: a bad character, missing padding.
        CHECK(contains(parse_error(R"({"auths": {"r.example": {"auth": "!!!!"}}})"),
                       "auths[\"r.example\"].auth: not base64"));
        CHECK(contains(parse_error(R"({"auths": {"r.example": {"auth": "dXNlcjpwMQ"}}})"),
                       "not base64"));
        // base64 of "nocolon", of ":password" (no user).
        CHECK(contains(parse_error(R"({"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}})"),
                       "auths[\"r.example\"].auth: not \"user:password\" with a user"));
        CHECK(contains(parse_error(R"({"auths": {"r.example": {"auth": "OnBhc3N3b3Jk"}}})"),
                       "with a user"));
        CHECK(contains(parse_error(R"({"auths": {"r": {"identitytoken": true}}})"),
                       "identitytoken: a boolean, not a string"));
        CHECK(contains(parse_error(R"({"credsStore": 1})"), "credsStore: a number"));
        // A helper name is a name, never a path.
        CHECK(contains(parse_error(R"({"credsStore": "../../bin/sh"})"),
                       "credsStore: '../../bin/sh' is not a helper name"));
        CHECK(contains(parse_error(R"({"credHelpers": {"gcr.io": "a b"}})"),
                       "credHelpers[\"gcr.io\"]: 'a b' is not a helper name"));
        CHECK(contains(parse_error(R"({"credHelpers": {"gcr.io": null}})"),
                       "credHelpers[\"gcr.io\"]: a null, not a string"));
        CHECK(contains(parse_error(R"({"credHelpers": ["gcloud"]})"), "credHelpers: a array"));
        CHECK(contains(parse_error(std::string(100, '[') + std::string(100, ']')),
                       "nested more than 64 deep"));
        CHECK(contains(parse_error(std::string(reg::max_docker_config_size + 1, ' ')),
                       "more than the"));
        // Invalid UTF-8 inside a string.
        CHECK(contains(parse_error("{\"auths\": {\"\xff\": {}}}"), "not JSON"));
    }

    TEST_CASE("credentials: a missing file is no credentials; a bad one names the file") {
        temp_dir dir("cz-creds");
        std::error_code ec;
        cz::error_info why;
        auto missing = reg::docker_config::load(dir.path / "none" / "config.json", ec, &why);
        REQUIRE(!ec);
        CHECK(!missing.get("127.0.0.1:5000", ec, &why));
        CHECK(!ec);
        write_file(dir.path / "config.json", "{\"auths\": {\"r\": {\"auth\": \"nocolon\"}}}");
        reg::docker_config::load(dir.path / "config.json", ec, &why);
        CHECK(ec == reg::errc::malformed_credentials);
        CHECK(contains(cz::to_string(why),
                       (dir.path / "config.json").string() + ": auths[\"r\"].auth: not base64"));
        reg::docker_config::load(dir.path, ec, &why); // a directory
        CHECK(ec);
        CHECK(contains(why.message, dir.path.string()));
    }

    TEST_CASE("credentials: store, get and erase in the file; other keys kept, mode 0600") {
        temp_dir dir("cz-creds");
        auto path = dir.path / "config.json";
        write_file(path, R"({"psFormat": "x", "auths": {"https://r.example/v1/": {"auth": )"
                         R"("b2xkOm9sZA=="}, "other:1": {"auth": "bzpw"}}, "zzz": [1, 2]})");
        std::error_code ec;
        cz::error_info why;
        auto config = reg::docker_config::load(path, ec, &why);
        REQUIRE(!ec);
        // The https:// form reads as the host.
        CHECK(config.get("r.example", ec, &why) == reg::credentials{"old", "old", ""});
        config.store("r.example", {"cz", "s3cret:x", ""}, ec, &why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
        auto written = nlohmann::ordered_json::parse(read_file(path));
        // Other keys and their order are kept; the old form of the key is replaced.
        std::vector<std::string> keys;
        for (const auto& [k, v] : written.items())
            keys.push_back(k);
        CHECK(keys == std::vector<std::string>{"psFormat", "auths", "zzz"});
        CHECK(written["zzz"] == nlohmann::ordered_json::array({1, 2}));
        CHECK(written["auths"].size() == 2);
        CHECK(written["auths"]["other:1"]["auth"] == "bzpw");
        CHECK(written["auths"]["r.example"]["auth"] == "Y3o6czNjcmV0Ong="); // base64 cz:s3cret:x
        // Read back from the file, as a new process would.
        auto again = reg::docker_config::load(path, ec, &why);
        CHECK(again.get("https://r.example", ec, &why) == reg::credentials{"cz", "s3cret:x", ""});
        CHECK(!again.get("r.example:5000", ec, &why));
        CHECK(again.erase("r.example", ec, &why));
        CHECK(!ec);
        CHECK(!again.erase("r.example", ec, &why));
        CHECK(!ec);
        CHECK(!reg::docker_config::load(path, ec, &why).get("r.example", ec, &why));
        // A user name with ':' cannot round-trip through "user:password".
        again.store("r.example", {"a:b", "p", ""}, ec, &why);
        CHECK(ec == std::errc::invalid_argument);
        CHECK(contains(why.message, "'a:b'"));
        // Identity tokens are kept as docker keeps them.
        again.store("docker.io", {"", "", "tok"}, ec, &why);
        REQUIRE(!ec);
        CHECK(nlohmann::json::parse(read_file(path))["auths"]["https://index.docker.io/v1/"] ==
              nlohmann::json{{"identitytoken", "tok"}});
        CHECK(again.get("registry-1.docker.io", ec, &why) == reg::credentials{"", "", "tok"});
    }

    TEST_CASE("credentials: the file is created with its directory; a symlink stays one") {
        temp_dir dir("cz-creds");
        std::error_code ec;
        cz::error_info why;
        auto config = reg::docker_config::load(dir.path / "new" / "config.json", ec, &why);
        config.store("127.0.0.1:1", {"u", "p", ""}, ec, &why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        struct stat st {};
        REQUIRE(::stat((dir.path / "new").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0700);
        std::filesystem::create_symlink(dir.path / "new" / "config.json", dir.path / "link.json");
        auto linked = reg::docker_config::load(dir.path / "link.json", ec, &why);
        linked.store("127.0.0.1:2", {"v", "q", ""}, ec, &why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        CHECK(std::filesystem::is_symlink(dir.path / "link.json"));
        auto target = nlohmann::json::parse(read_file(dir.path / "new" / "config.json"));
        CHECK(target["auths"].size() == 2);
        // No temporary file is left behind.
        int files = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir.path / "new"))
            files += e.is_regular_file();
        CHECK(files == 1);
    }

    TEST_CASE("credentials: docker-credential-* helpers, through credsStore and credHelpers") {
        if (!have("python3")) CZ_SKIP("python3 (the test helper's language) is not installed");
        temp_dir dir("cz-creds");
        auto store = dir.path / "helper.json";
        helper_on_path on_path(store);
        auto path = dir.path / "config.json";
        write_file(path, R"({"credsStore": "test", "credHelpers": {"gcr.io": "missing"}})");
        std::error_code ec;
        cz::error_info why;
        auto config = reg::docker_config::load(path, ec, &why);
        REQUIRE(!ec);
        CHECK(config.helper_for("127.0.0.1:5000") == "test");
        CHECK(config.helper_for("https://gcr.io") == "missing");
        // Not there: no credentials, and no error.
        CHECK(!config.get("127.0.0.1:5000", ec, &why));
        CHECK_MESSAGE(!ec, cz::to_string(why));
        config.store("127.0.0.1:5000", {"cz", "pw", ""}, ec, &why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        config.store("docker.io", {"", "", "refresh"}, ec, &why);
        REQUIRE_MESSAGE(!ec, cz::to_string(why));
        // The helper has the secrets; the file only names the registries, as docker's does.
        auto kept = nlohmann::json::parse(read_file(store));
        CHECK(kept["127.0.0.1:5000"] == nlohmann::json::array({"cz", "pw"}));
        CHECK(kept[std::string(reg::docker_hub_key)] ==
              nlohmann::json::array({"<token>", "refresh"}));
        auto file = nlohmann::json::parse(read_file(path));
        CHECK(file["auths"]["127.0.0.1:5000"] == nlohmann::json::object());
        CHECK(file["credsStore"] == "test");
        CHECK(config.get("127.0.0.1:5000", ec, &why) == reg::credentials{"cz", "pw", ""});
        CHECK(config.get("docker.io", ec, &why) == reg::credentials{"", "", "refresh"});
        CHECK(config.erase("127.0.0.1:5000", ec, &why));
        CHECK(!ec);
        CHECK(!config.erase("127.0.0.1:5000", ec, &why));
        CHECK(!ec);
        CHECK(!config.get("127.0.0.1:5000", ec, &why));
        CHECK(read_file(store.string() + ".log") ==
              "get 127.0.0.1:5000\nstore 127.0.0.1:5000\nstore https://index.docker.io/v1/\n"
              "get 127.0.0.1:5000\nget https://index.docker.io/v1/\nerase 127.0.0.1:5000\n"
              "erase 127.0.0.1:5000\nget 127.0.0.1:5000\n");

        // A helper that is not there is an error naming it.
        config.get("gcr.io", ec, &why);
        CHECK(ec == reg::errc::credential_helper_failed);
        CHECK(why.message == "docker-credential-missing get: not found in PATH");
    }

    TEST_CASE("credentials: a helper that fails, answers garbage, or hangs") {
        if (!have("python3")) CZ_SKIP("python3 (the test helper's language) is not installed");
        temp_dir dir("cz-creds");
        std::error_code ec;
        cz::error_info why;
        reg::credential_helper_options options;
        {
            helper_on_path on_path(dir.path / "s.json", "fail");
            reg::helper_get("test", "r.example", options, ec, &why);
            CHECK(ec == reg::errc::credential_helper_failed);
            CHECK(why.message ==
                  "docker-credential-test get: exit status 3: the keychain is locked");
            reg::helper_store("test", "r.example", {"u", "p", ""}, options, ec, &why);
            CHECK(why.message ==
                  "docker-credential-test store: exit status 3: the keychain is locked");
            CHECK(!reg::helper_erase("test", "r.example", options, ec, &why));
            CHECK(ec == reg::errc::credential_helper_failed);
        }
        {
            helper_on_path on_path(dir.path / "s.json", "garbage");
            reg::helper_get("test", "r.example", options, ec, &why);
            CHECK(ec == reg::errc::credential_helper_failed);
            CHECK(contains(why.message, "its answer is not {\"Username\": ..., \"Secret\": ...}: "
                                        "'this is not JSON'"));
        }
        {
            helper_on_path on_path(dir.path / "s.json", "hang");
            options.timeout = std::chrono::milliseconds(500);
            auto start = std::chrono::steady_clock::now();
            reg::helper_get("test", "r.example", options, ec, &why);
            CHECK(ec == reg::errc::credential_helper_failed);
            CHECK(why.message == "docker-credential-test get: still running after 500 ms, killed");
            CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
        }
        // A name that is a path is never run.
        reg::helper_get("../x", "r.example", options, ec, &why);
        CHECK(ec == reg::errc::credential_helper_failed);
        CHECK(contains(why.message, "is not a helper name"));
    }
}
