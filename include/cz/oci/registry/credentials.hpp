// cz/oci/registry/credentials.hpp — registry credentials where docker keeps them: its config
// file and its credential helpers.
//
// docker's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json) looks like:
//   {
//     "auths": {
//       "https://index.docker.io/v1/": {"auth": "<base64 of user:password>"},
//       "registry.example:5000": {"identitytoken": "<an OAuth2 refresh token>"},
//       "ghcr.io": {}                  <- kept in a helper, named here for `docker login` lists
//     },
//     "credsStore": "secretservice",   <- every registry's credentials in docker-credential-NAME
//     "credHelpers": {"gcr.io": "gcloud"}   <- this registry's in docker-credential-gcloud
//   }
// Docker Hub is filed under "https://index.docker.io/v1/", every other registry under its
// host[:port]; older files also use "https://host[:port][/path]", which reads the same.
// A registry's helper is credHelpers' entry for it, else credsStore, else none (the file).
//
// The docker-credential-* protocol: the helper is run with one argument and talks JSON on its
// stdin and stdout:
//   get    stdin: the server ("host:port" or the Hub's key)  stdout: {"ServerURL": ..,
//          "Username": .., "Secret": ..}; a Username of "<token>" makes Secret an identity token.
//          Unknown server: exit status 1, stdout "credentials not found in native keychain".
//   store  stdin: {"ServerURL": .., "Username": .., "Secret": ..}
//   erase  stdin: the server
// Helpers run without a shell, by name from PATH (docker-credential-NAME, NAME limited to
// letters, digits, '.', '_' and '-'), and are killed when they outlive a timeout.
//
// The file is read as untrusted bytes: parse_docker_config does no I/O and reports what is wrong
// and where ("auths[\"r.example\"].auth: not base64"). docker_config writes it back atomically
// (a temporary file in the same directory, mode 0600, renamed over it) and keeps every key and
// value it does not change, in their order.
//
// Usage:
//     std::error_code ec;
//     error_info why;
//     auto config = docker_config::load(docker_config_path(), ec, &why);
//     auto creds = config.get("127.0.0.1:5000", ec, &why);   // std::nullopt: none there
#pragma once

#include <cz/core/error.hpp>
#include <cz/oci/registry/error.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cz::oci::registry {

// What a registry is given when it asks who the client is.
struct credentials {
    std::string username;
    std::string password;
    // An OAuth2 refresh token (docker's "identitytoken"), traded at the token service for access
    // tokens instead of the user name and password. (Its initialiser lets {user, password} leave
    // it out without -Wmissing-field-initializers.)
    std::string identity_token = {};

    friend bool operator==(const credentials&, const credentials&) = default;
};

// Docker Hub's key in docker's config file and for its credential helpers.
inline constexpr std::string_view docker_hub_key = "https://index.docker.io/v1/";

// The key docker files `registry`'s credentials under: docker_hub_key for Docker Hub
// ("docker.io", "index.docker.io", "registry-1.docker.io", its key itself), else the host[:port]
// with any "http(s)://" before it and any path after it dropped ("https://r.example:5000/v2/" ->
// "r.example:5000").
CZ_DECL std::string credentials_key(std::string_view registry);

// The config file's path: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json; empty when
// neither variable is set.
CZ_DECL std::filesystem::path docker_config_path();

// Limits on what is read: the config file, and what a helper prints.
inline constexpr std::size_t max_docker_config_size = 4 << 20;
inline constexpr std::size_t max_helper_output = 1 << 20;

// One entry of "auths", decoded.
struct docker_auth {
    std::string key; // as written in the file
    credentials creds;
};

// What cz understands of a config file, beside the whole document (kept for writing back).
struct parsed_docker_config {
    nlohmann::ordered_json document = nlohmann::ordered_json::object();
    std::vector<docker_auth> auths;
    std::string creds_store;                         // "" when none
    std::map<std::string, std::string> cred_helpers; // key as written -> helper NAME
};

// Parses a config file's bytes. errc::malformed_credentials with `detail` saying where (the JSON
// path, or the byte offset of a JSON syntax error): not JSON, not an object, a field of the wrong
// type, an "auth" that is not base64 or not "user:password" with a user, a helper name that is
// not a plain name.
CZ_DECL parsed_docker_config parse_docker_config(std::string_view text, std::error_code& ec,
                                                 error_info* detail = nullptr);

struct credential_helper_options {
    // How long a helper may run before it is killed and the call fails.
    std::chrono::milliseconds timeout{30000};
};

// The docker-credential-* protocol, one call per function. The server is the registry's key
// (credentials_key). Errors: errc::credential_helper_failed with `detail` naming the program and
// what happened (not found in PATH, its exit status and first line of output, a timeout, an answer
// that is not the protocol's JSON).
// get: std::nullopt when the helper has no credentials for `server`.
CZ_DECL std::optional<credentials> helper_get(std::string_view helper, std::string_view server,
                                              const credential_helper_options& options,
                                              std::error_code& ec, error_info* detail = nullptr);
CZ_DECL void helper_store(std::string_view helper, std::string_view server,
                          const credentials& creds, const credential_helper_options& options,
                          std::error_code& ec, error_info* detail = nullptr);
// false (and no error) when the helper had nothing for `server`.
CZ_DECL bool helper_erase(std::string_view helper, std::string_view server,
                          const credential_helper_options& options, std::error_code& ec,
                          error_info* detail = nullptr);

// docker's config file, loaded, with its helpers: where credentials are found and kept.
class docker_config {
public:
    // Reads `path`; a missing file is an empty config (no credentials). Errors name the file:
    // errc::malformed_credentials (its contents), or the system's error reading it.
    CZ_DECL static docker_config load(const std::filesystem::path& path, std::error_code& ec,
                                      error_info* detail = nullptr);

    const std::filesystem::path& path() const noexcept { return path_; }
    const parsed_docker_config& parsed() const noexcept { return parsed_; }
    credential_helper_options& helper_options() noexcept { return helper_options_; }

    // The helper that keeps `registry`'s credentials ("" for the file itself).
    CZ_DECL std::string helper_for(std::string_view registry) const;

    // `registry`'s credentials (any form credentials_key accepts), from its helper or the file;
    // std::nullopt when there are none.
    CZ_DECL std::optional<credentials> get(std::string_view registry, std::error_code& ec,
                                           error_info* detail = nullptr) const;
    // Keeps `creds` for `registry`: in its helper (and an empty entry in "auths", as docker
    // does), or base64 in "auths"; then writes the file.
    CZ_DECL void store(std::string_view registry, const credentials& creds, std::error_code& ec,
                       error_info* detail = nullptr);
    // Forgets `registry`'s credentials, in its helper and in the file (every key that reads as
    // `registry`). Returns false when there were none anywhere.
    CZ_DECL bool erase(std::string_view registry, std::error_code& ec,
                       error_info* detail = nullptr);

private:
    CZ_DECL void save(std::error_code& ec, error_info* detail);

    std::filesystem::path path_;
    parsed_docker_config parsed_;
    credential_helper_options helper_options_;
};

} // namespace cz::oci::registry

#if CZ_HEADER_ONLY
#include <cz/oci/registry/impl/credentials.ipp>
#endif
