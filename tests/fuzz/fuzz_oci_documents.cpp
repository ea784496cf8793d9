// Fuzzes the OCI document parsers (manifest, index, image config) with the same bytes: each
// either accepts the document, keeping its bytes exactly, or fails with a cz.oci error and a
// detail naming what is wrong. What parses also survives a write and a re-parse unchanged.
#include <cz/oci/types.hpp>

namespace {

void check_error(const std::error_code& ec, const std::string& detail) {
    if (ec.category() != cz::oci::oci_category()) __builtin_trap();
    if (detail.empty()) __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    std::string detail;

    auto m = cz::oci::parse_manifest(bytes, ec, &detail);
    if (ec) {
        check_error(ec, detail);
    } else {
        if (m.bytes != bytes) __builtin_trap();
        auto again = cz::oci::parse_manifest(cz::oci::serialize(m), ec, &detail);
        if (ec || !(again.config == m.config) || again.layers != m.layers ||
            again.annotations != m.annotations)
            __builtin_trap();
    }

    detail.clear();
    auto ix = cz::oci::parse_index(bytes, ec, &detail);
    if (ec) {
        check_error(ec, detail);
    } else {
        if (ix.bytes != bytes) __builtin_trap();
        auto again = cz::oci::parse_index(cz::oci::serialize(ix), ec, &detail);
        if (ec || again.manifests != ix.manifests) __builtin_trap();
    }

    detail.clear();
    auto c = cz::oci::parse_image_config(bytes, ec, &detail);
    if (ec) {
        check_error(ec, detail);
    } else {
        if (c.bytes != bytes) __builtin_trap();
        auto again = cz::oci::parse_image_config(cz::oci::serialize(c), ec, &detail);
        if (ec || again.diff_ids != c.diff_ids || again.config.cmd != c.config.cmd ||
            again.config.entrypoint != c.config.entrypoint || again.config.env != c.config.env ||
            again.config.labels != c.config.labels || again.os != c.os)
            __builtin_trap();
    }
    (void)cz::oci::detect_media_type(bytes);
    return 0;
}
