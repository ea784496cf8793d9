// Fuzzes the URL parser the registry client follows realms and redirects with: any text either
// fails with errc::invalid_url at an offset inside it, or gives a URL with a host, a port of 1 to
// 65535 and a target starting with '/', whose str() parses back to the same URL; and a Location
// resolved against a fixed URL obeys the same rules.
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
    return 0;
}
