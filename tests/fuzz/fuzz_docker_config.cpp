// Fuzzes docker's config file parser (cz/oci/registry/credentials.hpp): any bytes either parse,
// and then every helper name is a plain name, every decoded "auth" has a user, and the document
// written back parses to the same credentials; or fail with errc::malformed_credentials, a
// message and any offset inside the input.
#include <cz/oci/registry/credentials.hpp>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    namespace reg = cz::oci::registry;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    cz::error_info detail;
    auto c = reg::parse_docker_config(text, ec, &detail);
    if (ec) {
        if (ec != reg::errc::malformed_credentials || detail.message.empty()) __builtin_trap();
        if (detail.offset && *detail.offset > size) __builtin_trap();
        if (!c.auths.empty() || !c.creds_store.empty()) __builtin_trap();
        return 0;
    }
    auto plain = [](const std::string& name) {
        return name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
    };
    if (!plain(c.creds_store)) __builtin_trap();
    for (const auto& [key, name] : c.cred_helpers) {
        if (name.empty() || !plain(name)) __builtin_trap();
        (void)reg::credentials_key(key);
    }
    for (const auto& a : c.auths) {
        auto key = reg::credentials_key(a.key);
        if (key.find('/') != std::string::npos && key != reg::docker_hub_key) __builtin_trap();
    }
    // What cz would write back reads the same.
    auto again = reg::parse_docker_config(c.document.dump(1, '\t'), ec, &detail);
    if (ec || again.auths.size() != c.auths.size()) __builtin_trap();
    for (std::size_t i = 0; i < c.auths.size(); ++i)
        if (again.auths[i].key != c.auths[i].key || !(again.auths[i].creds == c.auths[i].creds))
            __builtin_trap();
    return 0;
}
