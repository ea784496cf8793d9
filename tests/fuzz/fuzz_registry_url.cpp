// Fuzzes the URL parser the registry client follows realms and redirects with: any text either
// fails with errc::invalid_url at an offset inside it, or gives a URL with a host, a port of 1 to
// 65535 and a target starting with '/', whose str() parses back to the same URL; and a Location
// resolved against a fixed URL obeys the same rules. The same text as a proxy URL (proxy.hpp)
// fails at an offset inside it or names a host and a port without the credentials; as a
// NO_PROXY list it never fails, and with ",*" after it bypasses every host.
#include <cz/oci/registry/proxy.hpp>
#include <cz/oci/registry/url.hpp>

#include <string>

namespace {

void check(const cz::oci::registry::url& u) {
    namespace reg = cz::oci::registry;
    if (u.host.empty() || u.target.empty() || u.target.front() != '/') __builtin_trap();
    auto port = std::stoul(u.port);
    if (port == 0 || port > 65535) __builtin_trap();
    std::error_code ec;
    auto again = reg::parse_url(u.str(), ec);
    if (ec || again.https != u.https || again.host != u.host || again.port != u.port ||
        again.target != u.target)
        __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    namespace reg = cz::oci::registry;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    cz::error_info detail;
    auto u = reg::parse_url(text, ec, &detail);
    if (ec) {
        if (ec != reg::errc::invalid_url || detail.offset.value_or(size + 1) > size)
            __builtin_trap();
    } else {
        check(u);
    }
    reg::url base;
    base.host = "registry.example";
    base.port = "443";
    base.target = "/v2/";
    auto r = reg::resolve_location(base, text, ec);
    if (!ec) check(r);
    (void)reg::query_escape(text);

    auto p = reg::parse_proxy_url(text, ec, &detail);
    if (ec) {
        if (ec != reg::errc::invalid_url || detail.offset.value_or(size + 1) > size)
            __builtin_trap();
    } else {
        auto port = std::stoul(p.port);
        if (p.host.empty() || port == 0 || port > 65535 || p.name.find('@') != std::string::npos ||
            !(p.authorization.empty() || p.authorization.starts_with("Basic ")))
            __builtin_trap();
    }
    reg::no_proxy_list list(text);
    for (auto host : {"registry.example", "10.1.2.3", "::1", "[fd00::1]", "a.b.c"})
        (void)list.bypasses(host, "443");
    reg::no_proxy_list all(std::string(text) + ",*");
    if (!all.bypasses("registry.example", "443") || !all.bypasses("10.1.2.3", "1"))
        __builtin_trap();
    return 0;
}
