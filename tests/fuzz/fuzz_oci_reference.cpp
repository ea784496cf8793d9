// Fuzzes the image reference parser: any string either parses to a reference whose canonical
// and familiar forms parse back to the same reference, or fails with "at offset N: ..." where N
// lies within the input.
#include <cz/oci/reference.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    std::string detail;
    auto r = cz::oci::parse_reference(text, ec, &detail);
    if (ec) {
        if (ec != cz::oci::errc::invalid_reference &&
            ec != cz::oci::errc::unsupported_digest_algorithm)
            __builtin_trap();
        if (!detail.starts_with("at offset ")) __builtin_trap();
        auto offset = std::strtoull(detail.c_str() + 10, nullptr, 10);
        if (offset > size) __builtin_trap();
        return 0;
    }
    if (r.domain.empty() || r.path.empty() || r.name().size() > cz::oci::max_name_length)
        __builtin_trap();
    if (r.tag.empty() && !r.digest) __builtin_trap();
    auto canonical = cz::oci::parse_reference(r.str(), ec);
    if (ec || !(canonical == r)) __builtin_trap();
    auto familiar = cz::oci::parse_reference(r.familiar(), ec);
    if (ec || !(familiar == r)) __builtin_trap();
    return 0;
}
